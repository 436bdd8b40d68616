// The audit log's storage, run against SQLite (file and memory) and PostgreSQL so both backends
// keep the same promises: every record kept as the exact JSON it was hashed from, a batch is all
// or nothing, a (stream, seq) is written once, the head is never pruned, the first signing key
// wins. Then what only a SQLite file has: a held lock and a read-only file fail an append with a
// typed error instead of hanging, and the writer thread lets the process exit.
import assert from 'node:assert/strict';
import { spawn, type SpawnOptions } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type { AuditCheckpoint, AuditRecord } from '../src/domain/audit-record.js';
import { canonicalJson } from '../src/domain/canonical-json.js';
import { StoreError } from '../src/store/errors.js';
import { openStore } from '../src/store/open-store.js';
import {
  adminClient,
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';
import {
  AUDIT_QUERY_DEFAULT_LIMIT,
  AUDIT_QUERY_MAX_LIMIT,
  type AuditSigningKey,
  type Store,
} from '../src/store/types.js';

/** 2030-03-17T17:46:40.000Z: every record's time is T0 plus its own offset. */
const T0 = 1_900_000_000_000;
const ZERO_HASH = '0'.repeat(64);

interface FreshDatabase {
  open(): Promise<Store>;
  /** False for memory: reopening gives a new, empty database. */
  readonly persistent: boolean;
  /** The `record` column as stored, bypassing the store (undefined for memory). */
  readRawRecord?(stream: string, seq: number): Promise<string | undefined>;
}

interface Backend {
  readonly name: string;
  createDatabase(): FreshDatabase;
}

const sqliteFile: Backend = {
  name: 'SQLite file',
  createDatabase() {
    const path = join(tempRoot, uniqueName('db'), 'warden.db');
    return {
      open: () => openTracked(`sqlite:${path}`),
      persistent: true,
      async readRawRecord(stream, seq) {
        const raw = new Database(path, { readonly: true });
        try {
          const text: unknown = raw
            .prepare('SELECT record FROM audit_records WHERE stream = ? AND seq = ?')
            .pluck()
            .get(stream, seq);
          return typeof text === 'string' ? text : undefined;
        } finally {
          raw.close();
        }
      },
    };
  },
};

const sqliteMemory: Backend = {
  name: 'SQLite memory',
  createDatabase() {
    return { open: () => openTracked('sqlite::memory:'), persistent: false };
  },
};

const postgres: Backend = {
  name: 'PostgreSQL',
  createDatabase() {
    const schema = uniqueName('warden_test');
    testSchemas.push(schema);
    return {
      open: () => openTracked(POSTGRES_URL, { schema }),
      persistent: true,
      async readRawRecord(stream, seq) {
        const result = await (
          await adminClient()
        ).query<{ record: string }>(
          `SELECT record FROM "${schema}".audit_records WHERE stream = $1 AND seq = $2`,
          [stream, seq],
        );
        return result.rows[0]?.record;
      },
    };
  },
};

/** A chained-looking record; the store does not verify hashes, it keeps them. */
function record(stream: string, seq: number, fields: Partial<AuditRecord> = {}): AuditRecord {
  return {
    stream,
    seq,
    prevHash: seq === 1 ? ZERO_HASH : `${stream}-${seq - 1}`.padEnd(64, '0'),
    hash: `${stream}-${seq}`.padEnd(64, '0'),
    event: 'call.allowed',
    time: new Date(T0 + seq * 1000).toISOString(),
    ...fields,
  };
}

function records(stream: string, from: number, to: number): AuditRecord[] {
  return Array.from({ length: to - from + 1 }, (_, index) => record(stream, from + index));
}

function checkpoint(stream: string, seq: number): AuditCheckpoint {
  return {
    stream,
    seq,
    headHash: `${stream}-${seq}`.padEnd(64, '0'),
    time: new Date(T0 + seq * 1000).toISOString(),
    keyId: 'audit-key-1',
    signature: `sig-${stream}-${seq}`,
  };
}

function signingKey(keyId: string): AuditSigningKey {
  return {
    keyId,
    privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${keyId}\n-----END PRIVATE KEY-----\n`,
    publicKeyPem: `-----BEGIN PUBLIC KEY-----\n${keyId}\n-----END PUBLIC KEY-----\n`,
  };
}

async function seqsOf(store: Store, stream: string): Promise<number[]> {
  return (await store.audit.readStream(stream, 0, AUDIT_QUERY_MAX_LIMIT)).map(({ seq }) => seq);
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
  describe(`${backend.name} audit repository`, () => {
    test('keeps each record as the exact canonical JSON it was given and reads it back unchanged', async () => {
      const database = backend.createDatabase();
      const store = await database.open();
      // Key order, escapes, non-ASCII, a lone surrogate, big and small numbers, nested arrays.
      const odd = record('replica-a', 2, {
        user: 'zoë@example.com',
        roles: ['ops', 'admin'],
        tool: 'read_file',
        arguments: {
          z: [1, 1e21, 0.1, -5e-7, { b: null, a: true }],
          path: 'C:\\temp\\"quoted"\n',
          emoji: '🙂',
          lone: 'x\ud800y',
          control: '\u0001\u001f',
        },
        decision: { effect: 'allow', reasons: ['permit: ops may read'], policies: ['p1', 'p0'] },
        details: { 'ü-key': 'value', 'a-key': 'b' },
      });
      await store.audit.append([record('replica-a', 1), odd]);

      const head = await store.audit.head('replica-a');
      assert.deepEqual(head, odd);
      assert.equal(canonicalJson(head), canonicalJson(odd));
      const [first, second] = await store.audit.readStream('replica-a', 1, 10);
      assert.deepEqual(first, record('replica-a', 1));
      assert.equal(canonicalJson(second), canonicalJson(odd));
      if (database.readRawRecord !== undefined) {
        assert.equal(
          await database.readRawRecord('replica-a', 2),
          canonicalJson(odd),
          'the stored text is byte for byte the canonical JSON, not a re-serialisation',
        );
      }
    });

    test('the head is the highest seq of its stream, and streams are listed by name', async () => {
      const store = await backend.createDatabase().open();
      assert.equal(await store.audit.head('replica-b'), undefined);
      assert.deepEqual(await store.audit.streams(), []);
      await store.audit.append(records('replica-b', 1, 3));
      await store.audit.append(records('replica-a', 1, 5));
      await store.audit.append(records('replica-b', 4, 7));
      assert.equal((await store.audit.head('replica-b'))?.seq, 7);
      assert.equal((await store.audit.head('replica-a'))?.seq, 5);
      assert.deepEqual(await store.audit.streams(), ['replica-a', 'replica-b']);
    });

    test('reads a stream in seq order, one page at a time', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, 12));
      await store.audit.append(records('s', 13, 25));
      await store.audit.append(records('other', 1, 3));
      const pages: number[][] = [];
      for (let from = 1; from <= 25; from += 10) {
        pages.push((await store.audit.readStream('s', from, 10)).map(({ seq }) => seq));
      }
      assert.deepEqual(
        pages,
        [records('s', 1, 10), records('s', 11, 20), records('s', 21, 25)].map((page) =>
          page.map(({ seq }) => seq),
        ),
      );
      assert.deepEqual(await store.audit.readStream('s', 26, 10), []);
      await assertStoreError(store.audit.readStream('s', 1, 0), 'STORE_INVALID_VALUE');
      await assertStoreError(
        store.audit.readStream('s', 1, AUDIT_QUERY_MAX_LIMIT + 1),
        'STORE_INVALID_VALUE',
      );
    });

    test('query narrows the timeline by every filter, ordered by time, then stream and seq', async () => {
      const store = await backend.createDatabase().open();
      const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
      const denied = record('b', 1, {
        event: 'call.denied',
        time: at(10),
        requestId: 'req-1',
        user: 'mallory',
        agent: 'bot-2',
        roles: ['guest'],
        tool: 'delete_repo',
        upstream: 'github',
        decision: { effect: 'deny', reasons: ['forbid: guests'], policies: ['forbid-guests'] },
      });
      const allowed = record('a', 1, {
        time: at(10),
        requestId: 'req-2',
        user: 'alice',
        agent: 'bot-1',
        roles: ['ops', 'admin'],
        tool: 'read_file',
        upstream: 'files',
        decision: { effect: 'allow', reasons: [], policies: ['permit-ops'] },
      });
      const result = record('a', 2, {
        event: 'call.result',
        time: at(11),
        requestId: 'req-2',
        user: 'alice',
        agent: 'bot-1',
        roles: ['ops', 'admin'],
        tool: 'read_file',
        upstream: 'files',
      });
      const held = record('b', 2, {
        event: 'approval.requested',
        time: at(20),
        requestId: 'req-3',
        user: 'alice',
        agent: 'bot-2',
        roles: ['ops'],
        tool: 'deploy',
        upstream: 'ci',
        decision: { effect: 'approval_required', reasons: [], policies: ['approve-deploys'] },
      });
      const loaded = record('a', 3, { event: 'config.loaded', time: at(30) });
      // Appended out of timeline order, across two streams.
      await store.audit.append([allowed, result, loaded]);
      await store.audit.append([denied, held]);
      const find = async (filters: Parameters<Store['audit']['query']>[0]): Promise<string[]> =>
        (await store.audit.query(filters)).map(({ stream, seq }) => `${stream}#${seq}`);

      // Equal times: stream a before stream b.
      assert.deepEqual(await find({}), ['a#1', 'b#1', 'a#2', 'b#2', 'a#3']);
      assert.deepEqual(await find({ stream: 'b' }), ['b#1', 'b#2']);
      assert.deepEqual(await find({ user: 'alice' }), ['a#1', 'a#2', 'b#2']);
      assert.deepEqual(await find({ agent: 'bot-2' }), ['b#1', 'b#2']);
      assert.deepEqual(await find({ role: 'admin' }), ['a#1', 'a#2']);
      assert.deepEqual(await find({ role: 'ops' }), ['a#1', 'a#2', 'b#2']);
      assert.deepEqual(await find({ tool: 'delete_repo' }), ['b#1']);
      assert.deepEqual(await find({ upstream: 'files' }), ['a#1', 'a#2']);
      assert.deepEqual(await find({ event: 'call.result' }), ['a#2']);
      assert.deepEqual(await find({ effect: 'deny' }), ['b#1']);
      assert.deepEqual(await find({ effect: 'approval_required' }), ['b#2']);
      assert.deepEqual(await find({ requestId: 'req-2' }), ['a#1', 'a#2']);
      assert.deepEqual(await find({ from: at(11), to: at(30) }), ['a#2', 'b#2'], 'from ≤ t < to');
      assert.deepEqual(await find({ from: at(30) }), ['a#3']);
      assert.deepEqual(await find({ to: at(10) }), []);
      assert.deepEqual(await find({ stream: 'a', afterSeq: 1 }), ['a#2', 'a#3']);
      assert.deepEqual(await find({ limit: 2 }), ['a#1', 'b#1']);
      assert.deepEqual(await find({ user: 'alice', role: 'ops', agent: 'bot-2' }), ['b#2']);
      assert.deepEqual(await find({ user: 'nobody' }), []);
      // A date alone is UTC midnight; an offset is honoured.
      assert.equal((await find({ from: '2030-03-17' })).length, 5);
      assert.deepEqual(await find({ from: '2030-03-17T18:46:51.000+01:00' }), [
        'a#2',
        'b#2',
        'a#3',
      ]);
      // What query returns is the stored record itself, not a reconstruction from the columns.
      assert.deepEqual(await store.audit.query({ requestId: 'req-3' }), [held]);
    });

    test('a role filter matches one of the roles exactly, never a substring or a LIKE wildcard', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append([
        record('s', 1, { roles: ['admin', 'ops'] }),
        record('s', 2, { roles: ['administrators'] }),
        record('s', 3, { roles: ['a%'] }),
        record('s', 4, { roles: ['a_b'] }),
        record('s', 5, { roles: [] }),
        record('s', 6),
        record('s', 7, { roles: ['x","admin'] }),
      ]);
      const seqs = async (role: string): Promise<number[]> =>
        (await store.audit.query({ role })).map(({ seq }) => seq);
      assert.deepEqual(await seqs('admin'), [1]);
      assert.deepEqual(await seqs('adm'), []);
      assert.deepEqual(await seqs('%'), []);
      assert.deepEqual(await seqs('a%'), [3]);
      assert.deepEqual(await seqs('a_b'), [4]);
      assert.deepEqual(await seqs('axb'), []);
      assert.deepEqual(await seqs('x","admin'), [7]);
    });

    test('query returns 1000 records unless told otherwise, and refuses limits and times it cannot honour', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, AUDIT_QUERY_DEFAULT_LIMIT + 5));
      const page = await store.audit.query({});
      assert.equal(page.length, AUDIT_QUERY_DEFAULT_LIMIT);
      assert.equal(page.at(-1)?.seq, AUDIT_QUERY_DEFAULT_LIMIT);
      assert.equal((await store.audit.query({ afterSeq: AUDIT_QUERY_DEFAULT_LIMIT })).length, 5);
      for (const limit of [0, -1, 1.5, AUDIT_QUERY_MAX_LIMIT + 1]) {
        await assertStoreError(store.audit.query({ limit }), 'STORE_INVALID_VALUE');
      }
      // A time without a zone means a different instant on each host.
      await assertStoreError(
        store.audit.query({ from: '2030-03-17T10:00:00' }),
        'STORE_INVALID_VALUE',
      );
      await assertStoreError(store.audit.query({ to: 'yesterday' }), 'STORE_INVALID_VALUE');
      await assertStoreError(store.audit.query({ afterSeq: -1 }), 'STORE_INVALID_VALUE');
    });

    test('refuses a record whose (stream, seq) exists already, and keeps the first', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, 3));
      const forged = record('s', 2, { event: 'call.denied', user: 'mallory' });
      await assertStoreError(store.audit.append([forged]), 'STORE_CONFLICT');
      assert.deepEqual(await store.audit.readStream('s', 2, 1), [record('s', 2)]);
      // The same seq in another stream is another record.
      await store.audit.append([record('t', 2)]);
    });

    test('a batch that fails in the middle leaves nothing of itself, its checkpoint included', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, 3), checkpoint('s', 3));
      const batch = [record('s', 4), record('s', 5), record('s', 2), record('s', 6)];
      await assertStoreError(store.audit.append(batch, checkpoint('s', 6)), 'STORE_CONFLICT');
      assert.equal((await store.audit.head('s'))?.seq, 3);
      assert.deepEqual(await seqsOf(store, 's'), [1, 2, 3]);
      assert.deepEqual(
        (await store.audit.checkpoints('s')).map(({ seq }) => seq),
        [3],
      );
      // A duplicate inside one batch fails the same way.
      await assertStoreError(
        store.audit.append([record('s', 4), record('s', 4)]),
        'STORE_CONFLICT',
      );
      assert.deepEqual(await seqsOf(store, 's'), [1, 2, 3]);
      // So does a checkpoint that exists already: the records sent with it are not kept either.
      await assertStoreError(
        store.audit.append([record('s', 4)], checkpoint('s', 3)),
        'STORE_CONFLICT',
      );
      assert.deepEqual(await seqsOf(store, 's'), [1, 2, 3]);
      // Nothing is left half-done: the corrected batch goes through.
      await store.audit.append(records('s', 4, 6), checkpoint('s', 6));
      assert.deepEqual(await seqsOf(store, 's'), [1, 2, 3, 4, 5, 6]);
    });

    test('stores checkpoints with their batch, or alone, and lists them per stream in seq order', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, 2), checkpoint('s', 2));
      await store.audit.append(records('t', 1, 1), checkpoint('t', 1));
      await store.audit.append(records('s', 3, 4));
      await store.audit.append([], checkpoint('s', 4));
      await store.audit.append([]);
      assert.deepEqual(await store.audit.checkpoints('s'), [
        checkpoint('s', 2),
        checkpoint('s', 4),
      ]);
      assert.deepEqual(await store.audit.checkpoints('t'), [checkpoint('t', 1)]);
      assert.deepEqual(await store.audit.checkpoints('u'), []);
    });

    test('prunes through a seq, keeps the rest and the checkpoints, and never the head without a marker', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, 10), checkpoint('s', 4));
      await store.audit.append(records('t', 1, 3));
      assert.equal(await store.audit.prune('s', 4), 4);
      assert.deepEqual(await seqsOf(store, 's'), [5, 6, 7, 8, 9, 10]);
      assert.equal(await store.audit.prune('s', 4), 0, 'pruning again deletes nothing');
      const refused = await assertStoreError(store.audit.prune('s', 10), 'STORE_INVALID_VALUE');
      assert.match(refused.message, /head/);
      await assertStoreError(store.audit.prune('s', 15), 'STORE_INVALID_VALUE');
      await assertStoreError(store.audit.prune('s', -1), 'STORE_INVALID_VALUE');
      assert.deepEqual(
        await seqsOf(store, 's'),
        [5, 6, 7, 8, 9, 10],
        'a refused prune deletes nothing',
      );
      assert.equal(await store.audit.prune('s', 9), 5);
      assert.equal((await store.audit.head('s'))?.seq, 10);
      assert.deepEqual(await seqsOf(store, 't'), [1, 2, 3], 'other streams are untouched');
      assert.deepEqual(await store.audit.checkpoints('s'), [checkpoint('s', 4)]);
      assert.equal(await store.audit.prune('unknown', 5), 0);
    });

    test('an archive stores its audit.pruned marker in the transaction that deletes the prefix', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, 12), checkpoint('s', 6));
      const marker = (seq: number, fields: Partial<AuditRecord> = {}): AuditRecord =>
        record('s', seq, {
          event: 'audit.pruned',
          details: { throughSeq: seq, lastHash: record('s', seq).hash },
          ...fields,
        });
      // Markers that do not stand in for exactly this prefix delete nothing.
      for (const wrong of [
        marker(5),
        { ...marker(6), stream: 't' },
        marker(6, { event: 'call.allowed' }),
        marker(6, { time: 'not a time' }),
      ]) {
        await assertStoreError(store.audit.prune('s', 6, wrong), 'STORE_INVALID_VALUE');
      }
      await assertStoreError(store.audit.prune('s', 13, marker(13)), 'STORE_INVALID_VALUE');
      assert.equal((await seqsOf(store, 's')).length, 12);

      assert.equal(await store.audit.prune('s', 6, marker(6)), 6);
      const [first, second] = await store.audit.readStream('s', 0, 2);
      assert.deepEqual(first, marker(6));
      assert.equal(second?.seq, 7);
      // A later archive replaces the earlier marker, and may take the head itself.
      assert.equal(await store.audit.prune('s', 12, marker(12)), 7);
      assert.deepEqual(await store.audit.readStream('s', 0, 10), [marker(12)]);
      assert.deepEqual(await store.audit.head('s'), marker(12));
      assert.deepEqual(await store.audit.checkpoints('s'), [checkpoint('s', 6)]);
      await store.audit.append(records('s', 13, 13));
      assert.deepEqual(await seqsOf(store, 's'), [12, 13]);
    });

    test('the first audit signing key saved wins; a later save returns it and changes nothing', async () => {
      const store = await backend.createDatabase().open();
      assert.equal(await store.audit.signingKey(), undefined);
      assert.deepEqual(await store.audit.saveSigningKey(signingKey('first')), signingKey('first'));
      assert.deepEqual(await store.audit.saveSigningKey(signingKey('second')), signingKey('first'));
      assert.deepEqual(await store.audit.signingKey(), signingKey('first'));
      await assertStoreError(
        store.audit.saveSigningKey({ ...signingKey('x'), privateKeyPem: '' }),
        'STORE_INVALID_VALUE',
      );
    });

    test('replicas saving a signing key at the same moment all end up with one key', async (t) => {
      const database = backend.createDatabase();
      if (!database.persistent) {
        t.skip('a memory database belongs to one store');
        return;
      }
      const replicas = await Promise.all([database.open(), database.open(), database.open()]);
      const saved = await Promise.all(
        replicas.flatMap((replica, r) =>
          [0, 1, 2].map((i) => replica.audit.saveSigningKey(signingKey(`replica-${r}-${i}`))),
        ),
      );
      const winner = saved[0];
      assert.ok(winner !== undefined);
      assert.ok(
        saved.every((key) => key.keyId === winner.keyId),
        'every caller got the same key',
      );
      for (const replica of replicas) assert.deepEqual(await replica.audit.signingKey(), winner);
    });

    test('concurrent appends all commit, and of two racing for one seq exactly one wins', async () => {
      const database = backend.createDatabase();
      const store = await database.open();
      await Promise.all(records('s', 1, 20).map((r) => store.audit.append([r])));
      assert.deepEqual(
        await seqsOf(store, 's'),
        records('s', 1, 20).map(({ seq }) => seq),
      );
      // Two writers that both believe they own seq 21 (e.g. two replicas misconfigured with one
      // stream name): one commits, the other is told, nothing is silently dropped or merged.
      const other = database.persistent ? await database.open() : store;
      const mine = record('s', 21, { user: 'mine' });
      const theirs = record('s', 21, { user: 'theirs' });
      const outcomes = await Promise.allSettled([
        store.audit.append([mine, record('s', 22, { user: 'mine' })]),
        other.audit.append([theirs]),
      ]);
      const winners = outcomes.filter(({ status }) => status === 'fulfilled');
      assert.equal(winners.length, 1);
      const loser = outcomes.find(({ status }) => status === 'rejected');
      assert.ok(loser?.status === 'rejected' && loser.reason instanceof StoreError);
      assert.equal(loser.reason.code, 'STORE_CONFLICT');
      const [stored] = await store.audit.readStream('s', 21, 1);
      assert.equal(stored?.user, outcomes[0]?.status === 'fulfilled' ? 'mine' : 'theirs');
    });

    test('refuses records it cannot store faithfully, and stores nothing of their batch', async () => {
      const store = await backend.createDatabase().open();
      const bad: AuditRecord[] = [
        record('s', 0),
        record('s', 1.5),
        record('', 1),
        record('s', 1, { time: '2030-03-17 10:00:00' }),
        record('s', 1, { time: '2030-03-17T10:00:00' }),
        record('s', 1, { arguments: { amount: 10n } }),
        record('s', 1, { arguments: { ratio: Number.NaN } }),
        record('s', 1, { roles: 'admin' as unknown as string[] }),
      ];
      for (const invalid of bad) {
        await assertStoreError(
          store.audit.append([record('s', 1), invalid]),
          'STORE_INVALID_VALUE',
        );
      }
      await assertStoreError(
        store.audit.append([], { ...checkpoint('s', 1), seq: 0 }),
        'STORE_INVALID_VALUE',
      );
      assert.deepEqual(await store.audit.streams(), []);
    });

    test('a hostile user id or tool name (lone surrogate, NUL) neither fails the batch nor is altered in the record', async () => {
      const store = await backend.createDatabase().open();
      const hostile = record('s', 2, { user: 'eve\ud800', tool: 'rm\u0000-rf', roles: ['\udfff'] });
      await store.audit.append([record('s', 1), hostile, record('s', 3)]);
      assert.deepEqual(await seqsOf(store, 's'), [1, 2, 3]);
      const [stored] = await store.audit.readStream('s', 2, 1);
      assert.equal(canonicalJson(stored), canonicalJson(hostile));
      assert.equal(stored?.user, 'eve\ud800');
      // Queries for the same values find it (their indexed copies are made well-formed alike).
      assert.deepEqual(
        (await store.audit.query({ user: 'eve\ud800' })).map(({ seq }) => seq),
        [2],
      );
      assert.deepEqual(
        (await store.audit.query({ tool: 'rm\u0000-rf', role: '\udfff' })).map(({ seq }) => seq),
        [2],
      );
    });

    test('keeps the log across a restart', async (t) => {
      const database = backend.createDatabase();
      if (!database.persistent) {
        t.skip('a memory database ends with its store');
        return;
      }
      const first = await database.open();
      await first.audit.append(records('s', 1, 3), checkpoint('s', 3));
      await first.audit.saveSigningKey(signingKey('k1'));
      await first.close();
      const second = await database.open();
      assert.deepEqual(await second.audit.head('s'), record('s', 3));
      assert.deepEqual(await second.audit.checkpoints('s'), [checkpoint('s', 3)]);
      assert.deepEqual(await second.audit.signingKey(), signingKey('k1'));
    });

    test('after close, every audit call rejects with STORE_CLOSED', async () => {
      const store = await backend.createDatabase().open();
      await store.audit.append(records('s', 1, 1));
      await store.close();
      await assertStoreError(store.audit.append([record('s', 2)]), 'STORE_CLOSED');
      await assertStoreError(store.audit.head('s'), 'STORE_CLOSED');
      await assertStoreError(store.audit.query({}), 'STORE_CLOSED');
      await assertStoreError(store.audit.prune('s', 0), 'STORE_CLOSED');
      await assertStoreError(store.audit.signingKey(), 'STORE_CLOSED');
    });
  });
}

