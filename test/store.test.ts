// The storage layer: one suite run against SQLite (file and memory) and PostgreSQL, so both
// backends behave the same, then what only one of them has: an unwritable SQLite path, and for
// PostgreSQL racing replicas, cross-replica revocation delivery and a killed LISTEN connection.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { StoreError } from '../src/store/errors.js';
import { planMigrations } from '../src/store/migrations.js';
import { openStore } from '../src/store/open-store.js';
import {
  adminClient,
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';
import { POSTGRES_MIGRATIONS } from '../src/store/postgres/postgres-migrations.js';
import { SQLITE_MIGRATIONS } from '../src/store/sqlite/sqlite-migrations.js';
import type { OpenStoreOptions, Revocation, Store, StoredSigningKey } from '../src/store/types.js';

/** After 2^31 seconds and far beyond 2^32 ms: times must survive BIGINT and come back as numbers. */
const T0 = 1_900_000_000_000;
const DELIVERY_TIMEOUT_MS = 5000;
/** Longer than the SQLite poll interval: long enough for a duplicate delivery to show up. */
const POLL_SETTLE_MS = 700;

/** A fresh, empty database per test; `open` may be called again to reach the same database. */
interface FreshDatabase {
  open(options?: OpenStoreOptions): Promise<Store>;
  /** False for memory: reopening gives a new, empty database. */
  readonly persistent: boolean;
}

interface Backend {
  readonly name: string;
  createDatabase(): FreshDatabase;
}

const sqliteFile: Backend = {
  name: 'SQLite file',
  createDatabase() {
    // A folder that does not exist yet: opening must create it.
    const url = `sqlite:${join(tempRoot, uniqueName('db'), 'nested', 'warden.db')}`;
    return { open: (options) => openTracked(url, options), persistent: true };
  },
};

const sqliteMemory: Backend = {
  name: 'SQLite memory',
  createDatabase() {
    return { open: (options) => openTracked('sqlite::memory:', options), persistent: false };
  },
};

const postgres: Backend = {
  name: 'PostgreSQL',
  createDatabase() {
    const schema = uniqueName('warden_test');
    testSchemas.push(schema);
    return {
      open: (options) => openTracked(POSTGRES_URL, { ...options, schema }),
      persistent: true,
    };
  },
};

function signingKey(kid: string, createdAt: number): StoredSigningKey {
  return {
    kid,
    algorithm: 'EdDSA',
    privateJwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', d: `private-${kid}`, x: kid }),
    publicJwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: kid }),
    createdAt,
    rotatedAt: undefined,
    retireAt: undefined,
  };
}

function revocation(subject: string, expiresAt: number): Revocation {
  return {
    kind: 'token',
    subject,
    revokedAt: T0,
    expiresAt,
    reason: 'leaked in a CI log',
    revokedBy: 'alice@example.com',
  };
}

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${DELIVERY_TIMEOUT_MS} ms: ${what}`);
    await sleep(20);
  }
}

async function assertStoreError(
  promise: Promise<unknown>,
  code: StoreError['code'],
): Promise<StoreError> {
  const error = await promise.then(
    () => assert.fail(`expected StoreError ${code}`),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof StoreError, `expected a StoreError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

