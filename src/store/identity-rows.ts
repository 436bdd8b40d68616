/**
 * What both dialects share of the identity protections' rows: how an assertion id is stored, and
 * how recorded failures are read back into the shape a limiter decides on.
 */
import { createHash } from 'node:crypto';
import { StoreError } from './errors.js';
import type { Row } from './row-mapping.js';
import type { RecentSecretFailures } from './types.js';

/** An assertion id is whatever the client signed: stored as its SHA-256, so rows stay small. */
export function hashAssertionId(jti: string): string {
  return createHash('sha256').update(jti).digest('base64url');
}

/** Rows of `secret_failures` (kind, at), oldest first, as the limiter reads them. */
export function toRecentSecretFailures(rows: readonly Row[], now: number): RecentSecretFailures {
  const bySource: number[] = [];
  const byClient: number[] = [];
  for (const row of rows) (row['kind'] === 'client' ? byClient : bySource).push(Number(row['at']));
  return { now, bySource, byClient };
}

/** A window must be a positive whole number of milliseconds: anything else would count nothing. */
export function assertWindowMs(windowMs: number): void {
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) {
    throw new StoreError(
      'STORE_INVALID_VALUE',
      `windowMs must be a positive integer, got ${windowMs}`,
    );
  }
}
