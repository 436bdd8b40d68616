// Tampering with a real export file on disk, verified offline with nothing but the public key.
// Each test is one attack: the file is edited in place the way someone holding the export (or
// the database it came from) would, and verification must name the first bad seq and the kind.
//
// The chain: 10 records, checkpoints at seq 4 and 8 (records 9 and 10 are not yet sealed).
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAuditChain } from '../src/audit/audit-chain.js';
import { createCheckpointSigner, generateAuditKeyPair } from '../src/audit/checkpoint.js';
import type { AuditError } from '../src/audit/errors.js';
import { readAuditExport } from '../src/audit/export.js';
import { createPrunedMarker } from '../src/audit/pruned-prefix.js';
import { repositoryVerifyInput, snapshotStreams } from '../src/audit/read-stream.js';
import { hashRecord } from '../src/audit/record-hash.js';
import { verifyAuditLog, type AuditProblemKind, type VerifyReport } from '../src/audit/verify.js';
import type { AuditCheckpoint, AuditRecord } from '../src/domain/audit-record.js';
import { canonicalJson } from '../src/domain/canonical-json.js';
import {
  auditKeyFromSeed,
  buildChain,
  exportText,
  sampleEntries,
} from './fixtures/audit/build-chain.js';
import type { MemoryAuditRepository } from './support/memory-audit-repository.js';

const KEY = auditKeyFromSeed('warden tamper-test audit key');
const ATTACKER_KEY = generateAuditKeyPair();
const dir = mkdtempSync(join(tmpdir(), 'warden-audit-tamper-'));
const pristine = join(dir, 'pristine.jsonl');
let caseNumber = 0;

before(async () => {
  const { repository } = await buildChain({ key: KEY, entries: sampleEntries().slice(0, 10) });
  writeFileSync(pristine, await exportText(repository, KEY.publicKeyPem));
});

after(() => rmSync(dir, { recursive: true, force: true }));

type Line = Record<string, unknown>;

/** A copy of the pristine export for one attack, edited in place through `edit`. */
function tamperedCopy(edit: (lines: Line[]) => Line[] | void): string {
  const path = join(dir, `case-${++caseNumber}.jsonl`);
  copyFileSync(pristine, path);
  const lines = readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Line);
  const edited = edit(lines) ?? lines;
  writeFileSync(path, `${edited.map((line) => canonicalJson(line)).join('\n')}\n`);
  return path;
}

async function verifyFile(path: string, publicKeyPem = KEY.publicKeyPem): Promise<VerifyReport> {
  const file = await readAuditExport(path);
  return verifyAuditLog({ streams: file.streams, publicKeyPem });
}

async function assertProblem(
  path: string,
  seq: number,
  kind: AuditProblemKind,
  publicKeyPem?: string,
): Promise<void> {
  assertFirstProblem(await verifyFile(path, publicKeyPem), seq, kind);
}

function assertFirstProblem(report: VerifyReport, seq: number, kind: AuditProblemKind): void {
  assert.equal(report.ok, false, 'the tampering is detected');
  const problem = report.streams[0]?.problem;
  assert.deepEqual(
    { seq: problem?.seq, kind: problem?.kind },
    { seq, kind },
    `reported: ${problem?.detail}`,
  );
}

const isRecord = (seq: number) => (line: Line) => line['type'] === 'record' && line['seq'] === seq;
const isCheckpoint = (seq: number) => (line: Line) =>
  line['type'] === 'checkpoint' && line['seq'] === seq;

function recordAt(lines: Line[], seq: number): Line {
  const line = lines.find(isRecord(seq));
  assert.ok(line, `record ${seq} is in the export`);
  return line;
}

/** Recomputes a line's hash the way an attacker would after editing it. */
function rehash(line: Line): void {
  line['hash'] = hashRecord({ ...line, type: undefined } as unknown as AuditRecord);
}

/** Re-chains every record from `fromSeq` on, as an attacker rewriting history would. */
function rechainFrom(lines: Line[], fromSeq: number): void {
  let prev = recordAt(lines, fromSeq - 1)['hash'];
  for (const line of lines.filter((l) => l['type'] === 'record' && Number(l['seq']) >= fromSeq)) {
    line['prevHash'] = prev;
    rehash(line);
    prev = line['hash'];
  }
}

