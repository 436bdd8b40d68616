/**
 * The token endpoint's protections on SQLite: assertion ids already used and wrong client
 * secrets, shared by the processes on one file (one machine, one clock). A reservation runs in
 * BEGIN IMMEDIATE, which takes the file's write lock, so two processes take turns.
 */
import type { Database } from 'better-sqlite3';
import { assertWindowMs, hashAssertionId, toRecentSecretFailures } from '../identity-rows.js';
import { assertEpochMs, type Row } from '../row-mapping.js';
import type {
  AssertionReplayRepository,
  RecordedSecretFailure,
  SecretFailureRepository,
} from '../types.js';

type Run = <T>(action: string, statement: () => T) => T;

export function createSqliteIdentityRepositories(
  db: Database,
  run: Run,
): {
  assertionReplays: AssertionReplayRepository;
  secretFailures: SecretFailureRepository;
} {
  const sql = {
    claim: db.prepare(
      `INSERT INTO client_assertions (issuer, jti_hash, keep_until) VALUES (?, ?, ?)
       ON CONFLICT (issuer, jti_hash) DO UPDATE SET keep_until = excluded.keep_until
         WHERE client_assertions.keep_until <= ?
       RETURNING 1`,
    ),
    deleteExpiredAssertions: db.prepare('DELETE FROM client_assertions WHERE keep_until <= ?'),
    dropOld: db.prepare('DELETE FROM secret_failures WHERE client_id = ? AND at <= ?'),
    recent: db.prepare(
      `SELECT kind, at FROM secret_failures
       WHERE client_id = ? AND (kind = 'client' OR source = ?) ORDER BY at, id`,
    ),
    record: db.prepare(
      'INSERT INTO secret_failures (client_id, source, kind, at) VALUES (?, ?, ?, ?)',
    ),
    deleteExpiredFailures: db.prepare(
      'DELETE FROM secret_failures WHERE id IN (SELECT id FROM secret_failures WHERE at <= ? LIMIT ?)',
    ),
    forgive: db.prepare(
      `DELETE FROM secret_failures
       WHERE client_id = ? AND ((kind = 'source' AND source = ?) OR id = ?)`,
    ),
  };

  return {
    assertionReplays: {
      claim: async (issuer, jti, keepUntil, now) => {
        assertEpochMs('keepUntil', keepUntil);
        assertEpochMs('now', now);
        const rows = run('claim a client assertion id', () =>
          sql.claim.all(issuer, hashAssertionId(jti), keepUntil, now),
        );
        return rows.length === 1;
      },
      deleteExpired: async (now) => {
        assertEpochMs('now', now);
        return run('delete expired client assertion ids', () =>
          sql.deleteExpiredAssertions.run(now),
        ).changes;
      },
    },
    secretFailures: {
      reserve: async (attempt, decide) => {
        assertWindowMs(attempt.windowMs);
        assertEpochMs('now', attempt.now);
        const { clientId, source, now } = attempt;
        return run('reserve a client secret attempt', () =>
          db
            .transaction((): RecordedSecretFailure | undefined => {
              sql.dropOld.run(clientId, now - attempt.windowMs);
              const rows = sql.recent.all(clientId, source) as Row[];
              const recording = decide(toRecentSecretFailures(rows, now));
              if (recording === 'none') return undefined;
              sql.record.run(clientId, source, 'source', now);
              if (recording === 'source') return { at: now, clientFailureId: undefined };
              const counted = sql.record.run(clientId, source, 'client', now);
              return { at: now, clientFailureId: String(counted.lastInsertRowid) };
            })
            .immediate(),
        );
      },
      forgive: async (clientId, source, clientFailureId) => {
        const id = clientFailureId === undefined ? null : Number(clientFailureId);
        run('forgive client secret failures', () => sql.forgive.run(clientId, source, id));
      },
      deleteExpired: async (windowMs, before, limit) => {
        assertWindowMs(windowMs);
        assertEpochMs('before', before);
        return run('delete expired client secret failures', () =>
          sql.deleteExpiredFailures.run(before, limit),
        ).changes;
      },
    },
  };
}
