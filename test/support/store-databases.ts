/**
 * Scaffolding for tests that run against real stores: a temp folder for SQLite files, fresh
 * PostgreSQL schemas dropped afterwards, and every opened store closed after each test.
 * Importing this module registers the cleanup hooks for the importing test file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach } from 'node:test';
import pg from 'pg';
import { openStore } from '../../src/store/open-store.js';
import type { OpenStoreOptions, Store } from '../../src/store/types.js';

export const POSTGRES_URL =
  process.env['WARDEN_TEST_POSTGRES_URL'] ?? 'postgres://root@127.0.0.1:5432/test';

/** Where SQLite files of this test file go; removed after the file. */
export const tempRoot = mkdtempSync(join(tmpdir(), 'warden-store-'));
const openedStores: Store[] = [];
/** PostgreSQL schemas created by this test file; dropped after the file. */
export const testSchemas: string[] = [];
let admin: Promise<pg.Client> | undefined;

/** A plain connection for what the store must not offer: dropping schemas, killing backends. */
export function adminClient(): Promise<pg.Client> {
  admin ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    return client;
  })();
  return admin;
}

/** Opens a store that is closed again after the current test. */
export async function openTracked(url: string, options?: OpenStoreOptions): Promise<Store> {
  const store = await openStore(url, options);
  openedStores.push(store);
  return store;
}

/**
 * Creates `schema` (dropped after the file) and returns a store URL whose every connection uses
 * it: what several replicas, or a replica and the CLI, are given to share one store.
 */
export async function createSharedSchema(schema: string): Promise<string> {
  await (await adminClient()).query(`CREATE SCHEMA ${schema}`);
  testSchemas.push(schema);
  return schemaStoreUrl(schema);
}

/** The store URL of an existing schema. */
export function schemaStoreUrl(schema: string): string {
  return `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

after(async () => {
  rmSync(tempRoot, { recursive: true, force: true });
  if (testSchemas.length === 0 && admin === undefined) return;
  const client = await adminClient();
  for (const schema of testSchemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

afterEach(async () => {
  await Promise.all(openedStores.splice(0).map((store) => store.close()));
});
