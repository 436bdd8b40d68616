// Login delegated to the company's OpenID Provider: a real oidc-provider plays the company IdP,
// the test plays the browser through its login and consent, and `finish` turns the callback into
// a Warden person whose roles come from their groups. Then the attacks on the callback: another
// login's state, a replay, an ID token for another login, an injected code, a mix-up, the
// provider's refusal, missing or unverified claims, a wrong or missing secret, a provider down.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import type { BuiltinUserConfig, CompanyLoginConfig } from '../src/config/login-schema.js';
import {
  createCompanyLogin,
  type CompanyLogin,
  type CompanyLoginOptions,
  type PendingCompanyLogin,
} from '../src/identity/login/company-login.js';
import {
  CompanyLoginError,
  type CompanyLoginErrorCode,
} from '../src/identity/login/company-login-error.js';
import {
  followLogin,
  startCompanyIdp,
  type CompanyIdp,
  type LoginAnswer,
} from './support/company-idp.js';

const CALLBACK = 'https://warden.example.com/login/company/callback';
const CLIENT_ID = 'warden';
const CLIENT_SECRET = 'company-idp-client-secret-for-tests-only';
const SECRET_ENV = 'WARDEN_TEST_COMPANY_SECRET';
const ENV = { [SECRET_ENV]: CLIENT_SECRET };

const PEOPLE = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Doe',
    groups: ['finance', 'auditors', 'lunch-club'],
  },
  // Groups named like roles ("admin") but not mapped, and groups Warden does not know.
  mallory: {
    email: 'mallory@example.com',
    email_verified: true,
    groups: ['admin', 'payments-clerk', 'contractors'],
  },
  // The provider releases no email for this person.
  noemail: { name: 'No Email', groups: ['finance'] },
  unverified: { email: 'ceo@example.com', email_verified: false, groups: ['finance'] },
};

let idp: CompanyIdp;
let config: CompanyLoginConfig;

before(async () => {
  idp = await startCompanyIdp({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUris: [CALLBACK],
    people: PEOPLE,
  });
  config = {
    issuer: idp.issuer,
    clientId: CLIENT_ID,
    clientSecretEnv: SECRET_ENV,
    scopes: ['openid', 'email', 'profile', 'groups'],
    userClaim: 'email',
    groupsClaim: 'groups',
    rolesByGroup: new Map([
      ['finance', ['payments-clerk', 'reader']],
      ['auditors', ['reader', 'auditor']],
      ['platform-admins', ['admin']],
    ]),
  };
});

after(async () => {
  await idp?.close();
});

function companyLogin(
  overrides: Partial<CompanyLoginConfig> = {},
  options: CompanyLoginOptions = {},
): CompanyLogin {
  return createCompanyLogin({ ...config, ...overrides }, { env: ENV, ...options });
}

/** Begins a login and plays the browser at the provider; the callback it comes back with. */
async function logIn(
  login: CompanyLogin,
  answer: LoginAnswer,
): Promise<{ callbackUrl: URL; pending: PendingCompanyLogin; redirectTo: URL }> {
  const { redirectTo, pending } = await login.begin({ callbackUrl: CALLBACK });
  idp.answerNextLoginAs(answer);
  const callbackUrl = await followLogin(redirectTo, CALLBACK);
  // The caller keeps `pending` as JSON with the login interaction.
  return {
    callbackUrl,
    pending: JSON.parse(JSON.stringify(pending)),
    redirectTo: new URL(redirectTo),
  };
}

async function assertRefused(
  attempt: Promise<unknown>,
  code: CompanyLoginErrorCode,
  check?: (error: CompanyLoginError) => void,
): Promise<void> {
  await assert.rejects(attempt, (error: unknown) => {
    assert.ok(
      error instanceof CompanyLoginError,
      `expected a CompanyLoginError, got ${String(error)}`,
    );
    assert.equal(error.code, code, error.message);
    assert.ok(!error.message.includes(CLIENT_SECRET), 'the message never holds the client secret');
    check?.(error);
    return true;
  });
}

test('a person logs in at the company provider and becomes a Warden person with the roles of their groups', async () => {
  const login = companyLogin();
  assert.equal(login.label, new URL(idp.issuer).host);
  const { callbackUrl, pending, redirectTo } = await logIn(login, { as: 'alice' });

  const request = redirectTo.searchParams;
  assert.equal(request.get('response_type'), 'code');
  assert.equal(request.get('code_challenge_method'), 'S256');
  assert.equal(request.get('state'), pending.state);
  assert.equal(request.get('nonce'), pending.nonce);
  assert.equal(request.get('redirect_uri'), CALLBACK);
  assert.equal(request.get('scope'), 'openid email profile groups');
  assert.equal(request.get('code_verifier'), null, 'the verifier never leaves Warden');
  assert.equal(
    callbackUrl.searchParams.get('iss'),
    idp.issuer,
    'the provider names itself (RFC 9207)',
  );

  const person = await login.finish({ callbackUrl, pending });
  assert.deepEqual(
    { ...person, roles: [...person.roles].sort() },
    {
      id: 'alice@example.com',
      name: 'Alice Doe',
      email: 'alice@example.com',
      roles: ['auditor', 'payments-clerk', 'reader'],
      via: 'oidc',
    },
  );
});

