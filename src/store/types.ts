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
  /**
   * Calls `listener` after a key was inserted (a first key or a rotation) through any store on
   * the same database: PostgreSQL NOTIFY; SQLite: this store's own inserts only (other processes
   * on the file are found by re-reading). Resolves once live; returns the unsubscribe function.
   */
  subscribe(listener: () => void): Promise<() => Promise<void>>;
}

/** Client assertion ids already used (RFC 7523 §3), shared by every replica on the store. */
export interface AssertionReplayRepository {
  /**
   * Records that `issuer` used assertion `jti`, kept until `keepUntil`. Resolves true the first
   * time, false when that id is recorded already and kept past `now` (a replay, on any replica).
   * Atomic: two replicas claiming one id at once get one true between them.
   */
  claim(issuer: string, jti: string, keepUntil: number, now: number): Promise<boolean>;
  /** Drops the ids kept until `now` or earlier; returns how many. */
  deleteExpired(now: number): Promise<number>;
}

/** The failures recorded for one source and client, and for the client from every source. */
export interface RecentSecretFailures {
  /** The clock the times are on: the database's on PostgreSQL, the caller's on SQLite. */
  readonly now: number;
  /** Times (epoch ms, oldest first) of this source's failures for the client, within the window. */
  readonly bySource: readonly number[];
  /** Times of the failures counted against the client's budget, from every source. */
  readonly byClient: readonly number[];
}

/** What to record of an attempt: nothing (refused unchecked), a source failure, or both kinds. */
export type SecretFailureRecording = 'none' | 'source' | 'source_and_client';

export interface RecordedSecretFailure {
  readonly at: number;
  /** The failure counted against the client's budget, if one was: forgiven on success. */
  readonly clientFailureId: string | undefined;
}

/** Wrong client secrets, counted for every replica on the store (the token endpoint's limiter). */
export interface SecretFailureRepository {
  /**
   * In one transaction serialised per client across replicas (PostgreSQL: an advisory lock on the
   * client, times from the database's clock; SQLite: BEGIN IMMEDIATE, `now`): drops the client's
   * failures older than `windowMs`, reads the rest and records what `decide` answers. `decide` is
   * synchronous; when it throws, nothing is written. Resolves what was recorded, if anything.
   */
  reserve(
    attempt: {
      readonly clientId: string;
      readonly source: string;
      readonly windowMs: number;
      readonly now: number;
    },
    decide: (recent: RecentSecretFailures) => SecretFailureRecording,
  ): Promise<RecordedSecretFailure | undefined>;
  /**
   * The secret was right: drops this source's failures for the client and, if given, the one
   * failure counted against the client's budget by this attempt.
   */
  forgive(clientId: string, source: string, clientFailureId: string | undefined): Promise<void>;
  /**
   * Drops failures stamped at or before `before` (the caller's clock; PostgreSQL: the database's
   * now minus `windowMs`), for clients no one tried since; at most `limit` rows, never waiting
   * for rows a reservation holds. Returns how many.
   */
  deleteExpired(windowMs: number, before: number, limit: number): Promise<number>;
}

/** `certificate`: a client certificate by serial number (lowercase hex), refused at the TLS layer. */
export type RevocationKind = 'token' | 'agent' | 'user' | 'certificate';

