/**
 * Warden's own credential for an upstream, never the client's: a secret read from an env var or
 * a file (re-read at most once a second, so rotating it needs no restart), or an access token
 * exchanged for each caller at the upstream's authorization server (token-exchange.ts).
 */
import { readFileSync } from 'node:fs';
import type { UpstreamCredentialConfig } from '../../config/config.js';
import { WardenError } from '../../domain/errors.js';
import { createTokenExchangeSource } from './token-exchange.js';
import type { SubjectTokenSigner } from './token-exchange-subject.js';
import type { UpstreamCaller } from './types.js';

/** How often the secret file is re-read, at most. */
const FILE_CHECK_INTERVAL_MS = 1000;

export interface CredentialSource {
  /**
   * The header name and value to send for `caller`, read fresh enough to follow rotation.
   * Rejects with a WardenError when there is none to send: the message must not go without it.
   */
  header(
    caller: UpstreamCaller | undefined,
  ): Promise<{ readonly name: string; readonly value: string }>;
}

export interface CredentialSourceOptions {
  readonly now?: () => number;
  /** Signs token exchanges' subject tokens: the built-in issuer's keys, where it runs. */
  readonly signer?: SubjectTokenSigner;
}

export function createCredentialSource(
  config: UpstreamCredentialConfig,
  options: CredentialSourceOptions = {},
): CredentialSource {
  const now = options.now ?? Date.now;
  const format = (secret: string) => ({
    name: config.header,
    value: config.scheme === '' ? secret : `${config.scheme} ${secret}`,
  });
  const { source } = config;
  switch (source.kind) {
    case 'token_exchange': {
      const exchange = createTokenExchangeSource(source, { signer: options.signer, now });
      return { header: async (caller) => format(await exchange.tokenFor(caller)) };
    }
    case 'env':
      return {
        header() {
          const secret = process.env[source.name]?.trim();
          if (!secret)
            return Promise.reject(
              new WardenError(
                'WARDEN_UPSTREAM_UNAVAILABLE',
                'The upstream credential is not configured.',
              ),
            );
          return Promise.resolve(format(secret));
        },
      };
    case 'file': {
      let cached: string | undefined;
      let checkedAt = -Infinity;
      return {
        header() {
          const at = now();
          try {
            if (cached === undefined || at - checkedAt >= FILE_CHECK_INTERVAL_MS) {
              checkedAt = at;
              cached = readSecret(source.path, cached);
            }
          } catch (error) {
            return Promise.reject(error as Error);
          }
          return Promise.resolve(format(cached));
        },
      };
    }
  }
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
