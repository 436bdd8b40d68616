// The audit core on the real stores, SQLite (a database file) and PostgreSQL: concurrent calls
// group-committed into one verifiable chain, a restart that continues it, and tampering done
// directly in the database with SQL, as someone with database access would, each found by
// verifying the store and by verifying its export offline.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createAuditChain } from '../src/audit/audit-chain.js';
import { createCheckpointSigner, loadOrCreateAuditKey } from '../src/audit/checkpoint.js';
import { writeAuditExport } from '../src/audit/export.js';
import { repositoryVerifyInput, snapshotStreams } from '../src/audit/read-stream.js';
import { verifyAuditLog, type AuditProblemKind } from '../src/audit/verify.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { sampleEntries, steppingClock } from './fixtures/audit/build-chain.js';

const POSTGRES_URL =
  process.env['WARDEN_TEST_POSTGRES_URL'] ?? 'postgres://root@127.0.0.1:5432/test';
const tempRoot = mkdtempSync(join(tmpdir(), 'warden-audit-store-'));
const schemas: string[] = [];

after(async () => {
  rmSync(tempRoot, { recursive: true, force: true });
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

/** One fresh database: open the store on it, or run SQL on it behind the store's back. */
interface Database_ {
  open(): Promise<Store>;
  /** Runs a statement with $1, $2… parameters (in order) and returns its rows. */
  sql(statement: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
}

const backends: { name: string; create(): Database_ }[] = [
  {
    name: 'SQLite file',
    create() {
      const path = join(tempRoot, `audit-${randomBytes(4).toString('hex')}.db`);
      return {
        open: () => openStore(`sqlite:${path}`),
        async sql(statement, params = []) {
          const db = new Database(path);
          try {
            const prepared = db.prepare(statement.replace(/\$\d+/g, '?'));
            if (!prepared.reader) {
              prepared.run(...params);
              return [];
            }
            return prepared.all(...params) as Record<string, unknown>[];
          } finally {
            db.close();
          }
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    create() {
      const schema = `audit_core_${process.pid}_${randomBytes(4).toString('hex')}`;
      schemas.push(schema);
      return {
        open: () => openStore(POSTGRES_URL, { schema }),
        async sql(statement, params = []) {
          const client = new pg.Client({ connectionString: POSTGRES_URL });
          await client.connect();
          try {
            await client.query(`SET search_path TO "${schema}"`);
            return (await client.query(statement, params)).rows as Record<string, unknown>[];
          } finally {
            await client.end();
          }
        },
      };
    },
  },
];

/** Ten records on stream gw-1 (checkpoints at 4 and 8), committed and the store closed. */
async function seededDatabase(create: () => Database_): Promise<Database_> {
  const database = create();
  const store = await database.open();
  try {
    const key = await loadOrCreateAuditKey(store.audit);
    const chain = createAuditChain({
      repository: store.audit,
      stream: 'gw-1',
      signer: createCheckpointSigner(key),
      checkpointEvery: 4,
      now: steppingClock(),
    });
    for (const entry of sampleEntries().slice(0, 10)) await chain.record(entry);
    await chain.close(); // signs the unsealed tail (records 9–10) at shutdown
  } finally {
    await store.close();
  }
  return database;
}

async function verifyStore(database: Database_) {
  const store = await database.open();
  try {
    const key = await loadOrCreateAuditKey(store.audit);
    const snapshots = await snapshotStreams(store.audit);
    const fromStore = await verifyAuditLog({
      streams: repositoryVerifyInput(store.audit, snapshots, { pageSize: 3 }),
      publicKeyPem: key.publicKeyPem,
    });
    return { fromStore, key, store };
  } catch (error) {
    await store.close();
    throw error;
  }
}

async function assertTamperFound(
  database: Database_,
  seq: number,
  kind: AuditProblemKind,
): Promise<void> {
  const { fromStore, store } = await verifyStore(database);
  try {
    const problem = fromStore.streams[0]?.problem;
    assert.deepEqual({ seq: problem?.seq, kind: problem?.kind }, { seq, kind }, problem?.detail);
  } finally {
    await store.close();
  }
}

for (const backend of backends) {
  describe(`the audit chain on ${backend.name}`, () => {
    test('concurrent calls are group-committed into one chain that verifies', async () => {
      const database = backend.create();
      const store = await database.open();
      try {
        const key = await loadOrCreateAuditKey(store.audit);
        const chain = createAuditChain({
          repository: store.audit,
          stream: 'gw-1',
          signer: createCheckpointSigner(key),
          checkpointEvery: 100,
        });
        const records = await Promise.all(
          Array.from({ length: 300 }, (_, n) =>
            chain.record({
              event: 'call.allowed',
              time: new Date().toISOString(),
              requestId: `r${n}`,
            }),
          ),
        );
        assert.deepEqual(
          records.map((record) => record.requestId),
          Array.from({ length: 300 }, (_, n) => `r${n}`),
          'seq order is call order',
        );
        assert.equal(new Set(records.map((record) => record.seq)).size, 300);
        await chain.close();
        const report = await verifyAuditLog({
          streams: repositoryVerifyInput(store.audit, await snapshotStreams(store.audit)),
          publicKeyPem: key.publicKeyPem,
        });
        assert.equal(report.ok, true, report.streams[0]?.problem?.detail);
        assert.equal(report.streams[0]?.lastCheckpointSeq, 300);
      } finally {
        await store.close();
      }
    });

    test('a restarted chain continues the stored one, and a store export verifies offline', async () => {
      const database = await seededDatabase(() => backend.create());
      const store = await database.open();
      try {
        const key = await loadOrCreateAuditKey(store.audit);
        const chain = createAuditChain({
          repository: store.audit,
          stream: 'gw-1',
          signer: createCheckpointSigner(key),
        });
        assert.equal((await chain.record(sampleEntries()[10] ?? sampleEntries()[0]!)).seq, 11);
        await chain.close();
        const lines: string[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            lines.push(chunk.toString('utf8'));
            callback();
          },
        });
        const summary = await writeAuditExport(store.audit, sink, {
          publicKeyPem: key.publicKeyPem,
        });
        assert.deepEqual(summary, { streams: 1, records: 11, checkpoints: 4 });
      } finally {
        await store.close();
      }
      const { fromStore, store: reopened } = await verifyStore(database);
      await reopened.close();
      assert.equal(fromStore.ok, true, fromStore.streams[0]?.problem?.detail);
    });

    test('an UPDATE of a record’s stored JSON is a hash mismatch', async () => {
      const database = await seededDatabase(() => backend.create());
      await database.sql(
        `UPDATE audit_records SET record = replace(record, '"tool":"get_invoice"', '"tool":"nothing"') WHERE stream = 'gw-1' AND seq = $1`,
        [4],
      );
      await assertTamperFound(database, 4, 'hash_mismatch');
    });

    test('a DELETE of a record is a gap', async () => {
      const database = await seededDatabase(() => backend.create());
      await database.sql(`DELETE FROM audit_records WHERE stream = 'gw-1' AND seq = $1`, [6]);
      await assertTamperFound(database, 6, 'sequence_gap');
    });

    test('swapping two records’ contents is a reordering', async () => {
      const database = await seededDatabase(() => backend.create());
      const rows = await database.sql(
        `SELECT seq, record FROM audit_records WHERE stream = 'gw-1' AND seq IN (5, 6) ORDER BY seq`,
      );
      const [fifth, sixth] = rows.map((row) => String(row['record']));
      const swap = `UPDATE audit_records SET record = $1 WHERE stream = 'gw-1' AND seq = $2`;
      await database.sql(swap, [sixth, 5]);
      await database.sql(swap, [fifth, 6]);
      await assertTamperFound(database, 5, 'reordered');
    });

    test('deleting the newest records is truncation before the last checkpoint', async () => {
      const database = await seededDatabase(() => backend.create());
      await database.sql(`DELETE FROM audit_records WHERE stream = 'gw-1' AND seq >= $1`, [8]);
      await assertTamperFound(database, 8, 'truncated');
    });

    test('a checkpoint rewritten in the database fails its signature', async () => {
      const database = await seededDatabase(() => backend.create());
      await database.sql(
        `UPDATE audit_checkpoints SET record = replace(record, '"seq":8', '"seq":7') WHERE stream = 'gw-1' AND seq = 8`,
      );
      await assertTamperFound(database, 7, 'bad_checkpoint_signature');
    });
  });
}
