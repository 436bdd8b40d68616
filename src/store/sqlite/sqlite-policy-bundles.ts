/**
 * Pushed policy bundles on SQLite. A push is one IMMEDIATE transaction (read the newest, insert
 * the next), so two pushers on one file take turns. Subscribers hear this store's own pushes;
 * replicas in other processes find a push by polling `latest()`.
 */
import type { Database } from 'better-sqlite3';
import {
  DEFAULT_BUNDLE_LIST_LIMIT,
  POLICY_BUNDLE_COLUMNS,
  toPolicyBundle,
  toPolicyBundleParams,
} from '../policy-bundle-rows.js';
import type { Row } from '../row-mapping.js';
import type { PolicyBundle, PolicyBundleRepository } from '../types.js';

type Run = <T>(action: string, statement: () => T) => T;

export function createSqlitePolicyBundles(
  db: Database,
  run: Run,
  onError: (error: Error) => void,
): PolicyBundleRepository {
  const newest = db.prepare(
    `SELECT ${POLICY_BUNDLE_COLUMNS} FROM policy_bundles ORDER BY id DESC LIMIT 1`,
  );
  const newestFirst = db.prepare(
    `SELECT ${POLICY_BUNDLE_COLUMNS} FROM policy_bundles ORDER BY id DESC LIMIT ?`,
  );
  const insert = db.prepare(
    `INSERT INTO policy_bundles (${POLICY_BUNDLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const listeners = new Set<(id: number) => void>();
  const pushInTransaction = db.transaction((candidate: Omit<PolicyBundle, 'id'>) => {
    const row = newest.get() as Row | undefined;
    const latest = row === undefined ? undefined : toPolicyBundle(row);
    if (latest?.contentHash === candidate.contentHash) {
      return { bundle: latest, created: false };
    }
    const bundle: PolicyBundle = { id: (latest?.id ?? 0) + 1, ...candidate };
    insert.run(toPolicyBundleParams(bundle));
    return { bundle, created: true };
  });
  return {
    push: async (candidate) => {
      const pushed = run('push a policy bundle', () => pushInTransaction.immediate(candidate));
      if (pushed.created) {
        for (const listener of listeners) {
          try {
            listener(pushed.bundle.id);
          } catch (error) {
            onError(error instanceof Error ? error : new Error(String(error)));
          }
        }
      }
      return pushed;
    },
    latest: async () => {
      const row = run('read the newest policy bundle', () => newest.get() as Row | undefined);
      return row === undefined ? undefined : toPolicyBundle(row);
    },
    list: async (limit = DEFAULT_BUNDLE_LIST_LIMIT) =>
      run('list policy bundles', () => newestFirst.all(limit) as Row[]).map(toPolicyBundle),
    subscribe: async (listener) => {
      listeners.add(listener);
      return async () => {
        listeners.delete(listener);
      };
    },
  };
}
