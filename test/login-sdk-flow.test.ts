// An unmodified MCP SDK client logs a person in at Warden's built-in authorization server:
// it discovers the server from the gateway's 401, registers itself (RFC 7591), sends the person
// through the login and consent pages (real Chromium), redeems the code with PKCE, and calls a
// tool as that person. Policy judges the roles both the person and the login agent hold; the
// audit log names the person, the app and the agent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { hashPassword } from '../src/identity/login/builtin-users.js';
import { createAuditedSetup, openAuditReader, type AuditReader } from './support/audit-reader.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  launchChromium,
  logInWithPassword,
  MemoryOAuthProvider,
  startRedirectCatcher,
  waitForCallback,
  type RedirectCatcher,
} from './support/login-browser.js';
import { findFreePort } from './support/processes.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

const PASSWORD = 'correct horse battery staple';
const setup = createAuditedSetup('login-sdk');
let upstream: ScriptedUpstream;
let gateway: TestGateway;
let browser: Browser;
let catcher: RedirectCatcher;
let audit: AuditReader;
let resource: string;

before(async () => {
  const port = await findFreePort();
  resource = `http://127.0.0.1:${port}/mcp`;
  upstream = await startScriptedUpstream();
  upstream.tools = ['echo', 'wipe'];
  const passwordHash = await hashPassword(PASSWORD);
  gateway = await startTestGateway({
    ...setup.config,
    log: { level: 'silent' },
    listen: { host: '127.0.0.1', port },
    auth: {
      resource,
      issuers: [{ builtin: {} }],
      login: {
        agent: 'desktop-apps',
        users: {
          alice: { password_hash: passwordHash, roles: ['clerk', 'wiper'], name: 'Alice' },
        },
      },
    },
    // The app may act as a clerk only: alice's wiper role does not pass through it.
    agents: { 'desktop-apps': { roles: ['clerk'] } },
    roles: {
      clerk: { grants: [{ tool: 'fixture.echo' }] },
      wiper: { grants: [{ tool: 'fixture.wipe' }] },
    },
    upstreams: { fixture: { url: upstream.url } },
  });
  browser = await launchChromium();
  catcher = await startRedirectCatcher();
  audit = await openAuditReader(setup.storeUrl);
});

after(async () => {
  await browser?.close();
  await catcher?.close();
  await gateway?.close();
  await audit?.close();
  await upstream?.close();
  setup.cleanUp();
});

test('the authorization server metadata lists the login endpoints and what they require', async () => {
  const response = await fetch(`${gateway.url}/.well-known/oauth-authorization-server`);
  assert.equal(response.status, 200);
  const metadata = (await response.json()) as Record<string, unknown>;
  assert.equal(metadata['authorization_endpoint'], `${gateway.url}/oauth/authorize`);
  assert.equal(metadata['registration_endpoint'], `${gateway.url}/oauth/register`);
  assert.deepEqual(metadata['code_challenge_methods_supported'], ['S256']);
  assert.deepEqual(metadata['response_types_supported'], ['code']);
  for (const grant of ['client_credentials', 'authorization_code', 'refresh_token'])
    assert.ok((metadata['grant_types_supported'] as string[]).includes(grant), grant);
  assert.equal(metadata['authorization_response_iss_parameter_supported'], true);
  assert.equal(metadata['client_id_metadata_document_supported'], true);
});

test('an SDK client registers, the person logs in and consents, and calls a tool as themselves', async () => {
  const endpoint = new URL(`${gateway.url}/mcp/fixture`);
  const provider = new MemoryOAuthProvider(catcher.url);
  const first = new StreamableHTTPClientTransport(endpoint, { authProvider: provider });
  const client = new Client({ name: 'login-test', version: '1.0.0' });
  await assert.rejects(client.connect(first), UnauthorizedError);
  assert.ok(provider.authorizationUrl, 'the SDK was sent to the authorization endpoint');
  assert.equal(provider.authorizationUrl.searchParams.get('code_challenge_method'), 'S256');

  const page = await browser.newPage();
  try {
    await page.goto(provider.authorizationUrl.href);
    assert.match((await page.textContent('h1')) ?? '', /Log in/);
    await logInWithPassword(page, 'alice', PASSWORD);
    // The consent page names the app, the person and the roles the app will act with.
    const consent = (await page.textContent('main')) ?? '';
    assert.match(consent, /Test MCP App/);
    assert.match(consent, /alice/);
    assert.match(consent, /clerk/);
    assert.doesNotMatch(consent, /wiper/, 'a role the login agent lacks is not offered');
    await page.click('#allow');
    const callback = await waitForCallback(catcher);
    assert.equal(callback.get('iss'), gateway.url, 'RFC 9207: the response names its issuer');
    const code = callback.get('code');
    assert.ok(code);
    await first.finishAuth(code);
  } finally {
    await page.close();
  }

  const tokens = provider.saved;
  assert.ok(tokens?.access_token && tokens.refresh_token);
  const claims = decodeJwt(tokens.access_token);
  assert.equal(claims.sub, 'alice');
  assert.equal(claims['warden_agent'], 'desktop-apps');
  assert.equal(claims['client_id'], provider.information?.client_id);
  assert.deepEqual(claims['act'], { sub: provider.information?.client_id });
  assert.deepEqual(claims['roles'], ['clerk']);

  const transport = new StreamableHTTPClientTransport(endpoint, { authProvider: provider });
  const connected = new Client({ name: 'login-test', version: '1.0.0' });
  await connected.connect(transport);
  try {
    const echoed = await connected.callTool({ name: 'echo', arguments: { text: 'hi' } });
    assert.notEqual(echoed.isError, true, JSON.stringify(echoed));
    const wiped = await connected
      .callTool({ name: 'wipe', arguments: {} })
      .catch((error: unknown) => error);
    assert.ok(
      wiped instanceof Error || (wiped as { isError?: boolean }).isError === true,
      'policy refuses what the person holds but the app may not act with',
    );
  } finally {
    await connected.close();
  }

  const issued = await audit.withEvent('token.issued');
  const record = issued.find((entry) => entry.user === 'alice');
  assert.ok(record, 'the token is recorded with its person');
  assert.equal(record.agent, 'desktop-apps');
  assert.equal((record.details as Record<string, unknown>)['app'], provider.information?.client_id);
  const allowed = await audit.withEvent('call.allowed');
  assert.ok(
    allowed.some((entry) => entry.user === 'alice' && entry.tool === 'echo'),
    'the call is recorded as the person',
  );
});
