/**
 * Conversions between domain objects and database rows, shared by both backends so they return
 * identical values: PostgreSQL returns BIGINT as text, SQLite as a number; both become numbers.
 */
import { StoreError } from './errors.js';
import type { AppliedMigration, Revocation, RevocationKind, StoredSigningKey } from './types.js';

export type Row = Readonly<Record<string, unknown>>;

const REVOCATION_KINDS: ReadonlySet<string> = new Set<RevocationKind>([
  'token',
  'agent',
  'user',
  'certificate',
]);

/** Rejects a time the database could not store exactly (both backends keep 64-bit integers). */
export function assertEpochMs(field: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new StoreError(
      'STORE_INVALID_VALUE',
      `${field} must be an integer count of epoch milliseconds, got ${value}`,
    );
  }
}

/** Rejects a key whose times are not integer epoch ms, before it reaches SQL. */
function assertStorableSigningKey(key: StoredSigningKey): void {
  assertEpochMs('createdAt', key.createdAt);
  if (key.rotatedAt !== undefined) assertEpochMs('rotatedAt', key.rotatedAt);
  if (key.retireAt !== undefined) assertEpochMs('retireAt', key.retireAt);
}

/** Rejects an unknown kind or a non-integer time, before it reaches SQL. */
function assertStorableRevocation(revocation: Revocation): void {
  if (!REVOCATION_KINDS.has(revocation.kind)) {
    throw new StoreError(
      'STORE_INVALID_VALUE',
      `unknown revocation kind ${JSON.stringify(revocation.kind)}`,
    );
  }
  assertEpochMs('revokedAt', revocation.revokedAt);
  assertEpochMs('expiresAt', revocation.expiresAt);
}

/** Column order of every signing_keys INSERT and SELECT, in both backends. */
export const SIGNING_KEY_COLUMNS =
  'kid, algorithm, private_jwk, public_jwk, created_at, rotated_at, retire_at';

/** Column order of every revocations INSERT and SELECT (the id is the database's own). */
export const REVOCATION_COLUMNS = 'kind, subject, revoked_at, expires_at, reason, revoked_by';

/** A validated key as statement parameters, in SIGNING_KEY_COLUMNS order. */
export function toSigningKeyParams(key: StoredSigningKey): (string | number | null)[] {
  assertStorableSigningKey(key);
  return [
    key.kid,
    key.algorithm,
    key.privateJwk,
    key.publicJwk,
    key.createdAt,
    key.rotatedAt ?? null,
    key.retireAt ?? null,
  ];
}

/** A validated revocation as statement parameters, in REVOCATION_COLUMNS order. */
export function toRevocationParams(revocation: Revocation): (string | number)[] {
  assertStorableRevocation(revocation);
  return [
    revocation.kind,
    revocation.subject,
    revocation.revokedAt,
    revocation.expiresAt,
    revocation.reason,
    revocation.revokedBy,
  ];
}

export function toSigningKey(row: Row): StoredSigningKey {
  return {
    kid: readText(row, 'kid'),
    algorithm: readText(row, 'algorithm'),
    privateJwk: readText(row, 'private_jwk'),
    publicJwk: readText(row, 'public_jwk'),
    createdAt: readInteger(row, 'created_at'),
    rotatedAt: readOptionalInteger(row, 'rotated_at'),
    retireAt: readOptionalInteger(row, 'retire_at'),
  };
}

export function toRevocation(row: Row): Revocation {
  const kind = readText(row, 'kind');
  if (!REVOCATION_KINDS.has(kind)) throw unreadableColumn('kind', kind);
  return {
    kind: kind as RevocationKind,
    subject: readText(row, 'subject'),
    revokedAt: readInteger(row, 'revoked_at'),
    expiresAt: readInteger(row, 'expires_at'),
    reason: readText(row, 'reason'),
    revokedBy: readText(row, 'revoked_by'),
  };
}

export function toAppliedMigration(row: Row): AppliedMigration {
  return {
    version: readInteger(row, 'version'),
    name: readText(row, 'name'),
    appliedAt: readInteger(row, 'applied_at'),
  };
}

/** A text column; anything else is data this Warden cannot read. */
export function readText(row: Row, column: string): string {
  const value = row[column];
  if (typeof value !== 'string') throw unreadableColumn(column, value);
  return value;
}

/** An integer column that may be NULL. */
export function readOptionalInteger(row: Row, column: string): number | undefined {
  return row[column] === null || row[column] === undefined ? undefined : readInteger(row, column);
}

/** An integer column: BIGINT text (PostgreSQL) or a number (SQLite), as a safe integer. */
export function readInteger(row: Row, column: string): number {
  const value = row[column];
  const parsed =
    typeof value === 'number' || typeof value === 'bigint'
      ? Number(value)
      : typeof value === 'string' && /^-?\d+$/.test(value)
        ? Number(value)
        : Number.NaN;
  if (!Number.isSafeInteger(parsed)) throw unreadableColumn(column, value);
  return parsed;
}

/** The error for a column value this Warden cannot read (written by another version, say). */
export function unreadableColumn(column: string, value: unknown): StoreError {
  return new StoreError(
    'STORE_QUERY_FAILED',
    `unreadableColumn ${typeof value} in column ${column}; the database holds data this Warden cannot read`,
  );
}
