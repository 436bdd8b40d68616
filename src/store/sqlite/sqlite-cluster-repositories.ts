/**
 * Replicas, the sessions they hold and the secrets they share, on SQLite: processes on one
 * machine sharing a file (one clock).
 */
import type { Database } from 'better-sqlite3';
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

type Run = <T>(action: string, statement: () => T) => T;

export function createSqliteClusterRepositories(
  db: Database,
  run: Run,
  now: () => number,
): {
  replicas: ReplicaRepository;
  sessions: SessionDirectory;
  sharedSecrets: SharedSecretRepository;
} {
  const listReplicas = (): Row[] =>
    db.prepare(`SELECT ${REPLICA_COLUMNS} FROM replicas ORDER BY id`).all() as Row[];
  return {
    replicas: {
      announce: async (replica, liveMs) =>
        run('announce a replica', () =>
          db
            .transaction(() => {
              const at = now();
              const conflict = announceConflict(
                listReplicas().map(toReplicaRecord),
                replica,
                at,
                liveMs,
              );
              if (conflict !== undefined) throw new StoreError('STORE_CONFLICT', conflict);
              db.prepare(
                `INSERT INTO replicas (${REPLICA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, url = excluded.url,
                   audit_stream = excluded.audit_stream, started_at = excluded.started_at,
                   seen_at = excluded.seen_at, stopped_at = NULL,
                   policy_version = excluded.policy_version,
                   config_digest = excluded.config_digest, hash_key_digest = excluded.hash_key_digest`,
              ).run(
                replica.id,
                replica.instance,
                replica.url ?? null,
                replica.auditStream,
                at,
                at,
                replica.policyVersion,
                replica.configDigest,
                replica.hashKeyDigest,
              );
              return toReplicaRecord(
                db
                  .prepare(`SELECT ${REPLICA_COLUMNS} FROM replicas WHERE id = ?`)
                  .get(replica.id) as Row,
              );
            })
            .immediate(),
        ),
      heartbeat: async (id, changed) => {
        run('stamp a replica heartbeat', () =>
          db
            .prepare(
              'UPDATE replicas SET seen_at = ?, policy_version = ?, config_digest = ? WHERE id = ?',
            )
            .run(now(), changed.policyVersion, changed.configDigest, id),
        );
      },
      stop: async (id) => {
        run('mark a replica stopped', () =>
          db.prepare('UPDATE replicas SET stopped_at = ? WHERE id = ?').run(now(), id),
        );
      },
      list: async () => ({
        now: now(),
        replicas: run('list replicas', listReplicas).map(toReplicaRecord),
      }),
    },
    sessions: {
      record: async (session) => {
        run('record a client session', () =>
          db
            .prepare(
              `INSERT INTO client_sessions (${SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (id) DO NOTHING`,
            )
            .run(session.id, session.replica, session.agent, session.upstream, session.createdAt),
        );
      },
      find: async (id) => {
        const row = run('find a client session', () =>
          db.prepare(`SELECT ${SESSION_COLUMNS} FROM client_sessions WHERE id = ?`).get(id),
        ) as Row | undefined;
        return row === undefined ? undefined : toSessionRecord(row);
      },
      forget: async (id) => {
        run('forget a client session', () =>
          db.prepare('DELETE FROM client_sessions WHERE id = ?').run(id),
        );
      },
      forgetReplica: async (replica) =>
        run("forget a replica's sessions", () =>
          db.prepare('DELETE FROM client_sessions WHERE replica = ?').run(replica),
        ).changes,
    },
    sharedSecrets: {
      getOrCreate: async (name, candidate) =>
        run('read a shared secret', () => {
          db.prepare(
            'INSERT INTO shared_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING',
          ).run(name, candidate, now());
          const row = db.prepare('SELECT value FROM shared_secrets WHERE name = ?').get(name) as
            Row | undefined;
          return String(row?.value);
        }),
    },
  };
}
