// An MCP app whose client_id is the https URL of its Client ID Metadata Document: Warden fetches
// the document (through the SSRF-safe fetch; this lab allows private addresses, and the gateway
// process trusts the test CA through NODE_EXTRA_CA_CERTS, which changes no production rule),
// shows its host on the consent page, holds the app to the document's redirect URIs, and the
// person calls a tool with the URL as the token's client_id.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { stringify as stringifyYaml } from 'yaml';
import { writeDevCertificates } from '../src/identity/dev-certificates.js';
import { hashPassword } from '../src/identity/login/builtin-users.js';
import { openAuditReader, type AuditReader } from './support/audit-reader.js';
import {
  launchChromium,
  logInWithPassword,
  MemoryOAuthProvider,
  startRedirectCatcher,
  waitForCallback,
  type RedirectCatcher,
} from './support/login-browser.js';
import { findFreePort, waitForPort } from './support/processes.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

const CLI = resolve('dist/cli/main.js');
const PASSWORD = 'correct horse battery staple';

let dir: string;
let child: ChildProcessWithoutNullStreams;
let output = '';
let upstream: ScriptedUpstream;
let documents: Server;
let documentRequests = 0;
let browser: Browser;
let catcher: RedirectCatcher;
let audit: AuditReader;
let gatewayUrl: string;
let clientId: string;
let storeUrl: string;

before(async () => {
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  dir = mkdtempSync(join(tmpdir(), 'warden-login-cimd-'));
  const certificates = await writeDevCertificates(join(dir, 'certs'), {
    hosts: ['127.0.0.1'],
    agents: [],
  });
  catcher = await startRedirectCatcher();
  documents = createServer(
    {
      cert: readFileSync(certificates.serverCert),
      key: readFileSync(certificates.serverKey),
    },
    (_request, response) => {
      documentRequests += 1;
      response.writeHead(200, {
        'content-type': 'application/json',
        'cache-control': 'max-age=60',
      });
      response.end(
        JSON.stringify({
          client_id: clientId,
          client_name: 'CIMD App',
          redirect_uris: [catcher.url],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      );
    },
  );
  documents.listen(0, '127.0.0.1');
  await once(documents, 'listening');
  clientId = `https://127.0.0.1:${(documents.address() as AddressInfo).port}/apps/cimd-app.json`;

  upstream = await startScriptedUpstream();
  const port = await findFreePort();
  gatewayUrl = `http://127.0.0.1:${port}`;
  storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  const config = {
    listen: { host: '127.0.0.1', port },
    store: storeUrl,
    log: { level: 'warn' },
    audit: { hash_key_file: join(dir, 'audit-hash.key') },
    auth: {
      resource: `${gatewayUrl}/mcp`,
      issuers: [{ builtin: {} }],
      login: {
        agent: 'desktop-apps',
        users: { alice: { password_hash: await hashPassword(PASSWORD), roles: ['clerk'] } },
        // A lab: the metadata document is served on this machine.
        client_metadata_documents: { allow_private_addresses: true },
      },
    },
    agents: { 'desktop-apps': { roles: ['clerk'] } },
    roles: { clerk: { grants: [{ tool: 'fixture.echo' }] } },
    upstreams: { fixture: { url: upstream.url } },
  };
  const configFile = join(dir, 'warden.yaml');
  writeFileSync(configFile, stringifyYaml(config));
  child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
    cwd: dir,
    stdio: 'pipe',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certificates.caCert },
  });
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  await waitForPort(port, 30_000).catch((error: unknown) => {
    throw new Error(`the gateway did not start: ${String(error)}\n${output}`);
  });
  browser = await launchChromium();
  audit = await openAuditReader(storeUrl);
});

after(async () => {
  await browser?.close();
  await catcher?.close();
  await audit?.close();
  if (child && child.exitCode === null) {
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  documents?.close();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

test(
  'an SDK client with a metadata document URL logs a person in and calls a tool',
  { timeout: 90_000 },
  async () => {
    const endpoint = new URL(`${gatewayUrl}/mcp/fixture`);
    const provider = new MemoryOAuthProvider(catcher.url, { clientMetadataUrl: clientId });
    const client = new Client({ name: 'cimd-app', version: '1.0.0' });
    await assert.rejects(
      client.connect(new StreamableHTTPClientTransport(endpoint, { authProvider: provider })),
      UnauthorizedError,
    );
    assert.equal(
      provider.authorizationUrl?.searchParams.get('client_id'),
      clientId,
      'no registration: the URL is the id',
    );
    const page = await browser.newPage();
    let code: string | null;
    try {
      await page.goto(provider.authorizationUrl?.href ?? '');
      await logInWithPassword(page, 'alice', PASSWORD);
      const consent = (await page.textContent('main')) ?? '';
      assert.match(consent, /CIMD App/);
      assert.match(
        consent,
        new RegExp(`Published by\\s*127\\.0\\.0\\.1:${new URL(clientId).port}`),
      );
      await page.click('#allow');
      code = (await waitForCallback(catcher)).get('code');
    } finally {
      await page.close();
    }
    assert.ok(code);
    assert.ok(documentRequests >= 1, 'Warden fetched the document');
    await new StreamableHTTPClientTransport(endpoint, { authProvider: provider }).finishAuth(code);
    const claims = decodeJwt(provider.saved?.access_token ?? '');
    assert.equal(claims.sub, 'alice');
    assert.equal(claims['client_id'], clientId);

    const connected = new Client({ name: 'cimd-app', version: '1.0.0' });
    await connected.connect(
      new StreamableHTTPClientTransport(endpoint, { authProvider: provider }),
    );
    try {
      const echoed = await connected.callTool({ name: 'echo', arguments: { text: 'hi' } });
      assert.notEqual(echoed.isError, true, JSON.stringify(echoed));
    } finally {
      await connected.close();
    }
    const allowed = await audit.withEvent('call.allowed');
    assert.ok(allowed.some((record) => record.user === 'alice' && record.agent === 'desktop-apps'));
  },
);

test("holds a metadata-document client to the document's redirect URIs", async () => {
  const url = new URL(`${gatewayUrl}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: 'https://attacker.example/callback',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  }).toString();
  const response = await fetch(url, { redirect: 'manual' });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get('location'), null);
});
