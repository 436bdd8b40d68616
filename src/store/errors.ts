/**
 * Errors raised by the storage layer. They are local errors: the gateway maps them to a wire
 * error (never forwarding SQL, paths or connection strings to a client).
 */
import { LocalError } from '../domain/errors.js';

/** Stable codes of every StoreError; callers branch on these, never on messages. */
export const STORE_ERROR_CODES = [
  /** The store URL has an unknown scheme, no path, or an unusable schema name. */
  'STORE_URL_INVALID',
  /** The database could not be opened or reached (unwritable path, connection refused). */
  'STORE_OPEN_FAILED',
  /** A schema migration failed; it was rolled back and the store was not opened. */
  'STORE_MIGRATION_FAILED',
  /** The database was migrated by a newer Warden than this one; refusing to run on it. */
  'STORE_SCHEMA_TOO_NEW',
  /** A statement failed (database unavailable, disk full, unexpected data). */
  'STORE_QUERY_FAILED',
  /** A row with the same key already exists (e.g. a signing key id). */
  'STORE_CONFLICT',
  /** A value handed to the store cannot be stored faithfully (e.g. a non-integer time). */
  'STORE_INVALID_VALUE',
  /** The store was used after close(). */
  'STORE_CLOSED',
] as const;

export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

export interface StoreErrorOptions {
  readonly cause?: unknown;
  /** The file path or the (password-redacted) URL concerned, for operators. */
  readonly target?: string;
}

export class StoreError extends LocalError {
  declare readonly code: StoreErrorCode;
  readonly target: string | undefined;

  constructor(code: StoreErrorCode, message: string, options: StoreErrorOptions = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreError';
    this.target = options.target;
  }
}

/** The message of any thrown value, for wrapping driver errors in a StoreError message. */
export function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // Node reports a refused connection to every address of a host as an AggregateError with no message.
  if (cause.message === '' && cause instanceof AggregateError) {
    return cause.errors.map(describeCause).join('; ');
  }
  return cause.message || ((cause as { code?: unknown }).code as string | undefined) || cause.name;
}

/** Wraps a driver error: a duplicate key becomes STORE_CONFLICT, anything else STORE_QUERY_FAILED. */
export function toStoreError(
  cause: unknown,
  action: string,
  target: string,
  isDuplicateKey: boolean,
): StoreError {
  if (cause instanceof StoreError) return cause;
  return isDuplicateKey
    ? new StoreError('STORE_CONFLICT', `cannot ${action}: it exists already`, { cause, target })
    : new StoreError('STORE_QUERY_FAILED', `cannot ${action}: ${describeCause(cause)}`, {
        cause,
        target,
      });
}
