/** Opens the configured store, choosing the backend by the URL's scheme. */
import { StoreError } from './errors.js';
import { openPostgresStore } from './postgres/postgres-store.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
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
    return openSqliteStore(url, options);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return openPostgresStore(url, options);
  }
  throw new StoreError(
    'STORE_URL_INVALID',
    `unsupported store URL scheme in "${url.split(':')[0] ?? ''}:…"; use sqlite:PATH or postgres://…`,
  );
}
