/**
 * The token endpoint's protections on PostgreSQL, shared by every replica: assertion ids already
 * used, wrong client secrets, and the feed that tells every replica of a new signing key.
 * Failures are stamped with the database's clock, so replicas whose clocks drift count alike.
 *
 * Why the store and not Redis: every replica already shares it, it is transactional (a decision
 * and its record commit together), it is durable (a restart forgets no used assertion), and it
 * adds no dependency or second thing to secure and run; these writes are a few per token request.
 */
import { assertWindowMs, hashAssertionId, toRecentSecretFailures } from '../identity-rows.js';
import { assertEpochMs, type Row } from '../row-mapping.js';
import type { AssertionReplayRepository, SecretFailureRepository } from '../types.js';
import type { PostgresClusterOptions } from './postgres-cluster-repositories.js';
import type { PostgresTarget } from './postgres-target.js';
import { createNotificationListeners } from './notification-listeners.js';

const DB_NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export function createPostgresIdentityRepositories(options: PostgresClusterOptions): {
  assertionReplays: AssertionReplayRepository;
  secretFailures: SecretFailureRepository;
} {
  const { query, transaction } = options;
  return {
    assertionReplays: {
      claim: async (issuer, jti, keepUntil, now) => {
        assertEpochMs('keepUntil', keepUntil);
        assertEpochMs('now', now);
        // A row kept past now is a replay; an expired one may be taken over (its assertion is
        // refused as expired anyway). The primary key makes concurrent claims take turns.
        const rows = await query(
          'claim a client assertion id',
          `INSERT INTO client_assertions (issuer, jti_hash, keep_until) VALUES ($1, $2, $3)
           ON CONFLICT (issuer, jti_hash) DO UPDATE SET keep_until = excluded.keep_until
             WHERE client_assertions.keep_until <= $4
           RETURNING 1 AS claimed`,
          [issuer, hashAssertionId(jti), keepUntil, now],
        );
        return rows.length === 1;
      },
      deleteExpired: async (now) => {
        assertEpochMs('now', now);
        // SKIP LOCKED: housekeeping never waits for (or deadlocks with) a claim in progress.
        const rows = await query(
          'delete expired client assertion ids',
          `DELETE FROM client_assertions WHERE (issuer, jti_hash) IN (
             SELECT issuer, jti_hash FROM client_assertions WHERE keep_until <= $1
             LIMIT 10000 FOR UPDATE SKIP LOCKED
           ) RETURNING 1`,
          [now],
        );
        return rows.length;
      },
    },
    secretFailures: {
      reserve: (attempt, decide) => {
        assertWindowMs(attempt.windowMs);
        return transaction('reserve a client secret attempt', async (client) => {
          // One attempt per client at a time, on every replica: parallel guesses cannot all read
          // the count before any of them is recorded.
          await client.query(`SELECT pg_advisory_xact_lock(hashtext('warden:secret:' || $1))`, [
            attempt.clientId,
          ]);
          const clock = await client.query(`SELECT ${DB_NOW_MS} AS now`);
          const now = Number((clock.rows[0] as Row | undefined)?.['now']);
          await client.query('DELETE FROM secret_failures WHERE client_id = $1 AND at <= $2', [
            attempt.clientId,
            now - attempt.windowMs,
          ]);
          const recent = await client.query(
            `SELECT kind, at FROM secret_failures
             WHERE client_id = $1 AND (kind = 'client' OR source = $2) ORDER BY at, id`,
            [attempt.clientId, attempt.source],
          );
          const recording = decide(toRecentSecretFailures(recent.rows as Row[], now));
          if (recording === 'none') return undefined;
          const inserted = await client.query(
            `INSERT INTO secret_failures (client_id, source, kind, at)
             SELECT $1, $2, kind, $3 FROM unnest($4::text[]) AS kind RETURNING id::text AS id, kind`,
            [
              attempt.clientId,
              attempt.source,
              now,
              recording === 'source' ? ['source'] : ['source', 'client'],
            ],
          );
          const counted = (inserted.rows as Row[]).find((row) => row['kind'] === 'client');
          return { at: now, clientFailureId: counted && String(counted['id']) };
        });
      },
      forgive: async (clientId, source, clientFailureId) => {
        await query(
          'forgive client secret failures',
          `DELETE FROM secret_failures
           WHERE client_id = $1 AND ((kind = 'source' AND source = $2) OR id = $3::bigint)`,
          [clientId, source, clientFailureId ?? null],
        );
      },
      deleteExpired: async (windowMs, _before, limit) => {
        assertWindowMs(windowMs);
        const rows = await query(
          'delete expired client secret failures',
          `DELETE FROM secret_failures WHERE id IN (
             SELECT id FROM secret_failures WHERE at <= ${DB_NOW_MS} - $1
             LIMIT $2 FOR UPDATE SKIP LOCKED
           ) RETURNING 1`,
          [windowMs, limit],
        );
        return rows.length;
      },
    },
  };
}

/** Channel names are identifiers of at most 63 bytes; a schema name is at most 44. */
export function signingKeyChannelOf(target: PostgresTarget): string {
  return target.schema === undefined ? 'warden_keys' : `warden_keys_${target.schema}`;
}

export interface SigningKeyFeed {
  /** The channel a key insert NOTIFYs. */
  readonly channel: string;
  subscribe(listener: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * Tells this replica when any replica (or the CLI) stored a signing key, so its keyring re-reads
 * at once instead of on its next refresh. A notification lost while the LISTEN connection is
 * down is made up for by telling the listeners after every reconnect.
 */
export function createSigningKeyFeed(
  target: PostgresTarget,
  onError: (error: Error) => void,
): SigningKeyFeed {
  const channel = signingKeyChannelOf(target);
  const listeners = createNotificationListeners({
    target,
    channel,
    applicationName: `warden-keys:${target.schema ?? ''}`,
    subject: 'signing keys',
    onError,
  });
  return {
    channel,
    subscribe: (listener) => listeners.subscribe(() => listener()),
    close: () => listeners.close(),
  };
}