export interface Revocation {
  readonly kind: RevocationKind;
  /** The jti, agent id, user id or certificate serial. */
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

/** How many records `AuditRepository.query` returns when the query sets no limit. */
export const AUDIT_QUERY_DEFAULT_LIMIT = 1000;
/** The most records one `query` or `readStream` call returns; page with afterSeq / fromSeq. */
export const AUDIT_QUERY_MAX_LIMIT = 10_000;

/** Filters for investigating the audit log; every field narrows the result. */
export interface AuditQuery {
  readonly stream?: string;
  readonly user?: string;
  readonly agent?: string;
  /** Matches a record that carries this role among its roles (exactly, not as a substring). */
  readonly role?: string;
  readonly tool?: string;
  readonly upstream?: string;
  readonly event?: string;
  /** The decision's effect: allow, deny or approval_required. */
  readonly effect?: string;
  readonly requestId?: string;
  /** Records whose request id starts with this text (as `audit tail` shows ids: cut short). */
  readonly requestIdPrefix?: string;
  /**
   * Inclusive lower and exclusive upper bound on `time`: ISO 8601, either a date (UTC midnight)
   * or a date and time with `Z` or an offset (a zone-less time would depend on the host's zone).
   */
  readonly from?: string;
  readonly to?: string;
  /** Records with seq greater than this (per stream, for paging and tailing). */
  readonly afterSeq?: number;
  /** 1 to AUDIT_QUERY_MAX_LIMIT; AUDIT_QUERY_DEFAULT_LIMIT when absent. */
  readonly limit?: number;
  /** The last `limit` matching records, newest first, instead of the first, oldest first. */
  readonly newest?: boolean;
}

/** The audit log's Ed25519 key pair (PKCS#8 / SPKI PEM); separate from token-signing keys. */
export interface AuditSigningKey {
  readonly keyId: string;
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/**
 * The audit log's storage. Each record is kept as the exact canonical JSON it was hashed from
 * (that text is what verification reads); a few fields are copied into indexed columns for
 * queries. Every method rejects with a StoreError.
 */
export interface AuditRepository {
  /**
   * Appends records (already chained) and optionally a checkpoint, durably, in one transaction.
   * Resolves only once committed: the caller forwards a call only after this. A record whose
   * (stream, seq) exists already, or a second checkpoint at the same (stream, seq), rejects the
   * whole batch with STORE_CONFLICT and stores none of it.
   */
  append(records: readonly AuditRecord[], checkpoint?: AuditCheckpoint): Promise<void>;
  /** The last record of a stream, to continue its chain after a restart. */
  head(stream: string): Promise<AuditRecord | undefined>;
  /** Records matching every filter, ordered by time, then stream and seq. */
  query(query: AuditQuery): Promise<AuditRecord[]>;
  /**
   * Records of one stream with seq ≥ `fromSeq`, in seq order, at most `limit` (1 to
   * AUDIT_QUERY_MAX_LIMIT): one page, for verify and export.
   */
  readStream(stream: string, fromSeq: number, limit: number): Promise<AuditRecord[]>;
  /** Every stream that holds records, in name order. */
  streams(): Promise<string[]>;
  /** A stream's checkpoints in seq order. */
  checkpoints(stream: string): Promise<AuditCheckpoint[]>;
  /**
   * Deletes a stream's records with seq ≤ `throughSeq`, in one transaction, and returns how many.
   * With a `marker` (the `audit.pruned` record of that stream at seq `throughSeq`, standing in for
   * the deleted prefix) the marker is stored in the same transaction, so no reader ever sees the
   * prefix gone without it; the marker may replace the head. Without one the head is never
   * deleted, so the chain can always continue. Anything else (through the head without a marker,
   * beyond the head, a marker for another seq) rejects with STORE_INVALID_VALUE and deletes
   * nothing. An earlier marker within the prefix is deleted with it. Checkpoints are kept.
   *
   * The transaction holds the write lock throughout (SQLite deletes about 150,000 records a
   * second on this machine), so archive a long log in steps, one checkpoint at a time.
   */
  prune(stream: string, throughSeq: number, marker?: AuditRecord): Promise<number>;
  /** The audit signing key, or undefined before the first saveSigningKey. */
  signingKey(): Promise<AuditSigningKey | undefined>;
  /**
   * Stores the key unless one exists already: the first writer wins, also between replicas
   * racing at their first start. Returns the key in force, which the caller must use from then on.
   */
  saveSigningKey(key: AuditSigningKey): Promise<AuditSigningKey>;
}

/** An operator-switched policy state (e.g. `payments_freeze`), read into every decision's context. */
export interface PolicyState {
  readonly name: string;
  readonly on: boolean;
  readonly changedAt: number;
  readonly changedBy: string;
  readonly reason: string;
}

export interface PolicyStateRepository {
  /** Sets (inserting or replacing) one state. */
  set(state: PolicyState): Promise<void>;
  /** Every state ever set, in name order. States never set are absent (their configured default applies). */
  list(): Promise<PolicyState[]>;
}

/** An emergency grant of one tool to one agent; it always expires. */
export interface BreakGlassGrant {
  readonly id: string;
  readonly agent: string;
  /** `upstream.tool`. */
  readonly tool: string;
  readonly reason: string;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** Set when an operator ended it early. */
  readonly revokedAt: number | undefined;
}

export interface BreakGlassRepository {
  /** Rejects with STORE_CONFLICT when the id exists already. */
  add(grant: BreakGlassGrant): Promise<void>;
  /** The grants in force at `now` (not expired, not revoked), oldest first. */
  listActive(now: number): Promise<BreakGlassGrant[]>;
  /** Ends a grant early; resolves false when no such grant was in force. */
  revoke(id: string, at: number): Promise<boolean>;
}

/** One version of an upstream tool's definition, as Warden saw it. */
export interface StoredToolDefinition {
  readonly upstream: string;
  readonly tool: string;
  /** SHA-256 (hex) of the canonical definition: name, description, schemas, annotations. */
  readonly hash: string;
  /** The definition as canonical JSON text. */
  readonly definition: string;
  readonly firstSeenAt: number;
  readonly approvedAt: number | undefined;
  readonly approvedBy: string | undefined;
}

export interface ToolDefinitionRepository {
  /**
   * Records a definition the first time it is seen (upstream, tool, hash); a definition stored
   * already is left as it is. Returns the stored row.
   */
  observe(
    definition: Omit<StoredToolDefinition, 'approvedAt' | 'approvedBy'>,
  ): Promise<StoredToolDefinition>;
  /**
   * Approves one stored version. Resolves false when no such (upstream, tool, hash) is stored.
   * Approving a version leaves the earlier approvals in place; the latest approval is in force.
   */
  approve(upstream: string, tool: string, hash: string, by: string, at: number): Promise<boolean>;
  /** Every stored version, by upstream, tool, then firstSeenAt. */
  list(upstream?: string): Promise<StoredToolDefinition[]>;
  /** `upstream.tool` → the hash of the most recently approved version. */
  approvedHashes(): Promise<Map<string, string>>;
}

/** One quota to charge: at most `limit` in total over the sliding window ending now. */
export interface QuotaCharge {
  /** e.g. `rate:agent:ops-bot` or `budget:agent:finance-bot:payments.issue_payment:amount`. */
  readonly key: string;
  /** 1 for a call count; the argument's value for a budget. Never negative. */
  readonly amount: number;
  readonly limit: number;
  readonly windowMs: number;
}

export interface QuotaOutcome {
  /** True when every charge fitted and all were recorded; false when none was. */
  readonly admitted: boolean;
  /** Per charge, in order: the total used within its window before this call. */
  readonly used: readonly number[];
  /** The index of the first charge that did not fit. */
  readonly exceeded: number | undefined;
}

export interface QuotaChargeOptions {
  /**
   * Only tells whether the charges would fit now, recording nothing: a call that waits for a
   * person is checked before anyone is asked, and charged when it is released.
   */
  readonly dryRun?: boolean;
}

export interface QuotaRepository {
  /**
   * Atomically: sums each key's charges stamped after now - windowMs; if every charge still fits
   * under its limit, records all of them at now; otherwise records none. Two concurrent callers
   * (also on two replicas) can never both pass a limit that only one of them fits under. `now` is
   * the caller's clock on SQLite; PostgreSQL only validates it and reads the database's clock once
   * the keys are locked, so a replica with a skewed clock cannot shift the window.
   */
  charge(
    charges: readonly QuotaCharge[],
    now: number,
    options?: QuotaChargeOptions,
  ): Promise<QuotaOutcome>;
  /** Drops charges older than `before`; returns how many. */
  deleteOlderThan(before: number): Promise<number>;
}

/**
 * `withdrawn`: the client gave up before a decision. `invalidated`: the policy or the tool's
 * definition changed while the request waited (or before its call was released), so the
 * approval no longer answers the question it was asked for.
 */
export type ApprovalStatus =
  'pending' | 'granted' | 'refused' | 'expired' | 'withdrawn' | 'invalidated';

/** One approver's decision on a request. */
export interface ApprovalVote {
  readonly approver: string;
  readonly decision: 'approve' | 'deny';
  readonly reason: string;
  readonly at: number;
}

/** A held call waiting for (or past) a human decision. */
export interface ApprovalRequest {
  readonly id: string;
  /** The call's request id, shared with its audit records. */
  readonly requestId: string;
  readonly status: ApprovalStatus;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** When the status left pending. */
  readonly decidedAt: number | undefined;
  /** When the granted call was released to the upstream: an approval is used once. */
  readonly consumedAt: number | undefined;
  readonly user: string | undefined;
  readonly agent: string;
  readonly roles: readonly string[];
  readonly model: string | undefined;
  readonly upstream: string;
  readonly tool: string;
  /** The full, unredacted arguments as canonical JSON text: what the approver approves. */
  readonly arguments: string;
  readonly argumentsHash: string;
  readonly toolDefinitionHash: string | undefined;
  readonly policyVersion: string;
  /** The policy ids of the grants that asked for approval, and their scopes. */
  readonly grants: readonly string[];
  readonly scopes: readonly string[];
  /** Roles an approver must hold (any one of them). */
  readonly approverRoles: readonly string[];
  /** 1, or 2 for a grant that needs two distinct approvers. */
  readonly approvalsRequired: number;
  readonly votes: readonly ApprovalVote[];
  /**
   * The replica holding the call open (`hold` delivery): when it stops or dies, the client's
   * connection went with it, and the request is withdrawn. Undefined for `retry` and `task`,
   * whose calls any replica can release.
   */
  readonly heldBy?: string | undefined;
}

export interface ApprovalQuery {
  readonly status?: ApprovalStatus;
  readonly limit?: number;
}

/** The call a request holds: the same agent and user, the same tool, the same arguments. */
export type ApprovalCallKey = Pick<
  ApprovalRequest,
  'agent' | 'user' | 'upstream' | 'tool' | 'argumentsHash'
>;

export interface ApprovalRepository {
  /** Rejects with STORE_CONFLICT when the id exists already. */
  create(request: ApprovalRequest): Promise<void>;
  get(id: string): Promise<ApprovalRequest | undefined>;
  /** The newest request for this call, in any status (a retried call finds its approval). */
  findLatest(call: ApprovalCallKey): Promise<ApprovalRequest | undefined>;
  /** Newest first; at most `limit` (default 100). */
  list(query?: ApprovalQuery): Promise<ApprovalRequest[]>;
  /**
   * Reads the request and replaces it with `change(current)` in one transaction that holds the
   * row (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT … FOR UPDATE), so two approvers acting at the
   * same moment are serialised and the second sees the first's result. `change` is synchronous;
   * when it throws, nothing is written and the error rejects the call. Resolves undefined when no
   * such request exists.
   */
  update(
    id: string,
    change: (current: ApprovalRequest) => ApprovalRequest,
  ): Promise<ApprovalRequest | undefined>;
}

/** One running replica as it announced itself to the others (gateway/cluster/). */
export interface ReplicaRecord {
  readonly id: string;
  /** Random per process: a second process claiming the same id is told apart from a restart. */
  readonly instance: string;
  /** Where the other replicas reach it for the internal hop; undefined: it takes no hops. */
  readonly url: string | undefined;
  readonly auditStream: string;
  readonly startedAt: number;
  /** Its last heartbeat, on the store's clock. */
  readonly seenAt: number;
  /** When it said it stopped; undefined while it runs (or when it died without saying). */
  readonly stoppedAt: number | undefined;
  readonly policyVersion: string;
  /** SHA-256 of its loaded configuration file: replicas started from different files differ. */
  readonly configDigest: string;
  /** A fingerprint of its argument-hash key (never the key): equal hashes need equal keys. */
  readonly hashKeyDigest: string;
}

/** What a replica announces: the rest is stamped by the store. */
export type ReplicaAnnouncement = Omit<ReplicaRecord, 'startedAt' | 'seenAt' | 'stoppedAt'>;

export interface ReplicaRepository {
  /**
   * Registers (or re-registers after a restart) a replica, stamped with the store's clock.
   * Rejects with STORE_CONFLICT when a replica that is not stopped and was seen within `liveMs`
   * holds the same audit stream (two writers on one chain would break it), or the same id with
   * another instance (the same replica started twice, or its previous instance not yet silent).
   */
  announce(replica: ReplicaAnnouncement, liveMs: number): Promise<ReplicaRecord>;
  /** Stamps the heartbeat (store clock) and what may have changed since the announcement. */
  heartbeat(
    id: string,
    changed: Pick<ReplicaRecord, 'policyVersion' | 'configDigest'>,
  ): Promise<void>;
  /** Marks it stopped: its sessions and held calls are gone. */
  stop(id: string): Promise<void>;
  /** Every replica ever announced, with the store's clock now (to judge liveness). */
  list(): Promise<{ readonly now: number; readonly replicas: ReplicaRecord[] }>;
}

/** A client session as every replica can find it: which replica holds its upstream half. */
export interface SessionRecord {
  readonly id: string;
  readonly replica: string;
  readonly agent: string;
  readonly upstream: string;
  readonly createdAt: number;
}

export interface SessionDirectory {
  record(session: SessionRecord): Promise<void>;
  find(id: string): Promise<SessionRecord | undefined>;
  forget(id: string): Promise<void>;
  /** Forgets every session a replica held (it stopped or died); returns how many. */
  forgetReplica(replica: string): Promise<number>;
}

/** Secrets the replicas share (the hop key, requestState keys), created once by whoever is first. */
export interface SharedSecretRepository {
  /**
   * The secret stored under `name`; when there is none yet, stores `candidate` and returns it.
   * Two replicas racing get the same value: the first insert wins.
   */
  getOrCreate(name: string, candidate: string): Promise<string>;
}

/**
 * One piece of the built-in authorization server's state (an oidc-provider model: a session, an
 * interaction, an authorization code, a grant, a refresh token, a registered client), shared by
 * the replicas. `payload` is the model's JSON, kept opaque here.
 */
export interface OAuthArtifact {
  /** The model name (`Session`, `AuthorizationCode`, `RefreshToken`, `Grant`, …). */
  readonly kind: string;
  readonly id: string;
  readonly payload: string;
  readonly grantId: string | undefined;
  readonly uid: string | undefined;
  readonly userCode: string | undefined;
  /** Epoch ms; undefined: kept until destroyed. */
  readonly expiresAt: number | undefined;
  /** Epoch ms when a one-time artifact (a code, a rotated refresh token) was used. */
  readonly consumedAt: number | undefined;
}

export interface OAuthArtifactRepository {
  /** Stores the artifact, replacing one of the same kind and id. */
  upsert(artifact: OAuthArtifact): Promise<void>;
  /** Expired artifacts are not found. */
  find(kind: string, id: string, now: number): Promise<OAuthArtifact | undefined>;
  findByUid(kind: string, uid: string, now: number): Promise<OAuthArtifact | undefined>;
  findByUserCode(kind: string, userCode: string, now: number): Promise<OAuthArtifact | undefined>;
  /**
   * Marks the artifact used at `at`. True only for the call that consumed it, so two replicas
   * racing with one code cannot both succeed.
   */
  consume(kind: string, id: string, at: number): Promise<boolean>;
  destroy(kind: string, id: string): Promise<void>;
  /** Deletes everything issued under a grant (any kind); returns how many. */
  revokeByGrantId(grantId: string): Promise<number>;
  deleteExpired(now: number): Promise<number>;
}

/** One pushed version of the policy and agents (`warden policy push`), which every replica applies. */
export interface PolicyBundle {
  /** 1, 2, 3, …: the newest is in force. */
  readonly id: number;
  /** SHA-256 of the canonical JSON of its sections: the same content pushed twice is one version. */
  readonly contentHash: string;
  /** The version its policy compiles to (PolicyEngine.version), as the replicas report it. */
  readonly policyVersion: string;
  /** Its sections as YAML (the policy sections of warden.yaml and `agents`). */
  readonly text: string;
  readonly pushedAt: number;
  /** `user@host` of whoever pushed it. */
  readonly pushedBy: string;
}

export interface PolicyBundleRepository {
  /**
   * Stores `bundle` as the newest version, unless the newest has the same content hash: then
   * nothing is written and that one is returned with `created: false`. Pushes are serialised.
   */
  push(bundle: Omit<PolicyBundle, 'id'>): Promise<{ bundle: PolicyBundle; created: boolean }>;
  latest(): Promise<PolicyBundle | undefined>;
  /** Newest first, at most `limit` (default 20). */
  list(limit?: number): Promise<PolicyBundle[]>;
  /**
   * Told the id of each newly pushed bundle: from any process on PostgreSQL (NOTIFY), from this
   * store only on SQLite (readers poll `latest()` for other processes' pushes).
   */
  subscribe(listener: (id: number) => void): Promise<() => Promise<void>>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly signingKeys: SigningKeyRepository;
  readonly assertionReplays: AssertionReplayRepository;
  readonly secretFailures: SecretFailureRepository;
  readonly revocations: RevocationRepository;
  readonly audit: AuditRepository;
  readonly policyStates: PolicyStateRepository;
  readonly breakGlass: BreakGlassRepository;
  readonly toolDefinitions: ToolDefinitionRepository;
  readonly quotas: QuotaRepository;
  readonly approvals: ApprovalRepository;
  readonly replicas: ReplicaRepository;
  readonly sessions: SessionDirectory;
  readonly sharedSecrets: SharedSecretRepository;
  readonly policyBundles: PolicyBundleRepository;
  readonly oauthArtifacts: OAuthArtifactRepository;
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
