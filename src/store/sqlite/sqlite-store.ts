/**
 * The embedded store: one SQLite file (or memory) through better-sqlite3. Its calls are
 * synchronous but short (single-row writes on prepared statements); the repositories are async
 * so callers are written once for both backends. The audit log's batched writes are the
 * exception: they run on a writer thread (see sqlite-audit-writer-thread.ts).
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { StoreError, describeCause, toStoreError } from '../errors.js';
import { RevocationListeners } from '../revocation-listeners.js';
import {
  assertEpochMs,
  REVOCATION_COLUMNS,
  SIGNING_KEY_COLUMNS,
  toAppliedMigration,
  toRevocation,
  toRevocationParams,
  toSigningKey,
  toSigningKeyParams,
  type Row,
} from '../row-mapping.js';
import type { OpenStoreOptions, Store } from '../types.js';
import { createSqliteAuditRepository } from './sqlite-audit-repository.js';
import { isSqliteDuplicateKey } from './sqlite-errors.js';
import { migrateSqlite } from './sqlite-migrations.js';
import { createSqliteClusterRepositories } from './sqlite-cluster-repositories.js';
import { createSqliteIdentityRepositories } from './sqlite-identity-repositories.js';
import { createSqlitePolicyRepositories } from './sqlite-policy-repositories.js';
import { createSqlitePolicyBundles } from './sqlite-policy-bundles.js';
import { createSqliteOAuthArtifacts } from './sqlite-oauth-artifacts.js';

const MEMORY = ':memory:';
/** How long a write waits for another connection's lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;
/** How often subscribers look for revocations written by another process (e.g. the CLI). */
const POLL_MS = 500;

/** `sqlite:PATH` → absolute path, `sqlite::memory:` → `:memory:`. */
export function parseSqliteUrl(url: string): string {
  const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : '';
  if (path === '') {
    throw new StoreError(
      'STORE_URL_INVALID',
      'a SQLite store URL is sqlite:PATH or sqlite::memory:',
      {
        target: url,
      },
    );
  }
  return path === MEMORY ? MEMORY : resolve(path);
}

/** Opens (creating if needed) and migrates the SQLite store at a `sqlite:` URL. */
export function openSqliteStore(url: string, options: OpenStoreOptions = {}): Store {
  const path = parseSqliteUrl(url);
  const now = options.now ?? Date.now;
  const db = openDatabase(path);
  try {
    migrateSqlite(db, now);
  } catch (cause) {
    db.close();
    throw cause instanceof StoreError
      ? cause
      : new StoreError(
          'STORE_MIGRATION_FAILED',
          `cannot migrate ${path}: ${describeCause(cause)}`,
          {
            cause,
            target: path,
          },
        );
  }
  return createSqliteStore(db, path, now, options.onError ?? ignoreError);
}

function openDatabase(path: string): SqliteDatabase {
  let db: SqliteDatabase | undefined;
  try {
    if (path !== MEMORY) mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    // WAL lets readers (audit verify, the console) run beside the writer without blocking it.
    const journalMode: unknown = db.pragma('journal_mode = WAL', { simple: true });
    if (path !== MEMORY && journalMode !== 'wal') {
      throw new Error(`the file system refused WAL mode (journal_mode is ${String(journalMode)})`);
    }
    // FULL syncs the WAL on every commit. NORMAL would never corrupt the file, but a power loss
    // could undo the last commits: a revocation or a key rotation that was acknowledged. Writes
    // here are rare (keys, revocations), so the extra fsync per commit costs nothing noticeable.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (cause) {
    db?.close();
    throw new StoreError(
      'STORE_OPEN_FAILED',
      `cannot open the SQLite store at ${path}: ${describeCause(cause)}`,
      { cause, target: path },
    );
  }
}