test('unknown groups map to no roles, and a group named like a role gives nothing unless mapped', async () => {
  const login = companyLogin();
  const person = await login.finish(await logIn(login, { as: 'mallory' }));
  assert.equal(person.id, 'mallory@example.com');
  assert.deepEqual(
    person.roles,
    [],
    'groups "admin" and "payments-clerk" are not in roles_by_group',
  );
});

test('a built-in user of the same id lends a company login none of their roles', async () => {
  const builtin: BuiltinUserConfig = {
    id: 'mallory@example.com',
    passwordHash: 'scrypt$unused',
    roles: ['admin'],
    name: undefined,
    email: undefined,
  };
  const login = companyLogin({}, { users: new Map([[builtin.id, builtin]]) });
  const person = await login.finish(await logIn(login, { as: 'mallory' }));
  assert.equal(person.id, builtin.id);
  assert.deepEqual(person.roles, []);
});

test('the user claim is configurable: another claim names the person', async () => {
  const login = companyLogin({ userClaim: 'sub' });
  const person = await login.finish(await logIn(login, { as: 'alice' }));
  assert.equal(person.id, 'alice');
  assert.equal(person.email, 'alice@example.com');
});

test('refuses the callback of another login (state mismatch, CSRF)', async () => {
  const login = companyLogin();
  const victim = await login.begin({ callbackUrl: CALLBACK });
  const attacker = await logIn(login, { as: 'mallory' });
  await assertRefused(
    login.finish({ callbackUrl: attacker.callbackUrl, pending: victim.pending }),
    'LOGIN_STATE_MISMATCH',
  );
  const stateless = new URL(attacker.callbackUrl);
  stateless.searchParams.delete('state');
  await assertRefused(
    login.finish({ callbackUrl: stateless, pending: attacker.pending }),
    'LOGIN_STATE_MISMATCH',
  );
  const forgedError = new URL(
    `${CALLBACK}?error=access_denied&iss=${encodeURIComponent(idp.issuer)}`,
  );
  await assertRefused(
    login.finish({ callbackUrl: forgedError, pending: victim.pending }),
    'LOGIN_STATE_MISMATCH',
  );
});

test('refuses a replayed callback, here and at another replica', async () => {
  const login = companyLogin();
  const { callbackUrl, pending } = await logIn(login, { as: 'alice' });
  await login.finish({ callbackUrl, pending });
  await assertRefused(login.finish({ callbackUrl, pending }), 'LOGIN_CALLBACK_REPLAYED');
  // A replica that has not seen it: the provider refuses the spent code.
  await assertRefused(
    companyLogin().finish({ callbackUrl, pending }),
    'LOGIN_TOKEN_EXCHANGE_FAILED',
    (error) => assert.equal(error.providerError, 'invalid_grant'),
  );
});

test('refuses an ID token minted for another login (nonce mismatch)', async () => {
  const login = companyLogin();
  const other = await login.begin({ callbackUrl: CALLBACK });
  const { callbackUrl, pending } = await logIn(login, { as: 'alice' });
  await assertRefused(
    login.finish({ callbackUrl, pending: { ...pending, nonce: other.pending.nonce } }),
    'LOGIN_ID_TOKEN_INVALID',
    (error) => assert.equal(error.libraryCode, 'OAUTH_JWT_CLAIM_COMPARISON_FAILED'),
  );
});

test("refuses an attacker's authorization code injected into the victim's callback (PKCE)", async () => {
  const login = companyLogin();
  const victim = await login.begin({ callbackUrl: CALLBACK });
  const attacker = await logIn(login, { as: 'mallory' });
  const injected = new URL(attacker.callbackUrl);
  injected.searchParams.set('state', victim.pending.state);
  await assertRefused(
    login.finish({ callbackUrl: injected, pending: victim.pending }),
    'LOGIN_TOKEN_EXCHANGE_FAILED',
    (error) => assert.equal(error.providerError, 'invalid_grant'),
  );
});

test('refuses a callback naming another issuer, or none (mix-up, RFC 9207)', async () => {
  const evil = await startCompanyIdp({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUris: [CALLBACK],
    people: PEOPLE,
  });
  try {
    const login = companyLogin();
    const mixedUp = await logIn(login, { as: 'alice' });
    mixedUp.callbackUrl.searchParams.set('iss', evil.issuer);
    await assertRefused(login.finish(mixedUp), 'LOGIN_ISSUER_MISMATCH');

    const unnamed = await logIn(login, { as: 'alice' });
    unnamed.callbackUrl.searchParams.delete('iss');
    await assertRefused(login.finish(unnamed), 'LOGIN_ISSUER_MISMATCH');
  } finally {
    await evil.close();
  }
});

