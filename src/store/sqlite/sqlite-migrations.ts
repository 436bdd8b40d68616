/** The SQLite schema, as numbered migrations, and the runner that applies them. */
import type { Database } from 'better-sqlite3';
import { StoreError, describeCause } from '../errors.js';
import { planMigrations, type Migration } from '../migrations.js';

// STRICT tables: SQLite otherwise stores whatever type it is given; times are epoch ms integers.
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'signing keys and revocations',
    sql: `
      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        algorithm TEXT NOT NULL,
        private_jwk TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        rotated_at INTEGER,
        retire_at INTEGER
      ) STRICT;
      CREATE TABLE revocations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('token', 'agent', 'user')),
        subject TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        revoked_by TEXT NOT NULL
      ) STRICT;
      CREATE INDEX revocations_kind_subject ON revocations (kind, subject);
      CREATE INDEX revocations_expires_at ON revocations (expires_at);
    `,
  },
  {
    version: 2,
    name: 'audit log',
    // record: the canonical JSON the chain hashed, the source of truth; the columns before it
    // are copies for queries. roles: a JSON array, matched with json_each. time_ms: epoch ms.
    sql: `
      CREATE TABLE audit_records (
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        event TEXT NOT NULL,
        request_id TEXT,
        trace_id TEXT,
        user_id TEXT,
        agent_id TEXT,
        roles TEXT,
        tool TEXT,
        upstream TEXT,
        effect TEXT,
        record TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (stream, seq)
      ) STRICT;
      CREATE INDEX audit_records_time ON audit_records (time_ms, stream, seq);
      CREATE INDEX audit_records_request_id ON audit_records (request_id);
      CREATE INDEX audit_records_user ON audit_records (user_id, time_ms);
      CREATE INDEX audit_records_agent ON audit_records (agent_id, time_ms);
      CREATE INDEX audit_records_tool ON audit_records (tool, time_ms);
      CREATE TABLE audit_checkpoints (
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (stream, seq)
      ) STRICT;
      CREATE TABLE audit_keys (
        key_id TEXT PRIMARY KEY,
        private_key_pem TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'policy state, break-glass, tool definitions, quotas and approvals',
    // Arrays (roles, grants, scopes, approver_roles, votes) are JSON text. quota_charges.amount is
    // REAL: a budget charges an argument's value, which need not be whole.
    sql: `
      CREATE TABLE policy_states (
        name TEXT PRIMARY KEY,
        is_on INTEGER NOT NULL CHECK (is_on IN (0, 1)),
        changed_at INTEGER NOT NULL,
        changed_by TEXT NOT NULL,
        reason TEXT NOT NULL
      ) STRICT;
      CREATE TABLE break_glass_grants (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        tool TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) STRICT;
      CREATE INDEX break_glass_grants_expires_at ON break_glass_grants (expires_at);
      CREATE TABLE tool_definitions (
        upstream TEXT NOT NULL,
        tool TEXT NOT NULL,
        hash TEXT NOT NULL,
        definition TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL,
        approved_at INTEGER,
        approved_by TEXT,
        PRIMARY KEY (upstream, tool, hash)
      ) STRICT;
      CREATE TABLE quota_charges (
        id INTEGER PRIMARY KEY,
        quota_key TEXT NOT NULL,
        amount REAL NOT NULL,
        charged_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX quota_charges_key_time ON quota_charges (quota_key, charged_at);
      CREATE INDEX quota_charges_time ON quota_charges (charged_at);
      CREATE TABLE approval_requests (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        status TEXT NOT NULL
          CHECK (status IN ('pending', 'granted', 'refused', 'expired', 'withdrawn')),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_at INTEGER,
        consumed_at INTEGER,
        user_id TEXT,
        agent TEXT NOT NULL,
        roles TEXT NOT NULL,
        model TEXT,
        upstream TEXT NOT NULL,
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        arguments_hash TEXT NOT NULL,
        tool_definition_hash TEXT,
        policy_version TEXT NOT NULL,
        grants TEXT NOT NULL,
        scopes TEXT NOT NULL,
        approver_roles TEXT NOT NULL,
        approvals_required INTEGER NOT NULL,
        votes TEXT NOT NULL
      ) STRICT;
      CREATE INDEX approval_requests_created ON approval_requests (created_at, id);
      CREATE INDEX approval_requests_status ON approval_requests (status, created_at, id);
    `,
  },
  {
    version: 4,
    name: 'approval requests can be invalidated',
    // SQLite cannot alter a CHECK constraint: the table is rebuilt with the new status allowed.
    sql: `
      CREATE TABLE approval_requests_v4 (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        status TEXT NOT NULL
          CHECK (status IN ('pending', 'granted', 'refused', 'expired', 'withdrawn', 'invalidated')),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_at INTEGER,
        consumed_at INTEGER,
        user_id TEXT,
        agent TEXT NOT NULL,
        roles TEXT NOT NULL,
        model TEXT,
        upstream TEXT NOT NULL,
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        arguments_hash TEXT NOT NULL,
        tool_definition_hash TEXT,
        policy_version TEXT NOT NULL,
        grants TEXT NOT NULL,
        scopes TEXT NOT NULL,
        approver_roles TEXT NOT NULL,
        approvals_required INTEGER NOT NULL,
        votes TEXT NOT NULL
      ) STRICT;
      INSERT INTO approval_requests_v4 SELECT * FROM approval_requests;
      DROP TABLE approval_requests;
      ALTER TABLE approval_requests_v4 RENAME TO approval_requests;
      CREATE INDEX approval_requests_created ON approval_requests (created_at, id);
      CREATE INDEX approval_requests_status ON approval_requests (status, created_at, id);
    `,
  },
  {
    version: 5,
    name: 'approval requests found by the call they hold',
    // A retried call (approvals.delivery: retry) looks for the newest request of the same call.
    sql: `
      CREATE INDEX approval_requests_call
        ON approval_requests (agent, upstream, tool, arguments_hash, created_at);
    `,
  },
  {
    version: 6,
    name: 'replicas, the sessions they hold and the secrets they share',
    // Several replicas on one store: who runs, which replica holds each client session (so any
    // replica can hop a request to it), and keys every replica must agree on. held_by: the
    // replica holding a call open for approval, so a dead one's requests are not left pending.
    sql: `
      CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        url TEXT,
        audit_stream TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        seen_at INTEGER NOT NULL,
        stopped_at INTEGER,
        policy_version TEXT NOT NULL,
        config_digest TEXT NOT NULL,
        hash_key_digest TEXT NOT NULL
      );
      CREATE TABLE client_sessions (
        id TEXT PRIMARY KEY,
        replica TEXT NOT NULL,
        agent TEXT NOT NULL,
        upstream TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX client_sessions_replica ON client_sessions (replica);
      CREATE TABLE shared_secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      ALTER TABLE approval_requests ADD COLUMN held_by TEXT;
    `,
  },
  {
    version: 7,
    name: 'pending approvals found by the replica holding their call',
    // A replica found dead withdraws the held calls it left pending: found by held_by.
    sql: `
      CREATE INDEX approval_requests_held_by
        ON approval_requests (held_by) WHERE status = 'pending';
    `,
  },
  {
    version: 8,
    name: 'identity protections shared by replicas',
    // The token endpoint's protections, shared so every replica answers alike: assertion ids
    // already used (kept until the assertion expires; jti as its SHA-256), and wrong client
    // secrets, one row per failure, counted per source (kind 'source') or against the client's
    // budget from every source (kind 'client').
    sql: `
      CREATE TABLE client_assertions (
        issuer TEXT NOT NULL,
        jti_hash TEXT NOT NULL,
        keep_until INTEGER NOT NULL,
        PRIMARY KEY (issuer, jti_hash)
      ) STRICT;
      CREATE INDEX client_assertions_keep_until ON client_assertions (keep_until);
      CREATE TABLE secret_failures (
        id INTEGER PRIMARY KEY,
        client_id TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('source', 'client')),
        at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX secret_failures_client ON secret_failures (client_id, kind, at);
      CREATE INDEX secret_failures_at ON secret_failures (at);
    `,
  },
  {
    version: 9,
    name: 'policy bundles pushed to every replica',
    // `warden policy push`: versions of the policy and agents; every replica applies the newest.
    sql: `
      CREATE TABLE policy_bundles (
        id INTEGER PRIMARY KEY,
        content_hash TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        text TEXT NOT NULL,
        pushed_at INTEGER NOT NULL,
        pushed_by TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 10,
    name: 'authorization server artifacts shared by replicas',
    // The built-in authorization server's state (oidc-provider models: sessions, interactions,
    // authorization codes, grants, refresh tokens, registered clients), so any replica can finish
    // a login another one began. One row per (kind, id); grant_id lets a grant be revoked with
    // everything issued under it, uid finds a session, user_code a device code.
    sql: `
      CREATE TABLE oauth_artifacts (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        payload TEXT NOT NULL,
        grant_id TEXT,
        uid TEXT,
        user_code TEXT,
        expires_at INTEGER,
        consumed_at INTEGER,
        PRIMARY KEY (kind, id)
      ) STRICT;
      CREATE INDEX oauth_artifacts_grant ON oauth_artifacts (grant_id) WHERE grant_id IS NOT NULL;
      CREATE INDEX oauth_artifacts_uid ON oauth_artifacts (kind, uid) WHERE uid IS NOT NULL;
      CREATE INDEX oauth_artifacts_user_code ON oauth_artifacts (kind, user_code)
        WHERE user_code IS NOT NULL;
      CREATE INDEX oauth_artifacts_expires_at ON oauth_artifacts (expires_at)
        WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 11,
    name: 'client certificate revocations by serial',
    // `warden certs revoke --serial`: a new revocation kind. SQLite cannot alter a CHECK, so the
    // table is rebuilt with its rows and ids (the feed's watermark is the id).
    sql: `
      CREATE TABLE revocations_v11 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('token', 'agent', 'user', 'certificate')),
        subject TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        revoked_by TEXT NOT NULL
      ) STRICT;
      INSERT INTO revocations_v11 (id, kind, subject, revoked_at, expires_at, reason, revoked_by)
        SELECT id, kind, subject, revoked_at, expires_at, reason, revoked_by FROM revocations;
      DROP TABLE revocations;
      ALTER TABLE revocations_v11 RENAME TO revocations;
      CREATE INDEX revocations_kind_subject ON revocations (kind, subject);
      CREATE INDEX revocations_expires_at ON revocations (expires_at);
    `,
  },
];

/**
 * Applies the pending migrations. Each runs in a BEGIN IMMEDIATE transaction that re-checks it is
 * still pending, so a second process opening the same file at the same moment waits (busy
 * timeout) and then skips it instead of applying it twice.
 */
export function migrateSqlite(db: Database, now: () => number): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT
  `);
  const selectVersions = db.prepare('SELECT version FROM schema_migrations').pluck();
  const isApplied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  );
  const applyOnce = db.transaction((migration: Migration) => {
    if (isApplied.get(migration.version) !== undefined) return;
    db.exec(migration.sql);
    record.run(migration.version, migration.name, now());
  });

  for (const migration of planMigrations(SQLITE_MIGRATIONS, selectVersions.all() as number[])) {
    try {
      applyOnce.immediate(migration);
    } catch (cause) {
      throw new StoreError(
        'STORE_MIGRATION_FAILED',
        `SQLite migration ${migration.version} (${migration.name}) failed and was rolled back: ${describeCause(cause)}`,
        { cause },
      );
    }
  }
}