for (const backend of [sqliteFile, sqliteMemory, postgres]) {
  describe(`${backend.name} store`, () => {
    test('applies each migration once, and reopening applies none again', async () => {
      const database = backend.createDatabase();
      const first = await database.open({ now: () => T0 });
      const applied = await first.listAppliedMigrations();
      assert.deepEqual(
        applied.map(({ version }) => version),
        SQLITE_MIGRATIONS.map(({ version }) => version),
      );
      assert.ok(applied.every(({ appliedAt }) => appliedAt === T0));
      if (!database.persistent) return;
      await first.signingKeys.insert(signingKey('kept', T0));
      await first.close();
      const reopened = await database.open({ now: () => T0 + 60_000 });
      assert.deepEqual(await reopened.listAppliedMigrations(), applied);
      assert.deepEqual(
        (await reopened.signingKeys.list()).map(({ kid }) => kid),
        ['kept'],
      );
    });

    test('stores signing keys exactly and lists them oldest first', async () => {
      const store = await backend.createDatabase().open();
      const older = { ...signingKey('k-older', T0), rotatedAt: T0 + 5, retireAt: T0 + 10 };
      const newer = signingKey('k-newer', T0 + 1);
      await store.signingKeys.insert(newer);
      await store.signingKeys.insert(older);
      const listed = await store.signingKeys.list();
      assert.deepEqual(listed, [older, newer]);
      assert.equal(typeof listed[0]?.createdAt, 'number');
    });

    test('refuses a second signing key with the same kid', async () => {
      const store = await backend.createDatabase().open();
      await store.signingKeys.insert(signingKey('dup', T0));
      await assertStoreError(store.signingKeys.insert(signingKey('dup', T0 + 1)), 'STORE_CONFLICT');
      assert.equal((await store.signingKeys.list())[0]?.createdAt, T0);
    });

    test('rotates only the keys that are still active', async () => {
      const store = await backend.createDatabase().open();
      await store.signingKeys.insert(signingKey('first', T0));
      await store.signingKeys.markRotated(T0 + 100, T0 + 200);
      await store.signingKeys.insert(signingKey('second', T0 + 100));
      await store.signingKeys.markRotated(T0 + 300, T0 + 400);
      const byKid = new Map((await store.signingKeys.list()).map((key) => [key.kid, key]));
      assert.equal(byKid.get('first')?.rotatedAt, T0 + 100, 'an old rotation is never moved');
      assert.equal(byKid.get('first')?.retireAt, T0 + 200);
      assert.equal(byKid.get('second')?.rotatedAt, T0 + 300);
      assert.equal(byKid.get('second')?.retireAt, T0 + 400);
    });

    test('deletes keys once their retirement has come, and keeps the rest', async () => {
      const store = await backend.createDatabase().open();
      await store.signingKeys.insert({ ...signingKey('retired', T0), retireAt: T0 + 10 });
      await store.signingKeys.insert({ ...signingKey('retiring', T0), retireAt: T0 + 11 });
      await store.signingKeys.insert(signingKey('active', T0));
      await store.signingKeys.deleteRetired(T0 + 10);
      assert.deepEqual(
        (await store.signingKeys.list()).map(({ kid }) => kid),
        ['active', 'retiring'],
      );
    });

    test('lists only the revocations still in force', async () => {
      const store = await backend.createDatabase().open();
      await store.revocations.add(revocation('expired', T0 + 10));
      await store.revocations.add(revocation('in-force', T0 + 11));
      await store.revocations.add({ ...revocation('agent-1', T0 + 99), kind: 'agent' });
      assert.deepEqual(await store.revocations.listActive(T0 + 10), [
        revocation('in-force', T0 + 11),
        { ...revocation('agent-1', T0 + 99), kind: 'agent' },
      ]);
      assert.equal(await store.revocations.deleteExpired(T0 + 11), 2);
      assert.deepEqual(
        (await store.revocations.listActive(0)).map(({ subject }) => subject),
        ['agent-1'],
      );
    });

    test('delivers a revocation added here to subscribers until they unsubscribe', async () => {
      const store = await backend.createDatabase().open();
      const received: Revocation[] = [];
      const unsubscribe = await store.revocations.subscribe((r) => received.push(r));
      await store.revocations.add(revocation('jti-1', T0 + 1000));
      // In force in this process as soon as add() resolves, with no broadcast round trip.
      assert.deepEqual(received, [revocation('jti-1', T0 + 1000)]);
      await sleep(POLL_SETTLE_MS);
      assert.equal(received.length, 1, 'its own broadcast is not delivered a second time');
      await unsubscribe();
      await store.revocations.add(revocation('jti-2', T0 + 1000));
      await sleep(200);
      assert.deepEqual(
        received.map(({ subject }) => subject),
        ['jti-1'],
      );
    });

    test('a revocation added through another store on the same database reaches this subscriber', async (t) => {
      const database = backend.createDatabase();
      if (!database.persistent) {
        t.skip('a memory database belongs to one store');
        return;
      }
      // Two replicas (PostgreSQL), or `warden token revoke` beside `warden serve` (SQLite file).
      const reader = await database.open();
      const writer = await database.open();
      const received: Revocation[] = [];
      await reader.revocations.subscribe((r) => received.push(r));
      await writer.revocations.add({ ...revocation('agent-7', T0 + 1000), kind: 'agent' });
      await waitFor('the other store hears the revocation', () => received.length > 0);
      await sleep(POLL_SETTLE_MS);
      assert.deepEqual(received, [{ ...revocation('agent-7', T0 + 1000), kind: 'agent' }]);
    });

    test('a throwing subscriber neither stops the others nor fails add()', async () => {
      const reported: Error[] = [];
      const store = await backend.createDatabase().open({ onError: (e) => reported.push(e) });
      const received: string[] = [];
      await store.revocations.subscribe(() => {
        throw new Error('subscriber bug');
      });
      await store.revocations.subscribe((r) => received.push(r.subject));
      await store.revocations.add(revocation('jti-1', T0 + 1000));
      assert.deepEqual(received, ['jti-1']);
      assert.ok(reported.some((error) => error.message === 'subscriber bug'));
    });

    test('refuses values it cannot store faithfully', async () => {
      const store = await backend.createDatabase().open();
      await assertStoreError(
        store.revocations.add(revocation('jti', T0 + 0.5)),
        'STORE_INVALID_VALUE',
      );
      await assertStoreError(
        store.revocations.add({ ...revocation('jti', T0), kind: 'tenant' as 'user' }),
        'STORE_INVALID_VALUE',
      );
      await assertStoreError(store.signingKeys.deleteRetired(Number.NaN), 'STORE_INVALID_VALUE');
      assert.deepEqual(await store.revocations.listActive(0), []);
    });

    test('refuses use after close, and closing twice is harmless', async () => {
      const store = await backend.createDatabase().open();
      await store.close();
      await store.close();
      await assertStoreError(store.signingKeys.list(), 'STORE_CLOSED');
      await assertStoreError(
        store.revocations.subscribe(() => undefined),
        'STORE_CLOSED',
      );
    });
  });
}

