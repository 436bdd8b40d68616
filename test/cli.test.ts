/**
 * The `warden` command as a user runs it: `warden serve --config FILE` and `warden demo`,
 * from the built package (npm test builds first), stopped with a signal like a real process.
 * Clients authenticate as a user would: with a token from `warden token issue`, or one of the
 * tokens `warden demo` prints.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const DEMO_SERVER = fileURLToPath(
  new URL('../dist/demo/business-server-stdio.js', import.meta.url),
);

function runCli(
  args: string[],
  cwd: string,
): ChildProcessWithoutNullStreams & { output: () => string } {
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: 'pipe' });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return Object.assign(child, { output: () => output });
}

async function waitForOutput(
  child: ReturnType<typeof runCli>,
  pattern: RegExp,
  timeoutMs = 20_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(child.output());
    if (match) return match;
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${pattern} in output:\n${child.output()}`);
}

async function exitCode(
  child: ReturnType<typeof runCli>,
  timeoutMs = 15_000,
): Promise<number | null> {
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

/** A compact JWS, as `warden token issue` and `warden demo` print them. */
const JWT = /\b(eyJ[\w-]*\.[\w-]+\.[\w-]+)/;

/** Runs `warden token issue` to completion and returns the token it printed on stdout. */
async function issueToken(config: string, agent: string, cwd: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [CLI, 'token', 'issue', '--config', config, '--agent', agent],
    { cwd, timeout: 15_000 },
  );
  const token = stdout.trim();
  assert.match(token, new RegExp(`^${JWT.source}$`), 'stdout is the token alone');
  return token;
}

async function listTools(url: string, token: string): Promise<string[]> {
  const client = new Client({ name: 'cli-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  try {
    return (await client.listTools()).tools.map((tool) => tool.name).sort();
  } finally {
    await client.close();
  }
}

test('npx warden runs the built bin from the repository', { timeout: 60_000 }, async () => {
  const repo = fileURLToPath(new URL('..', import.meta.url));
  // A private npm cache: what a fresh machine sees, and no interference from other npx runs.
  const cache = mkdtempSync(join(tmpdir(), 'warden-npx-cache-'));
  const child = spawn('npx', ['--offline', 'warden', '--version'], {
    cwd: repo,
    stdio: 'pipe',
    env: { ...process.env, npm_config_cache: cache },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, output);
  assert.match(output, /^\d+\.\d+\.\d+/m);
});

test(
  'warden serve runs a YAML config and stops cleanly on SIGTERM',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
    const config = join(dir, 'warden.yaml');
    writeFileSync(
      config,
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'store: sqlite:./.warden/warden.db',
        'auth: { resource: https://warden.cli.test/mcp, issuers: [{ builtin: {} }] }',
        'agents: { crm-bot: { roles: [sales] } }',
        'roles: { sales: { grants: [{ tool: crm.search_customers }, { tool: crm.update_record }] } }',
        'upstreams:',
        `  crm: { command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(DEMO_SERVER)}, --domain, crm] }`,
        '',
      ].join('\n'),
    );
    const child = runCli(['serve', '--config', config], dir);
    try {
      const [, url] = await waitForOutput(child, /"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      // Issued by a second process beside the running gateway: both share the keys in the store.
      const token = await issueToken(config, 'crm-bot', dir);
      assert.deepEqual(await listTools(`${url}/mcp/crm`, token), [
        'search_customers',
        'update_record',
      ]);
      const anonymous = await fetch(`${url}/mcp/crm`, { method: 'POST' });
      assert.equal(anonymous.status, 401, 'no token, no access');
      await anonymous.body?.cancel();
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200, 'health probes need no token');
      child.kill('SIGTERM');
      assert.equal(await exitCode(child), 0);
      assert.match(child.output(), /warden stopped/);
    } finally {
      child.kill('SIGKILL');
    }
  },
);

test(
  'warden serve refuses a config with an unknown key, naming the file and the key',
  { timeout: 30_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
    const config = join(dir, 'bad.yaml');
    writeFileSync(
      config,
      'listen: { host: 127.0.0.1, port: 0, tls_off: true }\nupstreams:\n  a: { url: http://127.0.0.1:1/mcp }\n',
    );
    const child = runCli(['serve', '--config', config], dir);
    assert.equal(await exitCode(child), 2);
    assert.match(child.output(), /bad\.yaml/);
    assert.match(child.output(), /listen: unknown key "tls_off"/);
  },
);

