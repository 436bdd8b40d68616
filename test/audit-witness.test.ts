/**
 * Tamper evidence against whoever can write the database. A real gateway on a SQLite file store
 * records calls and publishes each checkpoint to a witness file outside the store. Then the
 * attacker, with write access to the database file (better-sqlite3, the store's own tables),
 * rewrites a record, recomputes the whole chain and re-signs every checkpoint:
 *
 * - with the key kept in the store, plain verify passes on the forged chain (the gap this
 *   closes), while verify against the witness names the first witnessed head that diverges;
 * - with the signing key outside the store, the store holds no private key, so the attacker must
 *   re-key: verify with the pinned public key fails, and so does verify against the witness.
 */
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  createCheckpointSigner,
  generateAuditKeyPair,
  PUBLISHED_ONLY,
} from '../src/audit/checkpoint.js';
import { hashRecord, GENESIS_HASH } from '../src/audit/record-hash.js';
import { verifyAuditStore, type StoreVerifyReport } from '../src/audit/verify-audit-store.js';
import type { WitnessProblemKind } from '../src/audit/witness-verify.js';
import type { AuditCheckpoint, AuditRecord } from '../src/domain/audit-record.js';
import { canonicalJson } from '../src/domain/canonical-json.js';
import type { AuditSigningKey } from '../src/store/types.js';
import { openStore } from '../src/store/open-store.js';
import { runAuditCli } from './support/run-audit-cli.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

const STREAM = 'gw-witness';
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};
const dir = mkdtempSync(join(tmpdir(), 'warden-audit-witness-'));
let upstream: ScriptedUpstream;

before(async () => {
  upstream = await startScriptedUpstream();
});

after(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  readonly database: string;
  readonly witness: string;
}

/** A gateway on a fresh SQLite file with a witness file: `calls` tool calls, then closed. */
async function recordCalls(
  name: string,
  calls: number,
  audit: Record<string, unknown> = {},
): Promise<Run> {
  const run = { database: join(dir, `${name}.db`), witness: join(dir, `${name}.witness.jsonl`) };
  const gateway = await startTestGateway({
    store: `sqlite:${run.database}`,
    log: { level: 'silent' },
    audit: { stream: STREAM, checkpoint_every: 2, witness: { file: run.witness }, ...audit },
    upstreams: { fixture: { url: upstream.url } },
  });
  try {
    const auth = await gateway.authHeaders({ user: 'ada@example.com' });
    const session = await rpc(gateway, auth, {
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      },
    });
    for (let call = 0; call < calls; call++) {
      await rpc(
        gateway,
        { ...auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
        {
          id: call + 2,
          method: 'tools/call',
          params: { name: 'echo', arguments: { text: `payment ${call}` } },
        },
      );
    }
  } finally {
    await gateway.close();
  }
  return run;
}