describe('migrations', () => {
  test('both backends list the same versions under the same names', () => {
    const describeList = (list: typeof SQLITE_MIGRATIONS): string[] =>
      list.map(({ version, name }) => `${version} ${name}`);
    assert.deepEqual(describeList(POSTGRES_MIGRATIONS), describeList(SQLITE_MIGRATIONS));
  });

  test('refuses a database migrated by a newer Warden', () => {
    const newest = SQLITE_MIGRATIONS.length;
    assert.throws(
      () => planMigrations(SQLITE_MIGRATIONS, [newest, newest + 1]),
      (error: unknown) => error instanceof StoreError && error.code === 'STORE_SCHEMA_TOO_NEW',
    );
    assert.deepEqual(planMigrations(SQLITE_MIGRATIONS, [newest]), []);
  });
});

describe('SQLite store only', () => {
  test('opening under a path that cannot be created fails with an error naming the path', async () => {
    const blocker = join(tempRoot, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const path = join(blocker, 'sub', 'warden.db');
    const error = await assertStoreError(openStore(`sqlite:${path}`), 'STORE_OPEN_FAILED');
    assert.equal(error.target, path);
    assert.match(error.message, new RegExp(path.replaceAll(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  });

  test('keeps the database file in WAL mode', async () => {
    const path = join(tempRoot, uniqueName('wal'), 'warden.db');
    await (await openStore(`sqlite:${path}`)).close();
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  test('refuses URLs it does not understand', async () => {
    await assertStoreError(openStore('sqlite:'), 'STORE_URL_INVALID');
    await assertStoreError(openStore('mysql://root@127.0.0.1/test'), 'STORE_URL_INVALID');
    await assertStoreError(
      openStore('sqlite::memory:', { schema: 'tenant_a' }),
      'STORE_URL_INVALID',
    );
  });
});

describe('PostgreSQL store only', () => {
  async function feedBackendPid(schema: string): Promise<number | undefined> {
    const result = await (
      await adminClient()
    ).query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [
      `warden-listen:${schema}`,
    ]);
    return result.rows[0]?.pid;
  }

  function freshSchema(): string {
    const schema = uniqueName('warden_test');
    testSchemas.push(schema);
    return schema;
  }

  test('two replicas starting together on a new schema apply each migration once', async () => {
    const schema = freshSchema();
    const [a, b] = await Promise.all([
      openTracked(POSTGRES_URL, { schema }),
      openTracked(POSTGRES_URL, { schema }),
    ]);
    const applied = await a.listAppliedMigrations();
    assert.equal(applied.length, POSTGRES_MIGRATIONS.length);
    assert.deepEqual(await b.listAppliedMigrations(), applied);
  });

  test('a replica whose LISTEN connection is killed reconnects and still hears revocations', async () => {
    const schema = freshSchema();
    const reported: Error[] = [];
    const reader = await openTracked(POSTGRES_URL, {
      schema,
      onError: (error) => reported.push(error),
    });
    const writer = await openTracked(POSTGRES_URL, { schema });
    const received: string[] = [];
    await reader.revocations.subscribe((r) => received.push(r.subject));
    const killedPid = await feedBackendPid(schema);
    assert.ok(killedPid !== undefined, 'the LISTEN connection is visible in pg_stat_activity');
    await (await adminClient()).query('SELECT pg_terminate_backend($1)', [killedPid]);
    await waitFor('the lost connection is reported', () => reported.length > 0);
    // Added while the reader may still be reconnecting: it arrives by NOTIFY or by the replay.
    await writer.revocations.add(revocation('during-outage', T0 + 1000));
    await waitFor('the revocation added during the outage arrives', () =>
      received.includes('during-outage'),
    );
    const newPid = await feedBackendPid(schema);
    assert.ok(newPid !== undefined && newPid !== killedPid, 'a new LISTEN connection is open');
    await writer.revocations.add(revocation('after-reconnect', T0 + 1000));
    await waitFor('the revocation added after reconnecting arrives', () =>
      received.includes('after-reconnect'),
    );
  });

  test('a store never hears the revocations of another schema', async () => {
    const heard: string[] = [];
    const tenantA = await openTracked(POSTGRES_URL, { schema: freshSchema() });
    const tenantB = await openTracked(POSTGRES_URL, { schema: freshSchema() });
    const witness = await openTracked(POSTGRES_URL, { schema: freshSchema() });
    await tenantB.revocations.subscribe((r) => heard.push(r.subject));
    await witness.revocations.subscribe((r) => heard.push(`witness:${r.subject}`));
    await tenantA.revocations.add(revocation('tenant-a-token', T0 + 1000));
    await witness.revocations.add(revocation('own', T0 + 1000));
    await sleep(300);
    assert.deepEqual(heard, ['witness:own']);
    assert.deepEqual(await tenantB.revocations.listActive(0), []);
  });

  test('refuses a schema name that is not a plain identifier', async () => {
    for (const schema of ['public"; DROP SCHEMA public CASCADE; --', 'Upper', 'pg_catalog', '']) {
      await assertStoreError(openStore(POSTGRES_URL, { schema }), 'STORE_URL_INVALID');
    }
  });

  test('an unreachable server fails with STORE_OPEN_FAILED and keeps the password out', async () => {
    const error = await assertStoreError(
      openStore('postgres://warden:hunter2@127.0.0.1:1/test', { schema: 'unused' }),
      'STORE_OPEN_FAILED',
    );
    assert.doesNotMatch(`${error.message} ${error.target ?? ''}`, /hunter2/);
    assert.match(error.message, /127\.0\.0\.1:1/);
  });

  test('close() releases everything: a process that subscribed and closed exits by itself', async () => {
    const schema = freshSchema();
    const moduleUrl = new URL('../src/store/open-store.ts', import.meta.url).href;
    const sqlitePath = join(tempRoot, uniqueName('exit'), 'warden.db');
    const script = `
      const { openStore } = await import(${JSON.stringify(moduleUrl)});
      for (const [url, options] of [
        [${JSON.stringify(POSTGRES_URL)}, { schema: ${JSON.stringify(schema)} }],
        [${JSON.stringify(`sqlite:${sqlitePath}`)}, {}],
      ]) {
        const store = await openStore(url, options);
        await store.revocations.subscribe(() => {});
        await store.revocations.listActive(0);
        await store.close();
      }
      console.log('closed');
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '--eval', script],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const patience = new AbortController();
    const outcome = await Promise.race([
      exited,
      sleep(15_000, 'still running', { signal: patience.signal }).catch(() => 'aborted'),
    ]);
    patience.abort();
    if (outcome === 'still running') child.kill('SIGKILL');
    assert.equal(outcome, 0, `the process must exit on its own after close(); output:\n${output}`);
    assert.match(output, /closed/);
  });
});
