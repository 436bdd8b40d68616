/**
 * The scale-out store: PostgreSQL through a `pg` Pool, shared by every replica. Revocations are
 * broadcast with NOTIFY (payload: the row id) on a per-schema channel, so every replica's
 * subscribers hear every revocation within a round trip.
 */
import pg from 'pg';
import { StoreError, toStoreError } from '../errors.js';
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
import type { OpenStoreOptions, Revocation, Store } from '../types.js';
import { createPostgresAuditRepository } from './postgres-audit-repository.js';
import { migratePostgres } from './postgres-migrations.js';
import { createPostgresClusterRepositories } from './postgres-cluster-repositories.js';
import { createPostgresOAuthArtifacts } from './postgres-oauth-artifacts.js';
import {
  createPostgresIdentityRepositories,
  createSigningKeyFeed,
} from './postgres-identity-repositories.js';
import { createPostgresPolicyRepositories } from './postgres-policy-repositories.js';
import { createPostgresPolicyBundles } from './postgres-policy-bundles.js';
import { resolvePostgresTarget, type PostgresTarget } from './postgres-target.js';
import { RevocationFeed } from './revocation-feed.js';

const CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 30_000;
/** Own ids remembered so this store's NOTIFY echo is not delivered twice (best effort). */
const MAX_OWN_IDS = 1024;
const UNIQUE_VIOLATION = '23505';

/** Opens a pool at a `postgres://` URL, migrates (under an advisory lock) and returns the store. */
export async function openPostgresStore(
  url: string,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const target = resolvePostgresTarget(url, options.schema);
  const now = options.now ?? Date.now;
  const onError = options.onError ?? ignoreError;
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    application_name: 'warden',
  });
  // An idle pooled connection that dies emits 'error' on the pool; unhandled, it would crash.
  pool.on('error', (cause) => {
    const message = `an idle PostgreSQL connection failed: ${cause.message}`;
    onError(new StoreError('STORE_QUERY_FAILED', message, { cause, target: target.redacted }));
  });
  try {
    await migratePostgres(pool, target, now);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  return createPostgresStore(pool, target, now, onError);
}