test("the provider's refusal (error=access_denied) is a typed error that repeats none of its text", async () => {
  const login = companyLogin();
  const description = '<script>alert(1)</script> ask it@example.com';
  const { callbackUrl, pending } = await logIn(login, { error: 'access_denied', description });
  assert.equal(callbackUrl.searchParams.get('error'), 'access_denied');
  await assertRefused(login.finish({ callbackUrl, pending }), 'LOGIN_PROVIDER_ERROR', (error) => {
    assert.equal(error.providerError, 'access_denied');
    assert.ok(!error.message.includes('<script>'));
  });
});

test('refuses an ID token the provider did not sign (a token response tampered with on the way)', async () => {
  const { privateKey } = await generateKeyPair('RS256');
  // A man in the middle re-signs the ID token with its own key, under the provider's key id,
  // adding a group that maps to admin.
  const tamper: CompanyLoginOptions['fetch'] = async (url, init) => {
    const response = await fetch(url, init);
    if (!url.endsWith('/token')) return response;
    const body = (await response.json()) as { id_token: string };
    const claims = { ...decodeJwt(body.id_token), groups: ['platform-admins'] };
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'company-rs256' })
      .sign(privateKey);
    return Response.json({ ...body, id_token: forged });
  };
  const login = companyLogin({}, { fetch: tamper });
  await assertRefused(
    login.finish(await logIn(login, { as: 'mallory' })),
    'LOGIN_ID_TOKEN_INVALID',
    (error) => assert.equal(error.libraryCode, 'OAUTH_INVALID_RESPONSE'),
  );
});

test('refuses a person the provider does not name in the user claim', async () => {
  const login = companyLogin();
  await assertRefused(
    login.finish(await logIn(login, { as: 'noemail' })),
    'LOGIN_CLAIM_MISSING',
    (error) => assert.match(error.message, /"email"/),
  );
  const unreleased = companyLogin({ userClaim: 'employee_id' });
  await assertRefused(
    unreleased.finish(await logIn(unreleased, { as: 'alice' })),
    'LOGIN_CLAIM_MISSING',
  );
});

test('refuses an email address the provider has not verified', async () => {
  const login = companyLogin();
  await assertRefused(
    login.finish(await logIn(login, { as: 'unverified' })),
    'LOGIN_EMAIL_UNVERIFIED',
  );
});

test("refuses an ID token already expired by Warden's clock", async () => {
  const login = companyLogin({}, { now: () => Date.now() + 3 * 3_600_000 });
  await assertRefused(
    login.finish(await logIn(login, { as: 'alice' })),
    'LOGIN_ID_TOKEN_INVALID',
    (error) => assert.equal(error.libraryCode, 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED'),
  );
});

test('a missing client secret is named before the person is sent to the provider', async () => {
  const login = companyLogin({}, { env: {} });
  await assertRefused(login.begin({ callbackUrl: CALLBACK }), 'LOGIN_SECRET_MISSING', (error) =>
    assert.match(error.message, new RegExp(SECRET_ENV)),
  );
});

test('a wrong client secret is refused by the provider and never repeated', async () => {
  const wrong = 'not-the-secret-the-provider-knows';
  const login = companyLogin({}, { env: { [SECRET_ENV]: wrong } });
  await assertRefused(
    login.finish(await logIn(login, { as: 'alice' })),
    'LOGIN_TOKEN_EXCHANGE_FAILED',
    (error) => {
      assert.equal(error.providerError, 'invalid_client');
      assert.ok(!error.message.includes(wrong));
    },
  );
});

test('a provider that is down is a typed error, and the next login discovers it again', async () => {
  const down = createServer();
  down.listen(0, '127.0.0.1');
  await once(down, 'listening');
  const downIssuer = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
  down.close();
  await once(down, 'close');
  await assertRefused(
    companyLogin({ issuer: downIssuer }).begin({ callbackUrl: CALLBACK }),
    'LOGIN_DISCOVERY_FAILED',
  );

  // The first discovery fails on the way; the failure is not cached.
  let requests = 0;
  const flaky: CompanyLoginOptions['fetch'] = async (url, init) => {
    requests += 1;
    if (requests === 1) return new Response('unavailable', { status: 503 });
    return fetch(url, init);
  };
  const login = companyLogin({}, { fetch: flaky });
  await assertRefused(login.begin({ callbackUrl: CALLBACK }), 'LOGIN_DISCOVERY_FAILED');
  const person = await login.finish(await logIn(login, { as: 'alice' }));
  assert.equal(person.id, 'alice@example.com');
  assert.ok(requests >= 3, 'discovery again, then the token and user info requests');
});

test('refuses a plain-http provider off loopback without contacting it', async () => {
  let requests = 0;
  const login = companyLogin(
    { issuer: 'http://login.example.com' },
    {
      fetch: (url, init) => {
        requests += 1;
        return fetch(url, init);
      },
    },
  );
  await assertRefused(login.begin({ callbackUrl: CALLBACK }), 'LOGIN_DISCOVERY_FAILED', (error) =>
    assert.match(error.message, /https/),
  );
  assert.equal(requests, 0);
});
