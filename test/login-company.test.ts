// Login delegated to the company's OpenID Provider (a real oidc-provider): the login page offers
// "Log in with <company>", the browser goes there and back, the person's groups become Warden
// roles, and the app's token names them by the configured claim. A callback replayed into
// another browser logs nobody in.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { createAuditedSetup } from './support/audit-reader.js';
import { startCompanyIdp, type CompanyIdp } from './support/company-idp.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  launchChromium,
  startRedirectCatcher,
  waitForCallback,
  type RedirectCatcher,
} from './support/login-browser.js';
import { findFreePort } from './support/processes.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { createHash, randomBytes } from 'node:crypto';

const SECRET_ENV = 'WARDEN_TEST_LOGIN_COMPANY_SECRET';
const setup = createAuditedSetup('login-company');
let idp: CompanyIdp;
let gateway: TestGateway;
let upstream: ScriptedUpstream;
let browser: Browser;
let catcher: RedirectCatcher;

before(async () => {
  process.env[SECRET_ENV] = 'company-client-secret-for-tests-only';
  const port = await findFreePort();
  idp = await startCompanyIdp({
    clientId: 'warden',
    clientSecret: process.env[SECRET_ENV],
    redirectUris: [`http://127.0.0.1:${port}/oauth/login/callback`],
    people: { 'emp-42': { email: 'bob@example.com', name: 'Bob', groups: ['finance', 'staff'] } },
  });
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    ...setup.config,
    log: { level: 'silent' },
    listen: { host: '127.0.0.1', port },
    auth: {
      resource: `http://127.0.0.1:${port}/mcp`,
      issuers: [{ builtin: {} }],
      login: {
        agent: 'desktop-apps',
        oidc: {
          issuer: idp.issuer,
          client_id: 'warden',
          client_secret_env: SECRET_ENV,
          scopes: ['openid', 'email', 'profile', 'groups'],
          roles_by_group: { finance: ['clerk'] },
        },
      },
    },
    agents: { 'desktop-apps': { roles: ['clerk'] } },
    roles: { clerk: { grants: [{ tool: 'fixture.echo' }] } },
    upstreams: { fixture: { url: upstream.url } },
  });
  browser = await launchChromium();
  catcher = await startRedirectCatcher();
});

after(async () => {
  await browser?.close();
  await catcher?.close();
  await gateway?.close();
  await idp?.close();
  await upstream?.close();
  setup.cleanUp();
  delete process.env[SECRET_ENV];
});

async function register(): Promise<string> {
  const response = await fetch(`${gateway.url}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'Company App', redirect_uris: [catcher.url] }),
  });
  return ((await response.json()) as { client_id: string }).client_id;
}

test('a person logs in through the company provider; groups become roles', async () => {
  const clientId = await register();
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${gateway.url}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: catcher.url,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  idp.answerNextLoginAs({ as: 'emp-42' });
  const context = await browser.newContext();
  const page = await context.newPage();
  let code: string;
  try {
    await page.goto(url.href);
    assert.equal(await page.locator('#password').count(), 0, 'no built-in users: no password form');
    const button = page.locator('button', { hasText: /Log in with/ });
    await button.click();
    await page.waitForSelector('#allow');
    const consent = (await page.textContent('main')) ?? '';
    assert.match(consent, /bob@example\.com/);
    assert.match(consent, /clerk/);
    await page.click('#allow');
    // The browser still has to follow the continue page to the app: close it only after.
    code = (await waitForCallback(catcher)).get('code') ?? '';
  } finally {
    await context.close();
  }
  const response = await fetch(`${gateway.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: catcher.url,
      code_verifier: verifier,
    }).toString(),
  });
  const body = (await response.json()) as { access_token?: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  const claims = decodeJwt(body.access_token ?? '');
  assert.equal(claims.sub, 'bob@example.com');
  assert.deepEqual(claims['roles'], ['clerk']);
});

test('a company callback with a state this server never issued is refused', async () => {
  const response = await fetch(`${gateway.url}/oauth/login/callback?state=made-up&code=x`, {
    redirect: 'manual',
  });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get('location'), null);
});