function createPostgresStore(
  pool: pg.Pool,
  target: PostgresTarget,
  now: () => number,
  onError: (error: Error) => void,
): Store {
  let closed = false;
  const listeners = new RevocationListeners(onError);
  const ownIds = new Set<string>();
  const addsInFlight = new Set<Promise<Row[]>>();

  function assertOpen(action: string): void {
    if (closed) {
      throw new StoreError('STORE_CLOSED', `cannot ${action}: the store is closed`, {
        target: target.redacted,
      });
    }
  }

  /** Runs one statement on the pool; a `name` makes it a prepared statement on each connection. */
  async function query(
    action: string,
    text: string,
    values: unknown[] = [],
    name?: string,
  ): Promise<Row[]> {
    assertOpen(action);
    try {
      const config = name === undefined ? { text, values } : { name, text, values };
      return (await pool.query(config)).rows as Row[];
    } catch (cause) {
      throw toStoreError(cause, action, target.redacted, isDuplicateKey(cause));
    }
  }

  /** Runs `work` in a transaction on one pooled connection, rolled back if anything throws. */
  async function transaction<T>(
    action: string,
    work: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    assertOpen(action);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (cause) {
      throw toStoreError(cause, action, target.redacted, false);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (cause) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw toStoreError(cause, action, target.redacted, isDuplicateKey(cause));
    } finally {
      // A connection that cannot even roll back is destroyed rather than returned to the pool.
      client.release(broken);
    }
  }

  async function listActive(at: number): Promise<Revocation[]> {
    assertEpochMs('now', at);
    const rows = await query(
      'list revocations',
      `SELECT ${REVOCATION_COLUMNS} FROM revocations WHERE expires_at > $1 ORDER BY id`,
      [at],
    );
    return rows.map(toRevocation);
  }

  async function deliverNotified(id: string): Promise<void> {
    // The echo of our own add() can arrive on the LISTEN connection before the INSERT's reply is
    // processed; an add still in flight may be its origin, so let those record their ids first.
    if (addsInFlight.size > 0) await Promise.allSettled(addsInFlight);
    if (closed || ownIds.delete(id)) return;
    const rows = await query(
      'read a notified revocation',
      `SELECT ${REVOCATION_COLUMNS} FROM revocations WHERE id = $1`,
      [id],
    );
    // No row: it expired and was deleted before we read it, so there is nothing to enforce.
    for (const row of rows) listeners.deliver(toRevocation(row));
  }

  const feed = new RevocationFeed({
    connectionString: target.connectionString,
    channel: target.channel,
    applicationName: `warden-listen:${target.schema ?? ''}`,
    target: target.redacted,
    onNotification: (id) => {
      deliverNotified(id).catch(onError);
    },
    onReconnect: () => {
      listActive(now()).then((active) => active.forEach((r) => listeners.deliver(r)), onError);
    },
    onError,
  });

  const policyBundles = createPostgresPolicyBundles({ query, transaction, target, onError });

  const signingKeyFeed = createSigningKeyFeed(target, onError);

  function rememberOwnId(id: string): void {
    ownIds.add(id);
    if (ownIds.size > MAX_OWN_IDS) {
      const oldest = ownIds.values().next();
      if (oldest.done !== true) ownIds.delete(oldest.value);
    }
  }

  return {
    kind: 'postgres',
    signingKeys: {
      list: async () => {
        const rows = await query(
          'list signing keys',
          `SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid`,
        );
        return rows.map(toSigningKey);
      },
      insert: async (key) => {
        // One statement: the other replicas hear of the key only once it is committed.
        await query(
          'insert a signing key',
          `WITH inserted AS (
             INSERT INTO signing_keys (${SIGNING_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING kid
           )
           SELECT pg_notify($8, kid) FROM inserted`,
          [...toSigningKeyParams(key), signingKeyFeed.channel],
        );
      },
      subscribe: (listener) => {
        assertOpen('subscribe to signing keys');
        return signingKeyFeed.subscribe(listener);
      },
      markRotated: async (at, retireAt) => {
        assertEpochMs('at', at);
        assertEpochMs('retireAt', retireAt);
        await query(
          'rotate signing keys',
          'UPDATE signing_keys SET rotated_at = $1, retire_at = $2 WHERE rotated_at IS NULL',
          [at, retireAt],
        );
      },
      deleteRetired: async (at) => {
        assertEpochMs('now', at);
        await query(
          'delete retired signing keys',
          'DELETE FROM signing_keys WHERE retire_at IS NOT NULL AND retire_at <= $1',
          [at],
        );
      },
    },
    revocations: {
      add: async (revocation) => {
        const params = toRevocationParams(revocation);
        // One statement, so one implicit transaction: the NOTIFY goes out only if the row commits.
        const inserting = query(
          'add a revocation',
          `WITH inserted AS (
             INSERT INTO revocations (${REVOCATION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
           )
           SELECT id::text AS id, pg_notify($7, id::text) FROM inserted`,
          [...params, target.channel],
        );
        addsInFlight.add(inserting);
        let rows: Row[];
        try {
          rows = await inserting;
        } finally {
          addsInFlight.delete(inserting);
        }
        // In force in this process as soon as add() resolves, without waiting for the echo.
        const id = rows[0]?.['id'];
        if (listeners.size > 0 && typeof id === 'string') rememberOwnId(id);
        listeners.deliver({ ...revocation });
      },
      listActive,
      deleteExpired: async (at) => {
        assertEpochMs('now', at);
        const rows = await query(
          'delete expired revocations',
          'DELETE FROM revocations WHERE expires_at <= $1 RETURNING id',
          [at],
        );
        return rows.length;
      },
      subscribe: async (listener) => {
        if (closed) {
          throw new StoreError('STORE_CLOSED', 'cannot subscribe: the store is closed', {
            target: target.redacted,
          });
        }
        listeners.add(listener);
        try {
          await feed.start();
        } catch (error) {
          listeners.delete(listener);
          throw error;
        }
        return async () => listeners.delete(listener);
      },
    },
    audit: createPostgresAuditRepository({ now, query, transaction }),
    ...createPostgresPolicyRepositories({ query, transaction }),
    ...createPostgresClusterRepositories({ query, transaction }),
    ...createPostgresIdentityRepositories({ query, transaction }),
    policyBundles,
    oauthArtifacts: createPostgresOAuthArtifacts(query),
    listAppliedMigrations: async () => {
      const rows = await query(
        'list migrations',
        'SELECT version, name, applied_at FROM schema_migrations ORDER BY version',
      );
      return rows.map(toAppliedMigration);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      listeners.clear();
      await feed.close();
      await signingKeyFeed.close();
      await policyBundles.close();
      await pool.end();
    },
  };
}

function isDuplicateKey(cause: unknown): boolean {
  return (cause as { code?: unknown } | null)?.code === UNIQUE_VIOLATION;
}

function ignoreError(): void {}
