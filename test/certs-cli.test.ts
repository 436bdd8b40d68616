// `warden certs dev` as a user runs it: a commander program with registerCertsCommand, run in a
// fresh directory; the keys it writes must be private to their owner.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CERTS_MODULE = fileURLToPath(new URL('../src/cli/certs.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
// The script lives outside the repository, so it imports commander by its resolved location.
const COMMANDER = import.meta.resolve('commander');

let workDir: string;
let script: string;

before(() => {
  workDir = mkdtempSync(join(tmpdir(), 'warden-certs-cli-'));
  script = join(workDir, 'warden.mts');
  writeFileSync(
    script,
    [
      `import { Command } from ${JSON.stringify(COMMANDER)};`,
      `import { registerCertsCommand } from ${JSON.stringify(CERTS_MODULE)};`,
      `const program = new Command().name('warden');`,
      `registerCertsCommand(program);`,
      `await program.parseAsync(process.argv);`,
    ].join('\n'),
  );
});

after(() => {
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

function runWarden(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, ['--import', TSX, script, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

test('certs dev writes a CA, a server certificate and agent certificates', () => {
  const cwd = mkdtempSync(join(workDir, 'run-'));
  const { status, output } = runWarden(
    ['certs', 'dev', '--agent', 'billing-bot', '--agent', 'research-bot'],
    cwd,
  );
  assert.equal(status, 0, output);

  const dir = join(cwd, '.warden', 'certs');
  for (const name of ['ca', 'server', 'agents/billing-bot', 'agents/research-bot']) {
    assert.ok(existsSync(join(dir, `${name}.crt`)), `${name}.crt exists`);
    assert.equal(modeOf(join(dir, `${name}.key`)), 0o600, `${name}.key is mode 0600`);
  }
  const agent = new X509Certificate(readFileSync(join(dir, 'agents', 'billing-bot.crt')));
  assert.equal(agent.subjectAltName, 'URI:spiffe://warden.local/agent/billing-bot');
  assert.equal(agent.checkIssued(new X509Certificate(readFileSync(join(dir, 'ca.crt')))), true);

  assert.match(output, /listen:\n {2}tls:\n {4}cert: .*server\.crt\n {4}key: .*server\.key/);
  assert.match(output, /client_ca: .*ca\.crt/);
  assert.match(output, /mtls_identity: spiffe:\/\/warden\.local\/agent\/research-bot/);
});

test('certs dev --out and --host; a second run reuses the CA and tightens an old key file', () => {
  const cwd = mkdtempSync(join(workDir, 'run-'));
  const out = join(cwd, 'pki');
  const first = runWarden(['certs', 'dev', '--out', out, '--host', 'warden.test'], cwd);
  assert.equal(first.status, 0, first.output);
  const caBefore = readFileSync(join(out, 'ca.crt'), 'utf8');
  const server = new X509Certificate(readFileSync(join(out, 'server.crt')));
  assert.equal(server.subjectAltName, 'DNS:warden.test');

  writeFileSync(join(out, 'server.key'), 'stale', { mode: 0o644 });
  const second = runWarden(['certs', 'dev', '--out', out, '--agent', 'late-bot'], cwd);
  assert.equal(second.status, 0, second.output);
  assert.match(second.output, /existing CA reused/);
  assert.equal(readFileSync(join(out, 'ca.crt'), 'utf8'), caBefore);
  assert.equal(modeOf(join(out, 'server.key')), 0o600);
  assert.equal(modeOf(join(out, 'agents', 'late-bot.key')), 0o600);
});

test('certs dev refuses an agent id that would write outside the output directory', () => {
  const cwd = mkdtempSync(join(workDir, 'run-'));
  const { status, output } = runWarden(['certs', 'dev', '--agent', '../../evil'], cwd);
  assert.equal(status, 2, output);
  assert.match(output, /not a valid agent id/);
  assert.equal(existsSync(join(cwd, 'evil.key')), false);
  assert.equal(existsSync(join(cwd, '.warden')), false);
});
