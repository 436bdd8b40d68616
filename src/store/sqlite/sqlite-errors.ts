/** How better-sqlite3 reports the failures the store turns into specific StoreError codes. */

/** True for a primary-key or unique violation: the row exists already (STORE_CONFLICT). */
export function isSqliteDuplicateKey(cause: unknown): boolean {
  const code = (cause as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
