/** The PostgreSQL schema, as numbered migrations, and the runner that applies them. */
import type pg from 'pg';
import { StoreError, describeCause } from '../errors.js';
import { planMigrations, type Migration } from '../migrations.js';
import { quoteIdentifier, type PostgresTarget } from './postgres-target.js';

// Same versions and tables as SQLITE_MIGRATIONS; times are epoch ms in BIGINT.
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'signing keys and revocations',
    sql: `
      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        algorithm TEXT NOT NULL,
        private_jwk TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        rotated_at BIGINT,
        retire_at BIGINT
      );
      CREATE TABLE revocations (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('token', 'agent', 'user')),
        subject TEXT NOT NULL,
        revoked_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        reason TEXT NOT NULL,
        revoked_by TEXT NOT NULL
      );
      CREATE INDEX revocations_kind_subject ON revocations (kind, subject);
      CREATE INDEX revocations_expires_at ON revocations (expires_at);
    `,
  },
  {
    version: 2,
    name: 'audit log',
    // record: the canonical JSON the chain hashed, the source of truth, kept as TEXT because JSONB
    // would re-serialise it; the columns before it are copies for queries. roles: JSONB, matched
    // with the ? operator. time_ms: epoch ms.
    sql: `
      CREATE TABLE audit_records (
        stream TEXT NOT NULL,
        seq BIGINT NOT NULL,
        time_ms BIGINT NOT NULL,
        event TEXT NOT NULL,
        request_id TEXT,
        trace_id TEXT,
        user_id TEXT,
        agent_id TEXT,
        roles JSONB,
        tool TEXT,
        upstream TEXT,
        effect TEXT,
        record TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (stream, seq)
      );
      CREATE INDEX audit_records_time ON audit_records (time_ms, stream, seq);
      CREATE INDEX audit_records_request_id ON audit_records (request_id);
      CREATE INDEX audit_records_user ON audit_records (user_id, time_ms);
      CREATE INDEX audit_records_agent ON audit_records (agent_id, time_ms);
      CREATE INDEX audit_records_tool ON audit_records (tool, time_ms);
      CREATE TABLE audit_checkpoints (
        stream TEXT NOT NULL,
        seq BIGINT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (stream, seq)
      );
      CREATE TABLE audit_keys (
        key_id TEXT PRIMARY KEY,
        private_key_pem TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'policy state, break-glass, tool definitions, quotas and approvals',
    // Arrays (roles, grants, scopes, approver_roles, votes) are JSON kept as TEXT, read back as
    // written. quota_charges.amount is DOUBLE PRECISION: a budget charges an argument's value.
    // Names and ids sort by code point (COLLATE "C"), as in SQLite, whatever the database locale.
    sql: `
      CREATE TABLE policy_states (
        name TEXT COLLATE "C" PRIMARY KEY,
        is_on BOOLEAN NOT NULL,
        changed_at BIGINT NOT NULL,
        changed_by TEXT NOT NULL,
        reason TEXT NOT NULL
      );
      CREATE TABLE break_glass_grants (
        id TEXT COLLATE "C" PRIMARY KEY,
        agent TEXT NOT NULL,
        tool TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
      CREATE INDEX break_glass_grants_expires_at ON break_glass_grants (expires_at);
      CREATE TABLE tool_definitions (
        upstream TEXT COLLATE "C" NOT NULL,
        tool TEXT COLLATE "C" NOT NULL,
        hash TEXT NOT NULL,
        definition TEXT NOT NULL,
        first_seen_at BIGINT NOT NULL,
        approved_at BIGINT,
        approved_by TEXT,
        PRIMARY KEY (upstream, tool, hash)
      );
      CREATE TABLE quota_charges (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        quota_key TEXT NOT NULL,
        amount DOUBLE PRECISION NOT NULL,
        charged_at BIGINT NOT NULL
      );
      CREATE INDEX quota_charges_key_time ON quota_charges (quota_key, charged_at);
      CREATE INDEX quota_charges_time ON quota_charges (charged_at);
      CREATE TABLE approval_requests (
        id TEXT COLLATE "C" PRIMARY KEY,
        request_id TEXT NOT NULL,
        status TEXT NOT NULL
          CHECK (status IN ('pending', 'granted', 'refused', 'expired', 'withdrawn')),
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_at BIGINT,
        consumed_at BIGINT,
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
      );
      CREATE INDEX approval_requests_created ON approval_requests (created_at, id);
      CREATE INDEX approval_requests_status ON approval_requests (status, created_at, id);
    `,
  },
  {
    version: 4,
    name: 'approval requests can be invalidated',
    sql: `
      ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_status_check;
      ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_status_check
        CHECK (status IN ('pending', 'granted', 'refused', 'expired', 'withdrawn', 'invalidated'));
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
        started_at BIGINT NOT NULL,
        seen_at BIGINT NOT NULL,
        stopped_at BIGINT,
        policy_version TEXT NOT NULL,
        config_digest TEXT NOT NULL,
        hash_key_digest TEXT NOT NULL
      );
      CREATE TABLE client_sessions (
        id TEXT PRIMARY KEY,
        replica TEXT NOT NULL,
        agent TEXT NOT NULL,
        upstream TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX client_sessions_replica ON client_sessions (replica);
      CREATE TABLE shared_secrets (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        created_at BIGINT NOT NULL
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
        keep_until BIGINT NOT NULL,
        PRIMARY KEY (issuer, jti_hash)
      );
      CREATE INDEX client_assertions_keep_until ON client_assertions (keep_until);
      CREATE TABLE secret_failures (
        id BIGSERIAL PRIMARY KEY,
        client_id TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('source', 'client')),
        at BIGINT NOT NULL
      );
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
        id BIGINT PRIMARY KEY,
        content_hash TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        text TEXT NOT NULL,
        pushed_at BIGINT NOT NULL,
        pushed_by TEXT NOT NULL
      );
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
        expires_at BIGINT,
        consumed_at BIGINT,
        PRIMARY KEY (kind, id)
      );
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
    // `warden certs revoke --serial`: a new revocation kind (the column CHECK PostgreSQL named).
    sql: `
      ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
      ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
        CHECK (kind IN ('token', 'agent', 'user', 'certificate'));
    `,
  },
];

