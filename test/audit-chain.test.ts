// The audit chain: seqs and hashes in call order, group commit (one append per batch, each caller
// waiting for its own commit), fail closed when the store refuses a batch, resuming after a
// restart, and checkpoints by count, by timer, on demand and at shutdown.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAuditChain, type AuditChain } from '../src/audit/audit-chain.js';
import {
  createCheckpointSigner,
  generateAuditKeyPair,
  loadOrCreateAuditKey,
  verifyCheckpoint,
} from '../src/audit/checkpoint.js';
import type { AuditError } from '../src/audit/errors.js';
import { AuditUnavailableError } from '../src/audit/errors.js';
import { repositoryVerifyInput, snapshotStreams } from '../src/audit/read-stream.js';
import { GENESIS_HASH, hashRecord } from '../src/audit/record-hash.js';
import { verifyAuditLog } from '../src/audit/verify.js';
import type { AuditEntry } from '../src/domain/audit-record.js';
import { T0, steppingClock } from './fixtures/audit/build-chain.js';
import {
  createMemoryAuditRepository,
  type MemoryAuditRepository,
} from './support/memory-audit-repository.js';

const KEY = generateAuditKeyPair();
const chains: AuditChain[] = [];

afterEach(async () => {
  await Promise.allSettled(chains.splice(0).map((chain) => chain.close()));
});

function openChain(
  repository: MemoryAuditRepository,
  options: Partial<Parameters<typeof createAuditChain>[0]> = {},
): AuditChain {
  const chain = createAuditChain({
    repository,
    stream: 'gw-1',
    signer: createCheckpointSigner(KEY),
    checkpointIntervalMs: 3_600_000,
    now: steppingClock(),
    ...options,
  });
  chains.push(chain);
  return chain;
}

function entry(n: number, extra: Partial<AuditEntry> = {}): AuditEntry {
  return {
    event: 'call.allowed',
    time: new Date(T0 + n).toISOString(),
    requestId: `req-${n}`,
    tool: 'get_invoice',
    ...extra,
  };
}

async function verifyRepository(repository: MemoryAuditRepository) {
  const snapshots = await snapshotStreams(repository);
  return verifyAuditLog({
    streams: repositoryVerifyInput(repository, snapshots),
    publicKeyPem: KEY.publicKeyPem,
  });
}

/** Waits until `done()` holds: for the chain's timers and the repository's I/O to get there. */
async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, `${what} did not happen`);
    await sleep(5);
  }
}