describe('an intact export', () => {
  test('verifies offline with the public key alone', async () => {
    const report = await verifyFile(pristine);
    assert.equal(report.ok, true);
    const [stream] = report.streams;
    assert.equal(stream?.recordsChecked, 10);
    assert.equal(stream?.lastCheckpointSeq, 8);
    assert.equal(stream?.unsealedRecords, 2, 'records 9 and 10 are not sealed yet');
  });
});

describe('editing records', () => {
  test('changing an argument of a record is a hash mismatch at that record', async () => {
    const path = tamperedCopy((lines) => {
      (recordAt(lines, 3)['arguments'] as Line)['amount'] = 10;
    });
    await assertProblem(path, 3, 'hash_mismatch');
  });

  test('changing a field and recomputing its hash breaks the link from the next record', async () => {
    const path = tamperedCopy((lines) => {
      const record = recordAt(lines, 3);
      record['decision'] = { effect: 'allow', reasons: [], policies: [] };
      rehash(record);
    });
    await assertProblem(path, 4, 'broken_link');
  });

  test('rewriting the whole chain after an edit is caught by the signed checkpoint', async () => {
    const path = tamperedCopy((lines) => {
      recordAt(lines, 6)['user'] = 'mallory@example.com';
      rechainFrom(lines, 6);
    });
    await assertProblem(path, 8, 'checkpoint_mismatch');
  });

  test('changing the event of a record is a hash mismatch, re-hashed it is an unknown event', async () => {
    await assertProblem(
      tamperedCopy((lines) => {
        recordAt(lines, 2)['event'] = 'call.allowed';
      }),
      2,
      'hash_mismatch',
    );
    await assertProblem(
      tamperedCopy((lines) => {
        recordAt(lines, 10)['event'] = 'auth.ignored';
        rehash(recordAt(lines, 10));
      }),
      10,
      'unknown_event',
    );
  });
});

describe('deleting, inserting and reordering records', () => {
  test('deleting a record line is a gap at its seq', async () => {
    const path = tamperedCopy((lines) => lines.filter((line) => !isRecord(5)(line)));
    await assertProblem(path, 5, 'sequence_gap');
  });

  test('deleting the first records is a gap at seq 1', async () => {
    const path = tamperedCopy((lines) =>
      lines.filter((line) => !(line['type'] === 'record' && Number(line['seq']) <= 2)),
    );
    await assertProblem(path, 1, 'sequence_gap');
  });

  test('inserting a well-formed forged record shows as a seq used twice', async () => {
    const path = tamperedCopy((lines) => {
      const fifth = recordAt(lines, 5);
      const forged: Line = {
        ...recordAt(lines, 6),
        prevHash: fifth['hash'],
        user: 'mallory@example.com',
        event: 'call.allowed',
      };
      rehash(forged);
      lines.splice(lines.indexOf(fifth) + 1, 0, forged);
    });
    await assertProblem(path, 6, 'inserted');
  });

  test('a record smuggled in under another stream name is reported in that stream', async () => {
    const path = tamperedCopy((lines) => {
      const copy: Line = { ...recordAt(lines, 5), stream: 'gw-2' };
      rehash(copy);
      lines.splice(lines.indexOf(recordAt(lines, 5)) + 1, 0, copy);
    });
    const report = await verifyFile(path);
    assert.equal(report.ok, false);
    assert.equal(report.streams[0]?.ok, true, 'gw-1 itself is intact');
    assert.deepEqual(
      { stream: report.streams[1]?.stream, seq: report.streams[1]?.problem?.seq },
      { stream: 'gw-2', seq: 1 },
    );
    assert.equal(report.streams[1]?.problem?.kind, 'sequence_gap');
  });

  test('swapping two record lines is a reordering at the first displaced seq', async () => {
    const path = tamperedCopy((lines) => {
      const a = lines.findIndex(isRecord(6));
      const b = lines.findIndex(isRecord(7));
      [lines[a], lines[b]] = [lines[b] as Line, lines[a] as Line];
    });
    await assertProblem(path, 6, 'reordered');
  });
});

