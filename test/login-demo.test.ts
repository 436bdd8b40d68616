// `warden demo` lets a person log in through a stock MCP app: the demo prints alice's password,
// the SDK client registers and sends her through the login and consent pages (real Chromium),
// and she calls a research tool, as alice, through the demo's login agent.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import {
  launchChromium,
  logInWithPassword,
  MemoryOAuthProvider,
  startRedirectCatcher,
  waitForCallback,
  type RedirectCatcher,
} from './support/login-browser.js';

// The built CLI, as a person runs it (the demo's bundled MCP server is a built .js file).
const CLI = resolve('dist/cli/main.js');

let dir: string;
let child: ChildProcessWithoutNullStreams;
let output = '';
let browser: Browser;
let catcher: RedirectCatcher;

async function waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(output);
    if (match) return match;
    if (child.exitCode !== null) break;
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error(`no ${pattern} in the demo's output:\n${output}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-login-demo-'));
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  child = spawn(process.execPath, [CLI, 'demo', '--port', '0'], {
    cwd: dir,
    stdio: 'pipe',
  });
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  browser = await launchChromium();
  catcher = await startRedirectCatcher();
});

after(async () => {
  await browser?.close();
  await catcher?.close();
  if (child && child.exitCode === null) {
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
});

test(
  'a stock SDK client logs alice in at warden demo and calls a tool as her',
  { timeout: 120_000 },
  async () => {
    const [, url = ''] = await waitForOutput(/(http:\/\/127\.0\.0\.1:\d+)\/mcp\/research/);
    const [, user = '', password = ''] = await waitForOutput(/user: (\S+)\s+password: (\S+)/);
    assert.equal(user, 'alice');

    const endpoint = new URL(`${url}/mcp/research`);
    const provider = new MemoryOAuthProvider(catcher.url, { clientName: 'Demo App' });
    const client = new Client({ name: 'demo-app', version: '1.0.0' });
    await assert.rejects(
      client.connect(new StreamableHTTPClientTransport(endpoint, { authProvider: provider })),
      UnauthorizedError,
    );
    assert.ok(provider.authorizationUrl);
    const page = await browser.newPage();
    let code: string | null;
    try {
      await page.goto(provider.authorizationUrl.href);
      await logInWithPassword(page, user, password);
      assert.match((await page.textContent('main')) ?? '', /research/);
      await page.click('#allow');
      code = (await waitForCallback(catcher)).get('code');
    } finally {
      await page.close();
    }
    assert.ok(code);
    const exchange = new StreamableHTTPClientTransport(endpoint, { authProvider: provider });
    await exchange.finishAuth(code);
    assert.equal(decodeJwt(provider.saved?.access_token ?? '').sub, 'alice');

    const connected = new Client({ name: 'demo-app', version: '1.0.0' });
    await connected.connect(
      new StreamableHTTPClientTransport(endpoint, { authProvider: provider }),
    );
    try {
      const tools = await connected.listTools();
      assert.deepEqual(
        tools.tools.map((tool) => tool.name),
        ['search_docs'],
      );
      const result = await connected.callTool({
        name: 'search_docs',
        arguments: { query: 'refund' },
      });
      assert.notEqual(result.isError, true, JSON.stringify(result));
    } finally {
      await connected.close();
    }
  },
);
