// Golden fixture: a small chain whose hashes and signatures are pinned in
// test/fixtures/audit/golden-chain.jsonl. Any change to canonicalisation, to what a record
// hashes over, or to the checkpoint payload changes these bytes, and would make every log
// written before the change fail verification: this test catches it first.
// Regenerate (only for a deliberate, versioned format change): WARDEN_UPDATE_GOLDEN=1.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createCheckpointSigner, verifyCheckpoint } from '../src/audit/checkpoint.js';
import { readAuditExport } from '../src/audit/export.js';
import { GENESIS_HASH, hashRecord } from '../src/audit/record-hash.js';
import { verifyAuditLog } from '../src/audit/verify.js';
import type { AuditCheckpoint, AuditRecord } from '../src/domain/audit-record.js';
import { auditKeyFromSeed, buildChain, exportText } from './fixtures/audit/build-chain.js';

const GOLDEN = fileURLToPath(new URL('./fixtures/audit/golden-chain.jsonl', import.meta.url));
const KEY = auditKeyFromSeed('warden golden audit key');
/** The head of the golden chain, pinned here too so a diff of this file shows a format change. */
const GOLDEN_HEAD_HASH = 'eec323ca69230fabd848c637047643d234dce21611085dc3944e43ee57470b35';
const GOLDEN_KEY_ID = 'wtP2HpldMFQe81us';

function goldenLines(): Record<string, unknown>[] {
  return readFileSync(GOLDEN, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function withoutType<T>(line: Record<string, unknown>): T {
  const rest = { ...line };
  delete rest['type'];
  return rest as T;
}

test('the chain and its export reproduce the golden file byte for byte', async () => {
  const { repository } = await buildChain({ key: KEY });
  const text = await exportText(repository, KEY.publicKeyPem);
  if (process.env['WARDEN_UPDATE_GOLDEN'] === '1') writeFileSync(GOLDEN, text);
  assert.equal(text, readFileSync(GOLDEN, 'utf8'));
});

test('every pinned record hash is recomputed from the canonical form, and links', () => {
  const records = goldenLines()
    .filter((line) => line['type'] === 'record')
    .map((line) => withoutType<AuditRecord>(line));
  assert.equal(records.length, 12);
  let prevHash = GENESIS_HASH;
  for (const [index, record] of records.entries()) {
    assert.equal(record.seq, index + 1);
    assert.equal(record.prevHash, prevHash, `record ${record.seq} links to its predecessor`);
    assert.equal(hashRecord(record), record.hash, `record ${record.seq} hash`);
    prevHash = record.hash;
  }
  assert.equal(prevHash, GOLDEN_HEAD_HASH);
});

test('every pinned checkpoint signature verifies and is reproduced by signing again', () => {
  const checkpoints = goldenLines()
    .filter((line) => line['type'] === 'checkpoint')
    .map((line) => withoutType<AuditCheckpoint>(line));
  assert.deepEqual(
    checkpoints.map((checkpoint) => checkpoint.seq),
    [4, 8, 12],
  );
  const signer = createCheckpointSigner(KEY);
  for (const checkpoint of checkpoints) {
    assert.equal(checkpoint.keyId, GOLDEN_KEY_ID);
    assert.ok(verifyCheckpoint(checkpoint, KEY.publicKeyPem));
    // Ed25519 is deterministic: the same head signs to the same bytes.
    assert.deepEqual(signer.signCheckpoint(checkpoint), checkpoint);
  }
});

test('the golden export verifies offline with the public key alone', async () => {
  const file = await readAuditExport(GOLDEN);
  const report = await verifyAuditLog({ streams: file.streams, publicKeyPem: KEY.publicKeyPem });
  assert.equal(report.ok, true, JSON.stringify(report.streams));
  assert.equal(report.recordsChecked, 12);
  assert.equal(report.streams[0]?.lastCheckpointSeq, 12);
});