function createSqliteStore(
  db: SqliteDatabase,
  path: string,
  now: () => number,
  onError: (error: Error) => void,
): Store {
  let closed = false;
  const listeners = new RevocationListeners(onError);
  /** Highest revocation id already delivered; ids of our own adds are delivered at add(). */
  let watermark = 0;
  const ownIds = new Set<number>();
  let poller: NodeJS.Timeout | undefined;
  /** Told of this store's own key inserts (another process's are found by re-reading). */
  const keyListeners = new Set<() => void>();
  const sql = {
    listKeys: db.prepare(
      `SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid`,
    ),
    insertKey: db.prepare(
      `INSERT INTO signing_keys (${SIGNING_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    rotateKeys: db.prepare(
      'UPDATE signing_keys SET rotated_at = ?, retire_at = ? WHERE rotated_at IS NULL',
    ),
    deleteRetiredKeys: db.prepare(
      'DELETE FROM signing_keys WHERE retire_at IS NOT NULL AND retire_at <= ?',
    ),
    insertRevocation: db.prepare(
      `INSERT INTO revocations (${REVOCATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    listActiveRevocations: db.prepare(
      `SELECT ${REVOCATION_COLUMNS} FROM revocations WHERE expires_at > ? ORDER BY id`,
    ),
    maxRevocationId: db.prepare('SELECT coalesce(max(id), 0) FROM revocations').pluck(),
    revocationsAfter: db.prepare(
      `SELECT id, ${REVOCATION_COLUMNS} FROM revocations WHERE id > ? ORDER BY id`,
    ),
    deleteExpiredRevocations: db.prepare('DELETE FROM revocations WHERE expires_at <= ?'),
    listMigrations: db.prepare(
      'SELECT version, name, applied_at FROM schema_migrations ORDER BY version',
    ),
  };

  function assertOpen(action: string): void {
    if (closed) {
      throw new StoreError('STORE_CLOSED', `cannot ${action}: the store is closed`, {
        target: path,
      });
    }
  }

  /** Runs one statement, turning driver errors into StoreErrors. */
  function run<T>(action: string, statement: () => T): T {
    assertOpen(action);
    try {
      return statement();
    } catch (cause) {
      throw toStoreError(cause, action, path, isSqliteDuplicateKey(cause));
    }
  }

  const audit = createSqliteAuditRepository({
    db,
    file: path === MEMORY ? undefined : path,
    target: path,
    busyTimeoutMs: BUSY_TIMEOUT_MS,
    now,
    assertOpen,
    run,
  });

  // SQLite has one writer at a time, so ids are handed out in commit order, and AUTOINCREMENT
  // never reuses one: everything another process commits after the watermark has a higher id.
  function deliverOtherProcessesRevocations(): void {
    try {
      const rows = run('poll revocations', () => sql.revocationsAfter.all(watermark) as Row[]);
      for (const row of rows) {
        watermark = Number(row['id']);
        if (!ownIds.delete(watermark)) listeners.deliver(toRevocation(row));
      }
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  function startPolling(): void {
    if (poller !== undefined || path === MEMORY) return;
    watermark = Number(sql.maxRevocationId.get());
    // unref: an idle store must not keep the process alive; its owner closes it.
    poller = setInterval(deliverOtherProcessesRevocations, POLL_MS).unref();
  }

  return {
    kind: 'sqlite',
    signingKeys: {
      list: async () =>
        run('list signing keys', () => sql.listKeys.all() as Row[]).map(toSigningKey),
      insert: async (key) => {
        const params = toSigningKeyParams(key);
        run('insert a signing key', () => sql.insertKey.run(params));
        for (const listener of keyListeners) {
          try {
            listener();
          } catch (error) {
            onError(error instanceof Error ? error : new Error(String(error)));
          }
        }
      },
      markRotated: async (at, retireAt) => {
        assertEpochMs('at', at);
        assertEpochMs('retireAt', retireAt);
        run('rotate signing keys', () => sql.rotateKeys.run(at, retireAt));
      },
      deleteRetired: async (now) => {
        assertEpochMs('now', now);
        run('delete retired signing keys', () => sql.deleteRetiredKeys.run(now));
      },
      subscribe: async (listener) => {
        assertOpen('subscribe to signing keys');
        keyListeners.add(listener);
        return async () => {
          keyListeners.delete(listener);
        };
      },
    },
    revocations: {
      add: async (revocation) => {
        const params = toRevocationParams(revocation);
        const { lastInsertRowid } = run('add a revocation', () => sql.insertRevocation.run(params));
        if (poller !== undefined) ownIds.add(Number(lastInsertRowid));
        // Delivered after the commit, before add() resolves: a revocation is in force in this
        // process as soon as it is acknowledged.
        listeners.deliver({ ...revocation });
      },
      listActive: async (now) => {
        assertEpochMs('now', now);
        return run('list revocations', () => sql.listActiveRevocations.all(now) as Row[]).map(
          toRevocation,
        );
      },
      deleteExpired: async (now) => {
        assertEpochMs('now', now);
        return run('delete expired revocations', () => sql.deleteExpiredRevocations.run(now))
          .changes;
      },
      subscribe: async (listener) => {
        run('subscribe to revocations', () => {
          startPolling();
          listeners.add(listener);
        });
        return async () => listeners.delete(listener);
      },
    },
    audit: audit.repository,
    ...createSqlitePolicyRepositories(db, run),
    ...createSqliteClusterRepositories(db, run, now),
    ...createSqliteIdentityRepositories(db, run),
    policyBundles: createSqlitePolicyBundles(db, run, onError),
    oauthArtifacts: createSqliteOAuthArtifacts(db, run),
    listAppliedMigrations: async () =>
      run('list migrations', () => sql.listMigrations.all() as Row[]).map(toAppliedMigration),
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(poller);
      listeners.clear();
      keyListeners.clear();
      // The writer thread first: its queued appends commit before the last connection closes.
      await audit.close();
      db.close();
    },
  };
}

function ignoreError(): void {}
