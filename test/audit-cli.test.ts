// `warden audit verify --file EXPORT --public-key KEY.pem` as an operator runs it, offline:
// exit 0 when intact, 1 with the first bad seq when not, 2 for a usage mistake.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { auditKeyFromSeed, buildChain, exportText } from './fixtures/audit/build-chain.js';

const ENTRY = fileURLToPath(new URL('./fixtures/audit/cli-entry.ts', import.meta.url));
const KEY = auditKeyFromSeed('warden cli-test audit key');
const dir = mkdtempSync(join(tmpdir(), 'warden-audit-cli-'));
const exportPath = join(dir, 'audit.jsonl');
const keyPath = join(dir, 'audit.pub.pem');

before(async () => {
  const { repository } = await buildChain({ key: KEY });
  writeFileSync(exportPath, await exportText(repository, KEY.publicKeyPem));
  writeFileSync(keyPath, KEY.publicKeyPem);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function runAudit(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'audit', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('an intact export verifies: exit 0', async () => {
  const { code, stdout } = await runAudit([
    'verify',
    '--file',
    exportPath,
    '--public-key',
    keyPath,
  ]);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /audit log intact: 12 records in 1 stream/);
  assert.match(stdout, /last checkpoint at seq 12/);
});

test('a tampered export: exit 1, naming the first bad seq and what is wrong', async () => {
  const tampered = join(dir, 'tampered.jsonl');
  writeFileSync(
    tampered,
    readFileSync(exportPath, 'utf8').replace('"amount":1e+21', '"amount":1000'),
  );
  const { code, stdout } = await runAudit(['verify', '--file', tampered, '--public-key', keyPath]);
  assert.equal(code, 1, stdout);
  assert.match(stdout, /NOT INTACT at seq 3: hash_mismatch/);
  assert.match(stdout, /first bad seq 3 in stream gw-1/);
});

test('--json prints the whole report', async () => {
  const { code, stdout } = await runAudit([
    'verify',
    '--file',
    exportPath,
    '--public-key',
    keyPath,
    '--json',
  ]);
  assert.equal(code, 0);
  const report = JSON.parse(stdout) as { ok: boolean; keyId: string };
  assert.equal(report.ok, true);
  assert.equal(report.keyId, KEY.keyId);
});

test('usage mistakes exit 2: no public key, both sources, an unknown option', async () => {
  const noKey = await runAudit(['verify', '--file', exportPath]);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /needs --public-key/);
  const both = await runAudit(['verify', '--file', exportPath, '--config', 'warden.yaml']);
  assert.equal(both.code, 2);
  const unknown = await runAudit(['verify', '--frobnicate']);
  assert.equal(unknown.code, 2);
});

test('an unreadable export is not intact: exit 1 with the line at fault', async () => {
  const broken = join(dir, 'broken.jsonl');
  writeFileSync(broken, readFileSync(exportPath, 'utf8').slice(0, -30));
  const { code, stderr } = await runAudit(['verify', '--file', broken, '--public-key', keyPath]);
  assert.equal(code, 1);
  assert.match(stderr, /line 16: not valid JSON/);
});