/** Whether the promise has settled, without waiting for it. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  const winner = await Promise.race([
    promise.then(
      () => 1,
      () => 1,
    ),
    sleep(5, pending),
  ]);
  return winner !== pending;
}

describe('chaining', () => {
  test('gives records seqs 1, 2, 3… linked by hash from the genesis hash', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository);
    const first = await chain.record(entry(1));
    const second = await chain.record(entry(2));
    assert.equal(first.seq, 1);
    assert.equal(first.prevHash, GENESIS_HASH);
    assert.equal(first.hash, hashRecord(first));
    assert.equal(second.seq, 2);
    assert.equal(second.prevHash, first.hash);
    assert.equal(second.stream, 'gw-1');
    assert.equal((await repository.head('gw-1'))?.hash, second.hash);
  });

  test('stores plain JSON data, so what was hashed is what is read back', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository);
    const input = entry(1, {
      details: { at: new Date(T0), missing: undefined, nested: { b: 1, a: 2 } },
    });
    const record = await chain.record(input);
    assert.deepEqual(record.details, { at: new Date(T0).toISOString(), nested: { a: 2, b: 1 } });
    const [stored] = await repository.readStream('gw-1', 1, 10);
    assert.equal(stored && hashRecord(stored), record.hash);
    assert.ok(input.details?.['at'] instanceof Date, 'the caller’s entry is not changed');
  });

  test('assigns the chain fields itself, whatever the caller passes', async () => {
    const chain = openChain(createMemoryAuditRepository());
    const forged = { ...entry(1), seq: 99, prevHash: 'f'.repeat(64), stream: 'other' };
    const record = await chain.record(forged as AuditEntry);
    assert.equal(record.seq, 1);
    assert.equal(record.prevHash, GENESIS_HASH);
    assert.equal(record.stream, 'gw-1');
  });

  test('refuses a malformed entry to its caller alone, not to the batch it would join', async () => {
    const chain = openChain(createMemoryAuditRepository());
    const good = chain.record(entry(1));
    await assert.rejects(
      chain.record({ ...entry(2), event: 'call.maybe' } as unknown as AuditEntry),
      (error: AuditError) => error.code === 'AUDIT_INVALID_ENTRY',
    );
    for (const bad of [
      entry(3, { latencyMs: Number.NaN }),
      entry(3, { time: '2026-01-15 09:00:00' }),
      entry(3, { roles: 'admin' as unknown as string[] }),
    ]) {
      await assert.rejects(
        chain.record(bad),
        (error: AuditError) => error.code === 'AUDIT_INVALID_ENTRY',
      );
    }
    assert.equal((await good).seq, 1);
    assert.equal((await chain.record(entry(4))).seq, 2);
  });
});

describe('group commit', () => {
  test('records arriving within the batch window share one append, in call order', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 20 });
    const records = await Promise.all(Array.from({ length: 25 }, (_, n) => chain.record(entry(n))));
    assert.equal(repository.appendCalls.length, 1);
    assert.deepEqual(
      records.map((record) => record.requestId),
      Array.from({ length: 25 }, (_, n) => `req-${n}`),
    );
    assert.deepEqual(
      records.map((record) => record.seq),
      Array.from({ length: 25 }, (_, n) => n + 1),
    );
    assert.equal((await verifyRepository(repository)).ok, true);
  });

  test('a caller is answered only after the append holding its record commits', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 1 });
    const release = repository.holdAppends();
    const pending = chain.record(entry(1));
    await until('the append starting', () => repository.appendCalls.length === 1);
    assert.equal(await isSettled(pending), false, 'but the caller still waits for the commit');
    assert.equal(await repository.head('gw-1'), undefined);
    release();
    const record = await pending;
    assert.equal((await repository.head('gw-1'))?.hash, record.hash);
  });

  test('records arriving during an append gather into the next one', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 1 });
    const release = repository.holdAppends();
    const first = chain.record(entry(1));
    await until('the first append starting', () => repository.appendCalls.length === 1);
    const behind = Array.from({ length: 5 }, (_, n) => chain.record(entry(n + 2)));
    await sleep(10);
    assert.equal(repository.appendCalls.length, 1, 'one append at a time');
    release();
    await Promise.all([first, ...behind]);
    assert.deepEqual(
      repository.appendCalls.map((call) => call.records.map((record) => record.seq)),
      [[1], [2, 3, 4, 5, 6]],
    );
  });

  test('a full batch is appended without waiting for the window, and splits at maxBatch', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 60_000, maxBatch: 4 });
    const records = await Promise.all(Array.from({ length: 10 }, (_, n) => chain.record(entry(n))));
    // Ten callers, maxBatch 4: a full batch of 4 at once, then 4, then the 2 left — the last two
    // were waiting behind an append, so they do not wait for the (minute-long) window either.
    assert.deepEqual(
      repository.appendCalls.map((call) => call.records.length),
      [4, 4, 2],
    );
    assert.equal(records.at(-1)?.seq, 10);
  });
});

describe('fail closed', () => {
  test('a failed append rejects every caller of its batch with AUDIT_UNAVAILABLE', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 10 });
    await chain.record(entry(0));
    repository.failAppends(1);
    const results = await Promise.allSettled(
      Array.from({ length: 3 }, (_, n) => chain.record(entry(n + 1))),
    );
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      const error = (result as PromiseRejectedResult).reason as AuditUnavailableError;
      assert.ok(error instanceof AuditUnavailableError);
      assert.equal(error.code, 'AUDIT_UNAVAILABLE');
      assert.match(String((error.cause as Error).message), /disk I\/O error/);
    }
    assert.equal((await repository.head('gw-1'))?.seq, 1, 'nothing of the batch was stored');
  });

  test('after a failed batch the chain reuses its seqs and links to the last committed record', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 1 });
    const committed = await chain.record(entry(0));
    repository.failAppends(1);
    await assert.rejects(chain.record(entry(1)), AuditUnavailableError);
    const next = await chain.record(entry(2));
    assert.equal(next.seq, 2, 'the failed seq is reused');
    assert.equal(next.prevHash, committed.hash);
    assert.equal(next.requestId, 'req-2');
    assert.equal((await verifyRepository(repository)).ok, true);
  });

  test('a store that cannot even report its head fails the batch, and the chain recovers', async () => {
    const repository = createMemoryAuditRepository();
    const head = repository.head;
    repository.head = () => Promise.reject(new Error('connection refused'));
    const chain = openChain(repository);
    await assert.rejects(chain.record(entry(1)), AuditUnavailableError);
    repository.head = head;
    assert.equal((await chain.record(entry(2))).seq, 1);
  });
});

describe('restart', () => {
  test('a new chain on the same stream continues from the stored head', async () => {
    const repository = createMemoryAuditRepository();
    const before = openChain(repository);
    await before.record(entry(1));
    const last = await before.record(entry(2));
    await before.close();
    const after = openChain(repository);
    const next = await after.record(entry(3));
    assert.equal(next.seq, 3);
    assert.equal(next.prevHash, last.hash);
    assert.equal((await verifyRepository(repository)).ok, true);
  });

  test('streams of different replicas are separate chains', async () => {
    const repository = createMemoryAuditRepository();
    const a = openChain(repository, { stream: 'gw-a' });
    const b = openChain(repository, { stream: 'gw-b' });
    await Promise.all([a.record(entry(1)), b.record(entry(2)), a.record(entry(3))]);
    assert.equal((await repository.head('gw-a'))?.seq, 2);
    assert.equal((await repository.head('gw-b'))?.seq, 1);
    const report = await verifyRepository(repository);
    assert.equal(report.ok, true);
    assert.equal(report.streams.length, 2);
  });
});

describe('checkpoints', () => {
  test('are appended with the batch that reaches checkpointEvery records', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { checkpointEvery: 3 });
    for (let n = 1; n <= 7; n++) await chain.record(entry(n));
    const checkpoints = await repository.checkpoints('gw-1');
    assert.deepEqual(
      checkpoints.map((checkpoint) => checkpoint.seq),
      [3, 6],
    );
    const sixth = (await repository.readStream('gw-1', 6, 1))[0];
    assert.equal(checkpoints[1]?.headHash, sixth?.hash);
    assert.ok(checkpoints.every((checkpoint) => verifyCheckpoint(checkpoint, KEY.publicKeyPem)));
    const withCheckpoint = repository.appendCalls.filter((call) => call.checkpoint);
    assert.deepEqual(
      withCheckpoint.map((call) => call.records.at(-1)?.seq),
      [3, 6],
      'in the same transaction as the records it covers',
    );
  });

  test('checkpoint() commits what is pending and signs the head; again returns the same one', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 50 });
    assert.equal(await chain.checkpoint(), undefined, 'nothing to sign on an empty stream');
    const pending = [chain.record(entry(1)), chain.record(entry(2))];
    const checkpoint = await chain.checkpoint();
    const records = await Promise.all(pending);
    assert.equal(checkpoint?.seq, 2);
    assert.equal(checkpoint?.headHash, records[1]?.hash);
    assert.deepEqual(await chain.checkpoint(), checkpoint);
    assert.equal((await repository.checkpoints('gw-1')).length, 1);
  });

  test('the interval timer signs a head that has moved, and only then', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { checkpointIntervalMs: 15 });
    await chain.record(entry(1));
    await sleep(80);
    const checkpoints = await repository.checkpoints('gw-1');
    assert.deepEqual(
      checkpoints.map((checkpoint) => checkpoint.seq),
      [1],
    );
  });

  test('close() commits pending records, checkpoints the head, then refuses records', async () => {
    const repository = createMemoryAuditRepository();
    const chain = openChain(repository, { batchWindowMs: 50 });
    const pending = chain.record(entry(1));
    await chain.close();
    assert.equal((await pending).seq, 1);
    assert.equal((await repository.checkpoints('gw-1'))[0]?.seq, 1);
    await assert.rejects(
      chain.record(entry(2)),
      (error: AuditError) => error.code === 'AUDIT_CLOSED',
    );
  });

  test('a restarted chain does not sign again a head already checkpointed', async () => {
    const repository = createMemoryAuditRepository();
    const before = openChain(repository);
    await before.record(entry(1));
    const signed = await before.checkpoint();
    const after = openChain(repository);
    assert.deepEqual(await after.checkpoint(), signed);
    await after.close();
    assert.equal((await repository.checkpoints('gw-1')).length, 1);
  });
});

describe('the audit signing key', () => {
  test('is created once and then loaded; two racing replicas end up with the same key', async () => {
    const repository = createMemoryAuditRepository();
    const [a, b] = await Promise.all([
      loadOrCreateAuditKey(repository),
      loadOrCreateAuditKey(repository),
    ]);
    assert.equal(a.keyId, b.keyId);
    assert.equal((await loadOrCreateAuditKey(repository)).publicKeyPem, a.publicKeyPem);
  });

  test('a stored key whose public half was swapped is refused', async () => {
    const repository = createMemoryAuditRepository();
    const genuine = await loadOrCreateAuditKey(repository);
    const other = generateAuditKeyPair();
    repository.signingKey = () => Promise.resolve({ ...genuine, publicKeyPem: other.publicKeyPem });
    await assert.rejects(
      loadOrCreateAuditKey(repository),
      (error: AuditError) => error.code === 'AUDIT_KEY_INVALID',
    );
  });
});
