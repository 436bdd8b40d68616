/**
 * Opens the configured store, choosing the backend by the URL's scheme. The backend is loaded
 * only when chosen: a command on a SQLite store never loads the PostgreSQL driver, nor the other
 * way round, so a short-lived CLI command starts fast.
 */
import { StoreError } from './errors.js';
import type { OpenStoreOptions, Store } from './types.js';

/**
 * Opens and migrates the store at `url`: `sqlite:PATH`, `sqlite::memory:`, or
 * `postgres://…` / `postgresql://…`. Rejects with a StoreError (STORE_URL_INVALID,
 * STORE_OPEN_FAILED, STORE_MIGRATION_FAILED or STORE_SCHEMA_TOO_NEW).
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (url.startsWith('sqlite:')) {
    if (options.schema !== undefined) {
      throw new StoreError('STORE_URL_INVALID', 'the schema option applies to PostgreSQL only');
    }
    const { openSqliteStore } = await import('./sqlite/sqlite-store.js');
    return openSqliteStore(url, options);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // `?schema=NAME` in the URL: one database, several isolated deployments (or tests).
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    const { openPostgresStore } = await import('./postgres/postgres-store.js');
    return openPostgresStore(parsed.toString(), {
      ...options,
      ...(schema !== undefined && options.schema === undefined && { schema }),
    });
  }
  throw new StoreError(
    'STORE_URL_INVALID',
    `unsupported store URL scheme in "${url.split(':')[0] ?? ''}:…"; use sqlite:PATH or postgres://…`,
  );
}
