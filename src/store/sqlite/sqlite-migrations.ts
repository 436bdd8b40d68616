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