async function rpc(
  gateway: TestGateway,
  headers: Record<string, string>,
  body: Record<string, unknown>,
): Promise<string> {
  const response = await fetch(gateway.endpoint('fixture'), {
    method: 'POST',
    headers: { ...HEADERS, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', ...body }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  await response.text();
  return response.headers.get('mcp-session-id') ?? '';
}

async function verify(
  run: Run,
  options: { witness?: string; publicKeyPem?: string } = {},
): Promise<StoreVerifyReport> {
  const store = await openStore(`sqlite:${run.database}`);
  try {
    return await verifyAuditStore(store.audit, {
      ...(options.witness !== undefined && { witnessPath: options.witness }),
      ...(options.publicKeyPem !== undefined && { trustedPublicKeyPem: options.publicKeyPem }),
    });
  } finally {
    await store.close();
  }
}

interface KeyRow {
  key_id: string;
  private_key_pem: string;
  public_key_pem: string;
}

/**
 * The attack: edits the first call.allowed record, recomputes every hash after it and re-signs
 * every checkpoint with `key` (default: the private key the store holds), all in the database.
 * Returns the seq of the edited record.
 */
function rewriteChain(database: string, key?: AuditSigningKey): number {
  const db = new Database(database);
  try {
    const stored = db
      .prepare('SELECT key_id, private_key_pem, public_key_pem FROM audit_keys')
      .get() as KeyRow;
    const signingKey = key ?? {
      keyId: stored.key_id,
      privateKeyPem: stored.private_key_pem,
      publicKeyPem: stored.public_key_pem,
    };
    if (key) {
      db.prepare('DELETE FROM audit_keys').run();
      db.prepare(
        'INSERT INTO audit_keys (key_id, private_key_pem, public_key_pem, created_at) VALUES (?, ?, ?, ?)',
      ).run(key.keyId, key.privateKeyPem, key.publicKeyPem, Date.now());
    }
    const signer = createCheckpointSigner(signingKey);
    const rows = db
      .prepare('SELECT seq, record FROM audit_records WHERE stream = ? ORDER BY seq')
      .all(STREAM) as {
      seq: number;
      record: string;
    }[];
    const updateRecord = db.prepare(
      'UPDATE audit_records SET record = ?, prev_hash = ?, hash = ?, user_id = ? WHERE stream = ? AND seq = ?',
    );
    const hashes = new Map<number, string>();
    let edited = 0;
    let prevHash = GENESIS_HASH;
    for (const row of rows) {
      const record = JSON.parse(row.record) as AuditRecord & { user?: string };
      let forged: Omit<AuditRecord, 'hash'> = {
        ...record,
        prevHash,
        hash: undefined,
      } as unknown as AuditRecord;
      if (edited === 0 && record.event === 'call.allowed') {
        edited = record.seq;
        forged = { ...forged, user: 'mallory@example.com' };
      }
      const hash = hashRecord(forged);
      const full = { ...forged, hash } as AuditRecord;
      updateRecord.run(canonicalJson(full), prevHash, hash, full.user ?? null, STREAM, row.seq);
      hashes.set(row.seq, hash);
      prevHash = hash;
    }
    const checkpoints = db
      .prepare('SELECT seq, record FROM audit_checkpoints WHERE stream = ?')
      .all(STREAM) as {
      seq: number;
      record: string;
    }[];
    const updateCheckpoint = db.prepare(
      'UPDATE audit_checkpoints SET record = ? WHERE stream = ? AND seq = ?',
    );
    for (const row of checkpoints) {
      const checkpoint = JSON.parse(row.record) as AuditCheckpoint;
      const resigned = signer.signCheckpoint({
        stream: STREAM,
        seq: checkpoint.seq,
        headHash: hashes.get(checkpoint.seq) ?? '',
        time: checkpoint.time,
      });
      updateCheckpoint.run(canonicalJson(resigned), STREAM, row.seq);
    }
    assert.ok(edited > 0, 'a call.allowed record was rewritten');
    return edited;
  } finally {
    db.close();
  }
}

function witnessProblem(report: StoreVerifyReport): {
  kind: WitnessProblemKind | undefined;
  seq: number | undefined;
} {
  const problem = report.witness?.problems[0];
  return { kind: problem?.kind, seq: problem?.seq };
}

function witnessedSeqs(path: string): number[] {
  return readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => (JSON.parse(line) as { seq: number }).seq);
}

describe('the signing key kept in the store', () => {
  let run: Run;
  let editedSeq: number;

  before(async () => {
    run = await recordCalls('in-store', 4);
  });

  test('the untouched chain verifies against its witness', async () => {
    const report = await verify(run, { witness: run.witness });
    assert.equal(report.ok, true, JSON.stringify(report.witness?.problems));
    assert.ok((report.witness?.matched ?? 0) >= 3, 'several checkpoints were witnessed');
    assert.equal(report.witness?.matched, report.witness?.entries);
  });

  test('a rewritten and re-signed chain passes plain verify: the gap, documented', async () => {
    editedSeq = rewriteChain(run.database);
    const report = await verify(run);
    assert.equal(report.ok, true, 'the key in the store re-signs whatever its writer wants');
  });

  test('the same forgery fails against the witness, naming the first diverging head', async () => {
    const report = await verify(run, { witness: run.witness });
    assert.equal(report.ok, false);
    const firstDiverging = witnessedSeqs(run.witness)
      .filter((seq) => seq >= editedSeq)
      .sort((a, b) => a - b)[0];
    assert.deepEqual(witnessProblem(report), { kind: 'chain_diverges', seq: firstDiverging });
    assert.match(report.witness?.problems[0]?.detail ?? '', /diverges from the witness at seq/);
  });

  test('warden audit verify: exit 0 on the forgery without a witness, 1 with --witness', async () => {
    const config = join(dir, 'in-store.yaml');
    writeFileSync(
      config,
      [
        `store: "sqlite:${run.database}"`,
        'auth: { resource: "https://warden.example.com/mcp", issuers: [{ builtin: {} }] }',
        'agents: { report-bot: { roles: [analyst] } }',
        'roles: { analyst: { grants: [{ tool: fixture.report }] } }',
        'upstreams: { fixture: { url: "http://127.0.0.1:9/mcp" } }',
        `audit: { hash_key_file: "${join(dir, 'hash.key')}" }`,
        '',
      ].join('\n'),
    );
    const plain = await runAuditCli(['verify', '--config', config]);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stderr, /verifying with the key kept in the same store/);

    const witnessed = await runAuditCli(['verify', '--config', config, '--witness', run.witness]);
    assert.equal(witnessed.code, 1, witnessed.stdout + witnessed.stderr);
    assert.match(witnessed.stdout, /MISMATCH: chain_diverges: the chain of gw-witness diverges/);
    assert.match(witnessed.stdout, /audit log NOT intact/);
  });
});

describe('the signing key outside the store', () => {
  const key = generateAuditKeyPair();
  const keyFile = join(dir, 'audit-signing.pem');
  let run: Run;

  before(async () => {
    writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
    run = await recordCalls('key-file', 3, { signing_key: { file: keyFile } });
  });

  test('the store publishes the public key but holds no private key', () => {
    const db = new Database(run.database, { readonly: true });
    try {
      const rows = db
        .prepare('SELECT key_id, private_key_pem, public_key_pem FROM audit_keys')
        .all() as KeyRow[];
      assert.deepEqual(
        rows.map((row) => ({
          keyId: row.key_id,
          privateKeyPem: row.private_key_pem,
          publicKeyPem: row.public_key_pem,
        })),
        [{ keyId: key.keyId, privateKeyPem: PUBLISHED_ONLY, publicKeyPem: key.publicKeyPem }],
      );
    } finally {
      db.close();
    }
  });

  test('the chain verifies with the pinned key and against the witness', async () => {
    const report = await verify(run, { witness: run.witness, publicKeyPem: key.publicKeyPem });
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(report.keyId, key.keyId);
  });

  test('an attacker who re-keys the store passes plain verify, but not the pinned key nor the witness', async () => {
    rewriteChain(run.database, generateAuditKeyPair());
    assert.equal((await verify(run)).ok, true, 'the store now vouches for the attacker key');

    const pinned = await verify(run, { publicKeyPem: key.publicKeyPem });
    assert.equal(pinned.ok, false);
    assert.match(pinned.keyProblem ?? '', /not the pinned key/);
    assert.equal(
      pinned.streams.find((stream) => stream.stream === STREAM)?.problem?.kind,
      'bad_checkpoint_signature',
    );

    const witnessed = await verify(run, { witness: run.witness });
    assert.equal(witnessed.ok, false);
    assert.equal(
      witnessProblem(witnessed).kind,
      'bad_signature',
      'the witness was signed with the real key',
    );
  });
});

describe('a damaged witness or a short chain is reported', () => {
  let run: Run;

  before(async () => {
    run = await recordCalls('damaged', 4);
  });

  test('a witness line removed: the store holds a checkpoint the witness lacks', async () => {
    const lines = readFileSync(run.witness, 'utf8').trimEnd().split('\n');
    assert.ok(lines.length >= 3);
    const removed = JSON.parse(lines[1] ?? '') as { seq: number };
    const copy = join(dir, 'missing-line.jsonl');
    writeFileSync(copy, `${lines.filter((_, index) => index !== 1).join('\n')}\n`);
    const report = await verify(run, { witness: copy });
    assert.equal(report.ok, false);
    assert.deepEqual(witnessProblem(report), { kind: 'missing_in_witness', seq: removed.seq });
  });

  test('a witness truncated mid-line is reported', async () => {
    const text = readFileSync(run.witness, 'utf8');
    const copy = join(dir, 'truncated.jsonl');
    writeFileSync(copy, text.slice(0, text.length - 20));
    const report = await verify(run, { witness: copy });
    assert.equal(report.ok, false);
    assert.equal(witnessProblem(report).kind, 'malformed_line');
  });

  test('a missing witness file is an error, not a pass', async () => {
    await assert.rejects(verify(run, { witness: join(dir, 'no-such-witness.jsonl') }), {
      code: 'AUDIT_WITNESS_INVALID',
    });
  });

  test('a chain cut after a witnessed head is shorter than the witness', async () => {
    const seqs = witnessedSeqs(run.witness);
    const last = Math.max(...seqs);
    const keep = Math.min(...seqs);
    const db = new Database(run.database);
    try {
      db.prepare('DELETE FROM audit_records WHERE stream = ? AND seq > ?').run(STREAM, keep);
      db.prepare('DELETE FROM audit_checkpoints WHERE stream = ? AND seq > ?').run(STREAM, keep);
    } finally {
      db.close();
    }
    assert.equal((await verify(run)).ok, true, 'the cut chain is consistent on its own');
    const report = await verify(run, { witness: run.witness });
    assert.equal(report.ok, false);
    const next = seqs.filter((seq) => seq > keep).sort((a, b) => a - b)[0];
    assert.ok(next !== undefined && next <= last);
    assert.deepEqual(witnessProblem(report), { kind: 'chain_shorter', seq: next });
  });
});
