import type { AuditCheckpoint, AuditRecord } from '../domain/audit-record.js';

/**
 * Storage behind interfaces: SQLite (the embedded default) and PostgreSQL (for several replicas)
 * implement the same repositories. All SQL lives in src/store.
 */

/** A signing key of the built-in token issuer. Private material never leaves the store and issuer. */
export interface StoredSigningKey {
  readonly kid: string;
  readonly algorithm: string;
  /** Private JWK as JSON text. */
  readonly privateJwk: string;
  /** Public JWK as JSON text. */
  readonly publicJwk: string;
  readonly createdAt: number;
  /** When the key stopped signing new tokens; it is still published until retiredAt. */
  readonly rotatedAt: number | undefined;
  /** After this instant the key is no longer published, so tokens it signed stop verifying. */
  readonly retireAt: number | undefined;
}

export interface SigningKeyRepository {
  /** Every stored key, oldest first (by createdAt, then kid). */
  list(): Promise<StoredSigningKey[]>;
  /** Rejects with StoreError STORE_CONFLICT when the kid exists already. */
  insert(key: StoredSigningKey): Promise<void>;
  /** Marks every active key as rotated at `at`, published until `retireAt`. */
  markRotated(at: number, retireAt: number): Promise<void>;
  /** Deletes the keys whose retireAt is at or before `now`. */
  deleteRetired(now: number): Promise<void>;
}

export type RevocationKind = 'token' | 'agent' | 'user';

export interface Revocation {
  readonly kind: RevocationKind;
  /** The jti, agent id or user id. */
  readonly subject: string;
  readonly revokedAt: number;
  /** After this the entry may be dropped (the tokens it covers have all expired). */
  readonly expiresAt: number;
  readonly reason: string;
  readonly revokedBy: string;
}

export type RevocationListener = (revocation: Revocation) => void;

export interface RevocationRepository {
  /** Stores the revocation durably, then delivers it to this store's subscribers. */
  add(revocation: Revocation): Promise<void>;
  /** Every revocation still in force (expiresAt after `now`), to rebuild the in-memory set at start. */
  listActive(now: number): Promise<Revocation[]>;
  /** Drops the revocations that expired at or before `now`; returns how many. */
  deleteExpired(now: number): Promise<number>;
  /**
   * Calls `listener` with each revocation added through any store on the same database: at once
   * for this store's own add(); from other processes by PostgreSQL NOTIFY, or for a SQLite file
   * by polling (every 500 ms, e.g. for `warden token revoke` run beside `warden serve`).
   * Delivery is at least once: after a lost PostgreSQL connection every active revocation is
   * delivered again, so none added during the gap is missed. Resolves once delivery is live; the
   * returned function unsubscribes (subscribing keeps the feed open until close()).
   */
  subscribe(listener: RevocationListener): Promise<() => Promise<void>>;
}

/** A row of schema_migrations: which schema version is applied, and when. */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly appliedAt: number;
}

/** Filters for investigating the audit log; every field narrows the result. */
export interface AuditQuery {
  readonly stream?: string;
  readonly user?: string;
  readonly agent?: string;
  readonly role?: string;
  readonly tool?: string;
  readonly upstream?: string;
  readonly event?: string;
  readonly effect?: string;
  readonly requestId?: string;
  /** Inclusive lower and exclusive upper bound on `time` (ISO 8601). */
  readonly from?: string;
  readonly to?: string;
  /** Records with seq greater than this (per stream, for paging and tailing). */
  readonly afterSeq?: number;
  readonly limit?: number;
}

export interface AuditRepository {
  /**
   * Appends records (already chained) and optionally a checkpoint, durably, in one transaction.
   * Resolves only once committed: the caller forwards a call only after this.
   */
  append(records: readonly AuditRecord[], checkpoint?: AuditCheckpoint): Promise<void>;
  /** The last record of a stream, to continue its chain after a restart. */
  head(stream: string): Promise<AuditRecord | undefined>;
  query(query: AuditQuery): Promise<AuditRecord[]>;
  /** Records of one stream in seq order, from `fromSeq`, in pages (for verify and export). */
  readStream(stream: string, fromSeq: number, limit: number): Promise<AuditRecord[]>;
  streams(): Promise<string[]>;
  checkpoints(stream: string): Promise<AuditCheckpoint[]>;
  /** Deletes a stream's records with seq ≤ `throughSeq` (archiving keeps an `audit.pruned` record). */
  prune(stream: string, throughSeq: number): Promise<number>;
  /** The audit signing key (Ed25519, PKCS#8 PEM), created on first use by the caller. */
  signingKey(): Promise<{ keyId: string; privateKeyPem: string; publicKeyPem: string } | undefined>;
  saveSigningKey(key: {
    keyId: string;
    privateKeyPem: string;
    publicKeyPem: string;
  }): Promise<void>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly signingKeys: SigningKeyRepository;
  readonly revocations: RevocationRepository;
  /** The migrations applied to this database, oldest first (for `doctor` and tests). */
  listAppliedMigrations(): Promise<AppliedMigration[]>;
  /** Releases every connection, file handle and timer. Safe to call twice. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** PostgreSQL only: the schema to create (if missing) and use, e.g. to isolate a test run. */
  readonly schema?: string;
  /** Clock for applied_at and for the replay after a reconnect; defaults to Date.now. */
  readonly now?: () => number;
  /** Told about background failures (listener threw, LISTEN connection lost); nothing is thrown. */
  readonly onError?: (error: Error) => void;
}
