/**
 * Versioned schema migrations. Each backend lists its own SQL (the dialects differ) under the same
 * version numbers; the runners apply each pending migration once, in its own transaction, and
 * record it in schema_migrations (version, name, applied_at).
 */
import { StoreError } from './errors.js';

export interface Migration {
  /** 1, 2, 3…: never renumber or edit a released migration; add a new one. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * The migrations still to apply, in order. Refuses a database that holds a version this Warden
 * does not know: it was migrated by a newer release, and running old code on it could corrupt it.
 */
export function planMigrations(
  known: readonly Migration[],
  appliedVersions: readonly number[],
): Migration[] {
  known.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new StoreError(
        'STORE_MIGRATION_FAILED',
        `migration list is out of order at ${migration.name}: expected version ${index + 1}`,
      );
    }
  });
  const latest = known.length;
  const newest = Math.max(0, ...appliedVersions);
  if (newest > latest) {
    throw new StoreError(
      'STORE_SCHEMA_TOO_NEW',
      `the database schema is at version ${newest} but this Warden knows versions up to ${latest}; ` +
        'upgrade Warden instead of running an older release against this database',
    );
  }
  // Each migration commits with its schema_migrations row, in version order, so the applied
  // versions are always 1..newest: what is pending is everything above the newest.
  return known.filter((migration) => migration.version > newest);
}
