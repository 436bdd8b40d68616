/**
 * What of a call's result reaches the audit log: whether it was an error, its size and hash,
 * and optionally a short redacted excerpt. The hash (SHA-256 of the canonical JSON) lets an
 * investigator confirm that a result kept elsewhere is the one the gateway returned.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json.js';
import type { ArgumentRedactor } from './redaction.js';

export interface ResultDigest {
  readonly isError: boolean;
  /** Bytes of the result's canonical JSON (UTF-8). */
  readonly size: number;
  /** SHA-256 (base64url) of the result's canonical JSON. */
  readonly hash: string;
  /** The redacted result's canonical JSON, cut to excerptBytes (UTF-8) and marked '…' if cut. */
  readonly excerpt?: string;
}

export interface DigestResultOptions {
  /** 0 or absent: no excerpt. */
  readonly excerptBytes?: number;
  readonly redactor: Pick<ArgumentRedactor, 'redactValue'>;
}

/**
 * Digests an MCP result (e.g. a CallToolResult, whose `isError: true` marks a tool error). A
 * JSON-RPC error is not a result: record it as `call.error` with its error code.
 */
export function digestResult(result: unknown, options: DigestResultOptions): ResultDigest {
  const canonical = Buffer.from(canonicalJson(result), 'utf8');
  const digest = {
    isError:
      typeof result === 'object' &&
      result !== null &&
      (result as { isError?: unknown }).isError === true,
    size: canonical.length,
    hash: createHash('sha256').update(canonical).digest('base64url'),
  };
  const excerptBytes = Math.floor(options.excerptBytes ?? 0);
  if (excerptBytes <= 0) return Object.freeze(digest);
  const redacted = canonicalJson(options.redactor.redactValue(result));
  return Object.freeze({ ...digest, excerpt: cutUtf8(redacted, excerptBytes) });
}

/** The longest prefix of `text` within `maxBytes` of UTF-8, never splitting a character. */
function cutUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return `${bytes.subarray(0, end).toString('utf8')}…`;
}
