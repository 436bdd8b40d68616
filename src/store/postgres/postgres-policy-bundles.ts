/**
 * Pushed policy bundles on PostgreSQL. A push takes a transaction-scoped advisory lock, so
 * pushers take turns, and sends NOTIFY with the new id on the schema's own channel: it goes out
 * only when the row commits. Subscribers LISTEN on a dedicated connection that reconnects by
 * itself; a notification lost while it is down is caught by the replicas' poll of `latest()`.
 */
import {
  DEFAULT_BUNDLE_LIST_LIMIT,
  POLICY_BUNDLE_COLUMNS,
  toPolicyBundle,
  toPolicyBundleParams,
} from '../policy-bundle-rows.js';
import type { Row } from '../row-mapping.js';
import type { PolicyBundle, PolicyBundleRepository } from '../types.js';
import type { PostgresClusterOptions } from './postgres-cluster-repositories.js';
import type { PostgresTarget } from './postgres-target.js';
import { createNotificationListeners } from './notification-listeners.js';

export interface PostgresPolicyBundles extends PolicyBundleRepository {
  /** Stops listening. */
  close(): Promise<void>;
}

/** Channel names are identifiers of at most 63 bytes; a schema name is at most 44. */
function channelOf(target: PostgresTarget): string {
  return target.schema === undefined ? 'warden_policy' : `warden_policy_${target.schema}`;
}

export function createPostgresPolicyBundles(
  options: PostgresClusterOptions & {
    readonly target: PostgresTarget;
    readonly onError: (error: Error) => void;
  },
): PostgresPolicyBundles {
  const { query, transaction, target, onError } = options;
  const channel = channelOf(target);
  const notifications = createNotificationListeners({
    target,
    channel,
    applicationName: `warden-policy:${target.schema ?? ''}`,
    subject: 'policy bundles',
    onError,
  });
  return {
    push: (candidate) =>
      transaction('push a policy bundle', async (client) => {
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('warden:policy_bundles'))`);
        const newest = await client.query(
          `SELECT ${POLICY_BUNDLE_COLUMNS} FROM policy_bundles ORDER BY id DESC LIMIT 1`,
        );
        const row = newest.rows[0] as Row | undefined;
        const latest = row === undefined ? undefined : toPolicyBundle(row);
        if (latest?.contentHash === candidate.contentHash) {
          return { bundle: latest, created: false };
        }
        const bundle: PolicyBundle = { id: (latest?.id ?? 0) + 1, ...candidate };
        await client.query(
          `INSERT INTO policy_bundles (${POLICY_BUNDLE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`,
          toPolicyBundleParams(bundle),
        );
        await client.query('SELECT pg_notify($1, $2)', [channel, String(bundle.id)]);
        return { bundle, created: true };
      }),
    latest: async () => {
      const rows = await query(
        'read the newest policy bundle',
        `SELECT ${POLICY_BUNDLE_COLUMNS} FROM policy_bundles ORDER BY id DESC LIMIT 1`,
      );
      return rows[0] === undefined ? undefined : toPolicyBundle(rows[0]);
    },
    list: async (limit = DEFAULT_BUNDLE_LIST_LIMIT) =>
      (
        await query(
          'list policy bundles',
          `SELECT ${POLICY_BUNDLE_COLUMNS} FROM policy_bundles ORDER BY id DESC LIMIT $1`,
          [limit],
        )
      ).map(toPolicyBundle),
    // After a reconnect (no payload), 0: listeners re-read the newest, whatever it is.
    subscribe: (listener) =>
      notifications.subscribe((payload) => {
        const id = Number(payload ?? 0);
        if (Number.isSafeInteger(id)) listener(id);
      }),
    close: () => notifications.close(),
  };
}