test(
  'warden demo serves the business tools with no config and no other service',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
    const child = runCli(['demo', '--port', '0'], dir);
    try {
      const [, url] = await waitForOutput(child, /(http:\/\/127\.0\.0\.1:\d+)\/mcp\/payments/);
      const [, token = ''] = await waitForOutput(child, JWT);
      // The first token is research-bot's: the read-only role sees no payment or update tool.
      assert.deepEqual(await listTools(`${url}/mcp/payments`, token), ['list_invoices']);
      assert.deepEqual(await listTools(`${url}/mcp/crm`, token), ['search_customers']);
      assert.deepEqual(await listTools(`${url}/mcp/research`, token), ['search_docs']);
      const anonymous = await fetch(`${url}/mcp/research`, { method: 'POST' });
      assert.equal(anonymous.status, 401, 'the demo has no anonymous access');
      await anonymous.body?.cancel();
      assert.ok(existsSync(join(dir, '.warden')), 'state lives under ./.warden');
      child.kill('SIGINT');
      assert.equal(await exitCode(child), 0);
    } finally {
      child.kill('SIGKILL');
    }
  },
);

test(
  "the demo's issue_payment goes through the whole approval loop from the CLI",
  { timeout: 90_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-demo-approval-'));
    const child = runCli(['demo', '--port', '0'], dir);
    try {
      const [, url] = await waitForOutput(child, /(http:\/\/127\.0\.0\.1:\d+)\/mcp\/payments/);
      const [, financeToken = ''] = await waitForOutput(
        child,
        new RegExp(`finance-bot[\\s\\S]*?token \\(1 h\\):\\s+${JWT.source}`),
      );
      const client = new Client({ name: 'finance-agent', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${url}/mcp/payments`), {
          requestInit: { headers: { authorization: `Bearer ${financeToken}` } },
        }),
      );
      try {
        const payment = {
          vendor: 'Acme Supplies GmbH',
          amount: 420.5,
          currency: 'EUR',
          memo: 'demo approval',
        };
        // Answered at once (approvals.delivery: auto, i.e. retry), so no client timeout applies:
        // held for approval; the same call made again once a person approved goes.
        const pay = () => client.callTool({ name: 'issue_payment', arguments: payment });
        const pending = (await pay()) as { isError?: boolean };
        assert.equal(pending.isError, true);
        assert.match(
          JSON.stringify(pending),
          /Held for approval .*Call again with the same arguments/,
        );
        const config = join(dir, '.warden', 'demo.yaml');
        const cli = (args: string[]) =>
          promisify(execFile)(process.execPath, [CLI, ...args, '--config', config], {
            cwd: dir,
            timeout: 20_000,
          });
        let id = '';
        for (let deadline = Date.now() + 15_000; id === '' && Date.now() < deadline;) {
          const { stdout } = await cli(['approvals', 'list', '--status', 'pending', '--json']);
          const listed = stdout
            .split('\n')
            .filter((line) => line.trim() !== '')
            .map((line) => JSON.parse(line) as { id: string; tool: string });
          id = listed.find((request) => request.tool === 'issue_payment')?.id ?? '';
          if (id === '') await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.notEqual(id, '', 'the payment is waiting for approval');
        const shown = await cli(['approvals', 'show', id]);
        assert.match(shown.stdout, /Acme Supplies GmbH/, 'the approver sees the full arguments');
        const approved = await cli(['approvals', 'approve', id, '--as', 'controller@example.com']);
        assert.match(approved.stdout, /granted|approved/i);
        const result = (await pay()) as { isError?: boolean; structuredContent?: unknown };
        assert.notEqual(result.isError, true, JSON.stringify(result));
        assert.match(JSON.stringify(result), /Acme Supplies GmbH/);
      } finally {
        await client.close();
      }
      child.kill('SIGINT');
      assert.equal(await exitCode(child), 0);
    } finally {
      child.kill('SIGKILL');
    }
  },
);