/** Runs a script in a fresh Node process; resolves with its exit code and output, or kills it. */
async function runScript(
  script: string,
  options: SpawnOptions = {},
  patienceMs = 20_000,
): Promise<{ code: number | null; output: string; elapsedMs: number }> {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', script],
    {
      ...options,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const patience = new AbortController();
  const outcome = await Promise.race([
    exited,
    sleep(patienceMs, 'still running', { signal: patience.signal }).catch(() => 'aborted'),
  ]);
  patience.abort();
  if (outcome === 'still running') {
    child.kill('SIGKILL');
    assert.fail(`the process was still running after ${patienceMs} ms; output:\n${output}`);
  }
  return { code: outcome as number | null, output, elapsedMs: Date.now() - started };
}

const openStoreUrl = new URL('../src/store/open-store.ts', import.meta.url).href;

describe('SQLite audit repository only', () => {
  test('an appended batch is committed when append resolves: another connection reads it at once', async () => {
    const path = join(tempRoot, uniqueName('visible'), 'warden.db');
    const store = await openTracked(`sqlite:${path}`);
    await store.audit.append(records('s', 1, 256));
    const reader = new Database(path, { readonly: true });
    try {
      assert.equal(reader.prepare('SELECT count(*) FROM audit_records').pluck().get(), 256);
    } finally {
      reader.close();
    }
  });

  test('an append while another process holds the write lock fails with a typed error after the busy timeout, and the next one succeeds', async () => {
    const path = join(tempRoot, uniqueName('locked'), 'warden.db');
    const store = await openTracked(`sqlite:${path}`);
    await store.audit.append(records('s', 1, 1));
    const holder = new Database(path, { timeout: 0 });
    holder.exec('BEGIN IMMEDIATE');
    try {
      const started = Date.now();
      const error = await assertStoreError(
        store.audit.append([record('s', 2)]),
        'STORE_QUERY_FAILED',
      );
      assert.match(error.message, /locked|busy/i);
      assert.ok(Date.now() - started < 9000, 'it failed after the busy timeout, not later');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    await store.audit.append([record('s', 2)]);
    assert.deepEqual(await seqsOf(store, 's'), [1, 2]);
  });

  test('an append to a database file made read-only fails with a typed error instead of hanging', async () => {
    // Root ignores file modes, so as root the appending process runs as nobody. The folder stays
    // writable (SQLite needs its -wal and -shm files to open the database at all).
    const folder = mkdtempSync(join(tmpdir(), 'warden-readonly-'));
    chmodSync(folder, 0o777);
    try {
      const url = `sqlite:${join(folder, 'warden.db')}`;
      const writer = await openStore(url);
      await writer.audit.append(records('s', 1, 2));
      await writer.close();
      chmodSync(join(folder, 'warden.db'), 0o444);
      const script = `
        const { openStore } = await import(${JSON.stringify(openStoreUrl)});
        const store = await openStore(${JSON.stringify(url)});
        const head = await store.audit.head('s');
        const outcome = await store.audit
          .append([{ ...head, seq: 3, prevHash: head.hash, hash: 'h3' }])
          .then(() => 'appended', (error) => error.code);
        await store.close();
        console.log(JSON.stringify({ head: head.seq, outcome }));
      `;
      const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
      const { code, output } = await runScript(script, asNobody);
      assert.equal(code, 0, output);
      const lines = output.trim().split('\n');
      assert.deepEqual(JSON.parse(lines.at(-1) ?? ''), { head: 2, outcome: 'STORE_QUERY_FAILED' });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('the writer thread neither keeps an idle process alive nor loses queued appends at close', async () => {
    const path = join(tempRoot, uniqueName('exit'), 'warden.db');
    const script = `
      const { openStore } = await import(${JSON.stringify(openStoreUrl)});
      const url = ${JSON.stringify(`sqlite:${path}`)};
      const record = (seq) => ({ stream: 's', seq, prevHash: 'p', hash: 'h', event: 'call.allowed',
        time: '2030-01-01T00:00:00.000Z' });
      const idle = await openStore(url);
      await idle.audit.append([record(1)]);
      // Not closed: an idle writer thread must not keep this process alive.
      const store = await openStore(url);
      const queued = [2, 3, 4].map((seq) => store.audit.append([record(seq)]));
      await store.close();
      await Promise.all(queued);
      console.log('done');
    `;
    const { code, output } = await runScript(script);
    assert.equal(code, 0, `the process must exit on its own; output:\n${output}`);
    const reader = new Database(path, { readonly: true });
    try {
      assert.deepEqual(
        reader.prepare('SELECT seq FROM audit_records ORDER BY seq').pluck().all(),
        [1, 2, 3, 4],
      );
    } finally {
      reader.close();
    }
  });
});
