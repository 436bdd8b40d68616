/**
 * The `warden` command at its edges (issue 12, point 5), from the built package: `demo` on a
 * port already taken ends cleanly and leaves `.warden/` as it was; the demo's client secrets
 * survive a restart; `serve --host --port --log-level` win over the file; `config validate`
 * reports every problem of every section at once.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const DEMO_SERVER = fileURLToPath(
  new URL('../dist/demo/business-server-stdio.js', import.meta.url),
);

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-cli-edges-'));
  dirs.push(dir);
  return dir;
}

type Running = ChildProcessWithoutNullStreams & { output: () => string };

function start(args: string[], cwd: string): Running {
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: 'pipe' });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return Object.assign(child, { output: () => output });
}

function run(args: string[], cwd: string): { status: number | null; out: string; err: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, out: result.stdout, err: result.stderr };
}

async function waitFor(child: Running, pattern: RegExp, timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(child.output());
    if (match) return [...match];
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${pattern} in output:\n${child.output()}`);
}

async function exited(child: Running, timeoutMs = 20_000): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`did not exit within ${timeoutMs} ms:\n${child.output()}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Listens on 127.0.0.1 on a free port, as another program would. */
async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, port: address.port };
}

/** `client secret:` of each agent, as the demo prints them. */
function printedSecrets(output: string): Map<string, string> {
  return new Map(
    [...output.matchAll(/^\s{2}(\S+-bot) \(roles[^\n]*\n\s+client secret: (\S+)$/gm)].map(
      ([, agent = '', secret = '']) => [agent, secret],
    ),
  );
}

function secretHashes(dir: string): Record<string, string> {
  const config = parseYaml(readFileSync(join(dir, '.warden', 'demo.yaml'), 'utf8')) as {
    agents: Record<string, { secret_hash: string }>;
  };
  return Object.fromEntries(
    Object.entries(config.agents).map(([id, agent]) => [id, agent.secret_hash]),
  );
}

test(
  'demo on a port in use: a clear message naming --port, no stack trace, .warden untouched',
  { timeout: 60_000 },
  async () => {
    const dir = tempDir();
    mkdirSync(join(dir, '.warden'));
    const previous = '# the running demo wrote this\nenvironment: demo\n';
    writeFileSync(join(dir, '.warden', 'demo.yaml'), previous);
    const { server, port } = await occupyPort();
    try {
      const child = start(['demo', '--port', String(port)], dir);
      const code = await exited(child);
      assert.notEqual(code, 0);
      assert.equal(code, 2);
      assert.match(child.output(), new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
      assert.match(child.output(), /--port/);
      assert.doesNotMatch(child.output(), /^\s+at /m, 'no stack trace');
      assert.equal(readFileSync(join(dir, '.warden', 'demo.yaml'), 'utf8'), previous);
      assert.ok(!existsSync(join(dir, '.warden', 'demo-secrets.json')));
    } finally {
      server.close();
    }
    const bad = start(['demo', '--port', 'eighty'], dir);
    assert.equal(await exited(bad), 2);
    assert.match(bad.output(), /--port must be a port number/);
  },
);

test(
  "the demo's client secrets stay the same across restarts, and still work",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    const runs: Map<string, string>[] = [];
    const hashes: Record<string, string>[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const child = start(['demo', '--port', '0'], dir);
      try {
        const [, url = ''] = await waitFor(child, /(http:\/\/127\.0\.0\.1:\d+)\/mcp\/payments/);
        await waitFor(child, /Press Ctrl\+C/);
        const secrets = printedSecrets(child.output());
        assert.deepEqual([...secrets.keys()], ['research-bot', 'ops-bot', 'finance-bot']);
        runs.push(secrets);
        hashes.push(secretHashes(dir));
        const basic = Buffer.from(`research-bot:${secrets.get('research-bot') ?? ''}`).toString(
          'base64',
        );
        const token = await fetch(`${url}/oauth/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${basic}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: 'grant_type=client_credentials',
        });
        assert.equal(token.status, 200, await token.clone().text());
        await token.body?.cancel();
        child.kill('SIGINT');
        assert.equal(await exited(child), 0);
      } finally {
        child.kill('SIGKILL');
      }
    }
    assert.deepEqual(runs[1], runs[0], 'the same secrets printed');
    assert.deepEqual(hashes[1], hashes[0], 'demo.yaml keeps the same hashes');
    const mode = (
      await import('node:fs').then((fs) => fs.statSync(join(dir, '.warden', 'demo-secrets.json')))
    ).mode;
    assert.equal(mode & 0o077, 0, 'the kept secrets are readable by their owner only');
  },
);

test('serve --host --port --log-level win over the config file', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const { server, port: taken } = await occupyPort();
  try {
    const config = join(dir, 'warden.yaml');
    writeFileSync(
      config,
      [
        // The file's own address is taken, and its log level would print nothing.
        `listen: { host: 127.0.0.1, port: ${taken} }`,
        'log: { level: silent }',
        'store: sqlite:./.warden/warden.db',
        'auth: { resource: https://warden.cli.test/mcp, issuers: [{ builtin: {} }] }',
        'agents: { crm-bot: { roles: [sales] } }',
        'roles: { sales: { grants: [{ tool: crm.search_customers }] } }',
        'upstreams:',
        `  crm: { command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(DEMO_SERVER)}, --domain, crm] }`,
        '',
      ].join('\n'),
    );
    const child = start(
      ['serve', '--config', config, '--host', 'localhost', '--port', '0', '--log-level', 'info'],
      dir,
    );
    try {
      const [, url = '', port = ''] = await waitFor(child, /"url":"(http:\/\/localhost:(\d+))"/);
      assert.notEqual(Number(port), taken);
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      child.kill('SIGTERM');
      assert.equal(await exited(child), 0);
    } finally {
      child.kill('SIGKILL');
    }
    for (const [flag, value] of [
      ['--port', '70000'],
      ['--log-level', 'loud'],
      ['--host', ''],
    ] as const) {
      const refused = run(['serve', '--config', config, flag, value], dir);
      assert.equal(refused.status, 2, `${flag} ${value}: ${refused.err}`);
      assert.match(refused.err, new RegExp(`^warden: ${flag} must`));
    }
  } finally {
    server.close();
  }
});

test('config validate reports every problem, in every section, at once', () => {
  const dir = tempDir();
  const broken = join(dir, 'broken.yaml');
  writeFileSync(
    broken,
    [
      'listen: { port: eighty }',
      'log: { level: loud }',
      'limits: { max_sessions: -1 }',
      'auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
      'agents: { bot: { roles: [reader] } }',
      'roles: { reader: { grants: [] } }',
      'upstreams: { docs: { url: "http://127.0.0.1:9/mcp" } }',
      'audit: { redact: all }',
      'approvals: { poll_interval: soon }',
      '',
    ].join('\n'),
  );
  const shape = run(['config', 'validate', '--config', broken], dir);
  assert.equal(shape.status, 2, shape.err);
  for (const key of [
    'listen.port',
    'log.level',
    'limits.max_sessions',
    'audit.redact',
    'approvals.poll_interval',
  ]) {
    assert.match(shape.err, new RegExp(`- ${key.replace('.', '\\.')}:`), key);
  }

  // Well-formed, but what it names outside itself is missing, and its policy does not compile.
  const names = join(dir, 'names.yaml');
  writeFileSync(join(dir, 'extra.cedar'), 'permit(principal, action, resource) when {');
  writeFileSync(
    names,
    [
      'listen: { tls: { cert: missing-cert.pem, key: missing-key.pem } }',
      'auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
      'agents: { bot: { roles: [reader] } }',
      'roles: { reader: { grants: [{ tool: docs.search }] } }',
      'upstreams:',
      '  docs: { url: "http://127.0.0.1:9/mcp", credential: { env: WARDEN_TEST_UNSET_TOKEN } }',
      'policy: { files: [extra.cedar] }',
      'approvals:',
      '  webhooks: [{ url: "https://hooks.example/a", secret_env: WARDEN_TEST_UNSET_HOOK }]',
      '',
    ].join('\n'),
  );
  const beyond = run(['config', 'validate', '--config', names], dir);
  assert.equal(beyond.status, 2, beyond.err);
  assert.match(beyond.err, /- listen\.tls\.cert: cannot read this file/);
  assert.match(beyond.err, /- upstreams\.docs\.credential\.env: .*WARDEN_TEST_UNSET_TOKEN/);
  assert.match(beyond.err, /- approvals\.webhooks\[0\]\.secret_env: .*WARDEN_TEST_UNSET_HOOK/);
  assert.match(beyond.err, /extra\.cedar/, 'the policy file that does not compile');
  assert.doesNotMatch(beyond.err, /^\s+at /m, 'no stack trace');

  const valid = join(dir, 'valid.yaml');
  writeFileSync(
    valid,
    [
      'auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
      'agents: { bot: { roles: [reader] } }',
      'roles: { reader: { grants: [{ tool: docs.search }] } }',
      'upstreams: { docs: { url: "http://127.0.0.1:9/mcp" } }',
      '',
    ].join('\n'),
  );
  const ok = run(['config', 'validate', '--config', valid], dir);
  assert.equal(ok.status, 0, ok.err);
  assert.match(ok.out, /valid\.yaml: ok \(1 upstream, 1 agent, 1 role, 0 approvers\)/);
});