describe('truncation', () => {
  test('cutting the tail back before the last checkpoint is truncation', async () => {
    const path = tamperedCopy((lines) =>
      lines.filter((line) => !(line['type'] === 'record' && Number(line['seq']) >= 8)),
    );
    await assertProblem(path, 8, 'truncated');
  });

  test('cutting the file short on disk (lines and all) is truncation', async () => {
    const path = join(dir, 'cut.jsonl');
    const lines = readFileSync(pristine, 'utf8').trimEnd().split('\n');
    writeFileSync(path, `${lines.slice(0, -4).join('\n')}\n`);
    await assertProblem(path, 7, 'truncated');
  });

  test('cutting the unsealed tail contradicts the head the header declares', async () => {
    const path = tamperedCopy((lines) => lines.filter((line) => !isRecord(10)(line)));
    await assertProblem(path, 10, 'truncated');
  });

  test('a line cut in the middle makes the export unreadable, never silently shorter', async () => {
    const path = join(dir, 'half-line.jsonl');
    const text = readFileSync(pristine, 'utf8');
    writeFileSync(path, text.slice(0, text.length - 40));
    await assert.rejects(
      verifyFile(path),
      (error: AuditError) => error.code === 'AUDIT_EXPORT_INVALID' && /line 13/.test(error.message),
    );
  });
});

describe('checkpoints', () => {
  test('a forged checkpoint signature is refused', async () => {
    const path = tamperedCopy((lines) => {
      const checkpoint = lines.find(isCheckpoint(8)) as Line;
      const signature = Buffer.from(String(checkpoint['signature']), 'base64url');
      signature[0] = (signature[0] ?? 0) ^ 0xff;
      checkpoint['signature'] = signature.toString('base64url');
    });
    await assertProblem(path, 8, 'bad_checkpoint_signature');
  });

  test('a checkpoint moved to another head is refused: the signature covers the seq', async () => {
    const path = tamperedCopy((lines) => {
      const checkpoint = lines.find(isCheckpoint(8)) as Line;
      checkpoint['seq'] = 7;
      checkpoint['headHash'] = recordAt(lines, 7)['hash'];
    });
    await assertProblem(path, 7, 'bad_checkpoint_signature');
  });

  test('a genuine checkpoint whose head hash is not the record at its seq is a mismatch', async () => {
    const signer = createCheckpointSigner(KEY);
    const path = tamperedCopy((lines) => {
      const index = lines.findIndex(isCheckpoint(8));
      lines[index] = {
        ...signer.signCheckpoint({
          stream: 'gw-1',
          seq: 8,
          headHash: String(recordAt(lines, 7)['hash']),
          time: '2026-01-15T09:00:00.250Z',
        }),
        type: 'checkpoint',
      };
    });
    await assertProblem(path, 8, 'checkpoint_mismatch');
  });

  test('re-signing a rewritten log with another key and swapping the header key is refused', async () => {
    const forger = createCheckpointSigner(ATTACKER_KEY);
    const path = tamperedCopy((lines) => {
      recordAt(lines, 2)['details'] = { reason: 'nothing happened' };
      rechainFrom(lines, 2);
      const header = lines[0] as Line;
      header['publicKey'] = ATTACKER_KEY.publicKeyPem;
      header['keyId'] = ATTACKER_KEY.keyId;
      for (const [index, line] of lines.entries()) {
        if (line['type'] !== 'checkpoint') continue;
        const seq = Number(line['seq']);
        lines[index] = {
          ...forger.signCheckpoint({
            stream: 'gw-1',
            seq,
            headHash: String(recordAt(lines, seq)['hash']),
            time: String(line['time']),
          }),
          type: 'checkpoint',
        };
      }
    });
    // With the genuine key, from a trusted place, the first forged checkpoint fails…
    await assertProblem(path, 4, 'bad_checkpoint_signature');
    // …while the key the file carries would accept it: never verify with the file's own key.
    assert.equal((await verifyFile(path, ATTACKER_KEY.publicKeyPem)).ok, true);
  });

  test('verifying an intact export with the wrong public key fails at the first checkpoint', async () => {
    await assertProblem(pristine, 4, 'bad_checkpoint_signature', ATTACKER_KEY.publicKeyPem);
  });
});

