/**
 * Replicas, the sessions they hold and the secrets they share, on PostgreSQL. Times come from the
 * database's clock, so replicas whose clocks drift still agree on who is alive.
 */
import type pg from 'pg';
import { StoreError } from '../errors.js';
import {
  REPLICA_COLUMNS,
  SESSION_COLUMNS,
  announceConflict,
  toReplicaRecord,
  toSessionRecord,
} from '../cluster-rows.js';
import type { Row } from '../row-mapping.js';
import type { ReplicaRepository, SessionDirectory, SharedSecretRepository } from '../types.js';

export interface PostgresClusterOptions {
  readonly query: (action: string, text: string, values?: unknown[]) => Promise<Row[]>;
  readonly transaction: <T>(
    action: string,
    work: (client: pg.PoolClient) => Promise<T>,
  ) => Promise<T>;
}

const DB_NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export function createPostgresClusterRepositories(options: PostgresClusterOptions): {
  replicas: ReplicaRepository;
  sessions: SessionDirectory;
  sharedSecrets: SharedSecretRepository;
} {
  const { query, transaction } = options;
  return {
    replicas: {
      announce: (replica, liveMs) =>
        transaction('announce a replica', async (client) => {
          // One announcer at a time: two replicas starting together on one stream cannot both win.
          await client.query(`SELECT pg_advisory_xact_lock(hashtext('warden:replicas'))`);
          const seen = await client.query(
            `SELECT ${REPLICA_COLUMNS}, ${DB_NOW_MS} AS db_now FROM replicas`,
          );
          const now = Number((seen.rows[0] as Row | undefined)?.db_now ?? Date.now());
          const conflict = announceConflict(
            seen.rows.map((row) => toReplicaRecord(row as Row)),
            replica,
            now,
            liveMs,
          );
          if (conflict !== undefined) throw new StoreError('STORE_CONFLICT', conflict);
          const rows = await client.query(
            `INSERT INTO replicas (${REPLICA_COLUMNS})
             VALUES ($1, $7, $2, $3, ${DB_NOW_MS}, ${DB_NOW_MS}, NULL, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, url = excluded.url, audit_stream = excluded.audit_stream,
               started_at = excluded.started_at, seen_at = excluded.seen_at, stopped_at = NULL,
               policy_version = excluded.policy_version, config_digest = excluded.config_digest,
               hash_key_digest = excluded.hash_key_digest
             RETURNING ${REPLICA_COLUMNS}`,
            [
              replica.id,
              replica.url ?? null,
              replica.auditStream,
              replica.policyVersion,
              replica.configDigest,
              replica.hashKeyDigest,
              replica.instance,
            ],
          );
          return toReplicaRecord(rows.rows[0] as Row);
        }),
      heartbeat: async (id, changed) => {
        await query(
          'stamp a replica heartbeat',
          `UPDATE replicas SET seen_at = ${DB_NOW_MS}, policy_version = $2, config_digest = $3
           WHERE id = $1`,
          [id, changed.policyVersion, changed.configDigest],
        );
      },
      stop: async (id) => {
        await query(
          'mark a replica stopped',
          `UPDATE replicas SET stopped_at = ${DB_NOW_MS} WHERE id = $1`,
          [id],
        );
      },
      list: async () => {
        const rows = await query(
          'list replicas',
          `SELECT ${DB_NOW_MS} AS db_now, r.* FROM (SELECT 1) one
           LEFT JOIN (SELECT ${REPLICA_COLUMNS} FROM replicas) r ON true ORDER BY r.id`,
        );
        const now = Number(rows[0]?.db_now);
        return {
          now,
          replicas: rows.filter((row) => row.id !== null).map(toReplicaRecord),
        };
      },
    },
    sessions: {
      record: async (session) => {
        await query(
          'record a client session',
          `INSERT INTO client_sessions (${SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (id) DO NOTHING`,
          [session.id, session.replica, session.agent, session.upstream, session.createdAt],
        );
      },
      find: async (id) => {
        const rows = await query(
          'find a client session',
          `SELECT ${SESSION_COLUMNS} FROM client_sessions WHERE id = $1`,
          [id],
        );
        return rows[0] === undefined ? undefined : toSessionRecord(rows[0]);
      },
      forget: async (id) => {
        await query('forget a client session', 'DELETE FROM client_sessions WHERE id = $1', [id]);
      },
      forgetReplica: async (replica) => {
        const rows = await query(
          "forget a replica's sessions",
          'DELETE FROM client_sessions WHERE replica = $1 RETURNING id',
          [replica],
        );
        return rows.length;
      },
    },
    sharedSecrets: {
      getOrCreate: async (name, candidate) => {
        const rows = await query(
          'read a shared secret',
          `WITH inserted AS (
             INSERT INTO shared_secrets (name, value, created_at) VALUES ($1, $2, ${DB_NOW_MS})
             ON CONFLICT (name) DO NOTHING RETURNING value)
           SELECT value FROM inserted UNION ALL SELECT value FROM shared_secrets WHERE name = $1`,
          [name, candidate],
        );
        const value = rows[0]?.value;
        if (typeof value !== 'string') {
          throw new StoreError('STORE_QUERY_FAILED', `shared secret "${name}" could not be read`);
        }
        return value;
      },
    },
  };
}
