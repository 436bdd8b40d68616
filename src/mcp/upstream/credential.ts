/**
 * Warden's own credential for an upstream, read from an env var or a secret file. The file is
 * re-read at most once a second, so rotating the secret needs no restart.
 */
import { readFileSync } from 'node:fs';
import type { UpstreamCredentialConfig } from '../../config/config.js';
import { WardenError } from '../../domain/errors.js';

/** How often the secret file is re-read, at most. */
const FILE_CHECK_INTERVAL_MS = 1000;

export interface CredentialSource {
  /** The header name and value to send, read fresh enough to follow rotation. */
  header(): { readonly name: string; readonly value: string };
}

export function createCredentialSource(
  config: UpstreamCredentialConfig,
  now: () => number = Date.now,
): CredentialSource {
  const format = (secret: string) => ({
    name: config.header,
    value: config.scheme === '' ? secret : `${config.scheme} ${secret}`,
  });
  if (config.source.kind === 'env') {
    const name = config.source.name;
    return {
      header() {
        const secret = process.env[name]?.trim();
        if (!secret)
          throw new WardenError(
            'WARDEN_UPSTREAM_UNAVAILABLE',
            'The upstream credential is not configured.',
          );
        return format(secret);
      },
    };
  }
  const path = config.source.path;
  let cached: string | undefined;
  let checkedAt = -Infinity;
  return {
    header() {
      const at = now();
      if (cached === undefined || at - checkedAt >= FILE_CHECK_INTERVAL_MS) {
        checkedAt = at;
        cached = readSecret(path, cached);
      }
      return format(cached);
    },
  };
}

/**
 * Reads the whole (small) file rather than trusting its modification time: a rotation within one
 * tick of a coarse file clock, or a copy that keeps the timestamp, leaves the mtime unchanged.
 */
function readSecret(path: string, cached: string | undefined): string {
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length === 0) throw new Error('empty');
    return secret;
  } catch (error) {
    if (cached !== undefined) return cached; // mid-rotation (missing or empty): keep the last good secret
    throw new WardenError(
      'WARDEN_UPSTREAM_UNAVAILABLE',
      'The upstream credential could not be read.',
      {
        cause: error,
      },
    );
  }
}