describe('an archived prefix (audit.pruned marker)', () => {
  /** A stream whose records 1–4 were archived: the marker in place of record 4, then 5–10. */
  async function archivedStream() {
    const built = await buildChain({ key: KEY, entries: sampleEntries().slice(0, 10) });
    const { repository } = built;
    const checkpoint = (await repository.checkpoints('gw-1')).find((c) => c.seq === 4);
    assert.ok(checkpoint);
    const marker = createPrunedMarker({
      checkpoint,
      time: '2026-02-01T00:00:00.000Z',
      prunedRecords: 4,
    });
    assert.equal(await repository.prune('gw-1', 4), 4);
    repository.putRecord(marker);
    return { ...built, marker, checkpoint };
  }

  async function verifyStore(repository: MemoryAuditRepository) {
    const snapshots = await snapshotStreams(repository);
    return verifyAuditLog({
      streams: repositoryVerifyInput(repository, snapshots),
      publicKeyPem: KEY.publicKeyPem,
    });
  }

  test('the rest of the stream still verifies, from the store and from its export', async () => {
    const { repository } = await archivedStream();
    const fromStore = await verifyStore(repository);
    assert.equal(fromStore.ok, true, fromStore.streams[0]?.problem?.detail);
    assert.equal(fromStore.streams[0]?.prunedThroughSeq, 4);
    assert.equal(fromStore.streams[0]?.firstSeq, 4);
    const path = join(dir, 'archived.jsonl');
    writeFileSync(path, await exportText(repository, KEY.publicKeyPem));
    assert.equal((await verifyFile(path)).ok, true);
  });

  test('a chain resumed after archiving continues to verify', async () => {
    const { repository, chain: before } = await archivedStream();
    await before.close();
    const after = createAuditChain({
      repository,
      stream: 'gw-1',
      signer: createCheckpointSigner(KEY),
    });
    const next = await after.record({ event: 'policy.loaded', time: '2026-02-01T00:00:01.000Z' });
    await after.close();
    assert.equal(next.seq, 11);
    assert.equal((await verifyStore(repository)).ok, true);
  });

  test('deleting a record after the marker is a gap', async () => {
    const { repository } = await archivedStream();
    repository.deleteRecord('gw-1', 5);
    assertFirstProblem(await verifyStore(repository), 5, 'sequence_gap');
  });

  test('a marker claiming a later head without a signature for it is refused', async () => {
    const { repository, marker } = await archivedStream();
    repository.deleteRecord('gw-1', 4);
    repository.deleteRecord('gw-1', 5);
    const sixth = (await repository.readStream('gw-1', 6, 1))[0] as AuditRecord;
    const forged = createPrunedMarker({
      checkpoint: {
        ...(marker.details?.['checkpoint'] as Omit<AuditCheckpoint, 'stream' | 'seq' | 'headHash'>),
        stream: 'gw-1',
        seq: 5,
        headHash: sixth.prevHash,
      },
      time: marker.time,
    });
    repository.putRecord(forged);
    assertFirstProblem(await verifyStore(repository), 5, 'bad_checkpoint_signature');
  });

  test('removing the marker leaves records 1–4 unaccounted for', async () => {
    const { repository } = await archivedStream();
    repository.deleteRecord('gw-1', 4);
    assertFirstProblem(await verifyStore(repository), 1, 'sequence_gap');
  });
});

describe('tampering with the store itself', () => {
  test('an UPDATE of a stored record is found by verifying the store', async () => {
    const { repository } = await buildChain({ key: KEY, entries: sampleEntries().slice(0, 10) });
    repository.tamperRecord('gw-1', 7, (record) => ({ ...record, tool: 'nothing_to_see' }));
    const snapshots = await snapshotStreams(repository);
    const report = await verifyAuditLog({
      streams: repositoryVerifyInput(repository, snapshots, { pageSize: 3 }),
      publicKeyPem: KEY.publicKeyPem,
    });
    assertFirstProblem(report, 7, 'hash_mismatch');
  });

  test('deleting the newest records from the store is truncation before the last checkpoint', async () => {
    const { repository } = await buildChain({ key: KEY, entries: sampleEntries().slice(0, 10) });
    for (const seq of [8, 9, 10]) repository.deleteRecord('gw-1', seq);
    const snapshots = await snapshotStreams(repository);
    const report = await verifyAuditLog({
      streams: repositoryVerifyInput(repository, snapshots),
      publicKeyPem: KEY.publicKeyPem,
    });
    assertFirstProblem(report, 8, 'truncated');
  });
});