/**
 * Creates the schema if missing and applies the pending migrations, each in its own transaction.
 * A session advisory lock makes replicas that start together take turns: the second one waits,
 * then finds nothing pending.
 */
export async function migratePostgres(
  pool: pg.Pool,
  target: PostgresTarget,
  now: () => number,
): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    throw new StoreError(
      'STORE_OPEN_FAILED',
      `cannot connect to PostgreSQL at ${target.redacted}: ${describeCause(cause)}`,
      { cause, target: target.redacted },
    );
  }
  let failed = false;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [target.lockKey]);
    if (target.schema !== undefined) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(target.schema)}`);
    }
    await client.query(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at BIGINT NOT NULL
      )
    `);
    const applied = await client.query<{ version: number }>(
      'SELECT version FROM schema_migrations',
    );
    const pending = planMigrations(
      POSTGRES_MIGRATIONS,
      applied.rows.map((row) => row.version),
    );
    for (const migration of pending) await applyMigration(client, migration, now);
    await client.query('SELECT pg_advisory_unlock($1)', [target.lockKey]);
  } catch (cause) {
    failed = true;
    throw cause instanceof StoreError
      ? cause
      : new StoreError(
          'STORE_MIGRATION_FAILED',
          `cannot migrate PostgreSQL at ${target.redacted}: ${describeCause(cause)}`,
          { cause, target: target.redacted },
        );
  } finally {
    // After a failure the connection is destroyed, which also drops the advisory lock.
    client.release(failed);
  }
}

async function applyMigration(
  client: pg.PoolClient,
  migration: Migration,
  now: () => number,
): Promise<void> {
  try {
    await client.query('BEGIN');
    await client.query(migration.sql);
    await client.query(
      'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
      [migration.version, migration.name, now()],
    );
    await client.query('COMMIT');
  } catch (cause) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new StoreError(
      'STORE_MIGRATION_FAILED',
      `PostgreSQL migration ${migration.version} (${migration.name}) failed and was rolled back: ${describeCause(cause)}`,
      { cause },
    );
  }
}
