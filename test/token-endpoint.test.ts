/**
 * The built-in token endpoint, attacked over real HTTP on 127.0.0.1: only a registered agent that
 * proves itself (secret or signed assertion, once) gets a token, and only for this gateway.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import type { AgentConfig, AuthConfig, BuiltinIssuerConfig } from '../src/config/config.js';
import { createBuiltinIssuer, createBuiltinKeyring } from '../src/identity/builtin-issuer.js';
import {
  CLIENT_ASSERTION_TYPE,
  hashClientSecret,
  verifyClientSecret,
} from '../src/identity/client-authentication.js';
import {
  BUILTIN_ISSUER_PATHS,
  createJwksHandler,
  createTokenEndpoint,
  describeAuthorizationServer,
} from '../src/identity/token-endpoint.js';
import type { TokenEndpointEvent } from '../src/identity/token-endpoint.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { sendRaw } from './support/raw-http.js';

const ISSUER = 'https://warden.example.com';
const RESOURCE = 'https://warden.example.com/mcp';
// Characters that RFC 6749 §2.3.1 requires to be form-urlencoded inside the Basic header.
const SECRET = 'correct horse:battery+staple%é';
const BRUTE_FORCE_LIMIT = 5;

const AUTH: AuthConfig = {
  resource: RESOURCE,
  issuers: [],
  requiredScopes: ['mcp:tools'],
  maxTokenLifetimeMs: 3_600_000,
  clockSkewMs: 30_000,
  mtls: false,
};
const CONFIG: BuiltinIssuerConfig = {
  kind: 'builtin',
  issuer: ISSUER,
  tokenTtlMs: 900_000,
  maxTtlMs: 3_600_000,
  rotateEveryMs: 30 * 86_400_000,
  algorithm: 'ES256',
};

function agent(id: string, extra: Partial<AgentConfig> = {}): AgentConfig {
  return {
    id,
    roles: [],
    tenant: undefined,
    clientIds: [],
    secretHash: undefined,
    jwks: undefined,
    mtlsIdentity: undefined,
    ...extra,
  };
}

let store: Store;
let server: Server;
let baseUrl: string;
let tokenUrl: string;
let agentKey: CryptoKey;
let strangerKey: CryptoKey;
let keyring: ReturnType<typeof createBuiltinKeyring>;
let agentHash: string;
const clock = { offsetMs: 0 };
const now = () => Date.now() + clock.offsetMs;
const revokedAgents = new Set<string>();
const events: TokenEndpointEvent[] = [];

before(async () => {
  store = await openStore('sqlite::memory:');
  const secretHash = await hashClientSecret(SECRET);
  agentHash = secretHash;
  const agentPair = await generateKeyPair('ES256');
  agentKey = agentPair.privateKey;
  strangerKey = (await generateKeyPair('ES256')).privateKey;
  const agentJwk: JWK = { ...(await exportJWK(agentPair.publicKey)), kid: 'agent-key-1' };

  const agents = new Map(
    [
      agent('billing-bot', { secretHash }),
      agent('brute-target', { secretHash }),
      agent('revoked-bot', { secretHash }),
      agent('signing-bot', { jwks: { keys: [agentJwk as Record<string, unknown>] } }),
      agent('keyless-bot'),
    ].map((entry) => [entry.id, entry]),
  );
  keyring = createBuiltinKeyring({
    repository: store.signingKeys,
    config: CONFIG,
    auth: AUTH,
    now,
  });
  const issuer = createBuiltinIssuer({
    config: CONFIG,
    auth: AUTH,
    environment: 'staging',
    agents,
    keyring,
    now,
  });

  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tokenUrl = `${baseUrl}${BUILTIN_ISSUER_PATHS.token}`;
  const token = createTokenEndpoint({
    issuer,
    agents,
    tokenEndpointUrl: tokenUrl,
    revocations: { isAgentRevoked: (id) => revokedAgents.has(id) },
    now,
    failureLimit: { maxFailures: BRUTE_FORCE_LIMIT, windowMs: 60_000 },
    onEvent: (event) => events.push(event),
  });
  const jwks = createJwksHandler(keyring);
  server.on('request', (request, response) => {
    const path = new URL(request.url ?? '/', baseUrl).pathname;
    const handler = path === BUILTIN_ISSUER_PATHS.token ? token : jwks;
    void handler(request, response);
  });
});

after(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await store?.close();
});

beforeEach(() => {
  events.length = 0;
});

interface TokenReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

async function requestToken(
  form: Record<string, string | string[]>,
  headers: Record<string, string> = {},
): Promise<TokenReply> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form))
    for (const item of Array.isArray(value) ? value : [value]) body.append(name, item);
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** RFC 6749 §2.3.1: each part is form-urlencoded, then `id:secret` is base64ed. */
function basic(clientId: string, secret: string): Record<string, string> {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  const credentials = Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString('base64');
  return { authorization: `Basic ${credentials}` };
}

async function signAssertion(
  options: {
    key?: CryptoKey;
    audience?: string;
    issuer?: string;
    lifetimeSeconds?: number;
    issuedSecondsAgo?: number;
    jti?: string | null;
  } = {},
): Promise<string> {
  const iat = Math.floor(now() / 1000) - (options.issuedSecondsAgo ?? 0);
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'agent-key-1' })
    .setIssuer(options.issuer ?? 'signing-bot')
    .setSubject(options.issuer ?? 'signing-bot')
    .setAudience(options.audience ?? tokenUrl)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.lifetimeSeconds ?? 60));
  if (options.jti !== null) jwt.setJti(options.jti ?? crypto.randomUUID());
  return jwt.sign(options.key ?? agentKey);
}

function assertionForm(assertion: string): Record<string, string> {
  return {
    grant_type: 'client_credentials',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: assertion,
  };
}

function assertOAuthError(reply: TokenReply, status: number, error: string): void {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body['error'], error);
  assert.equal(reply.body['access_token'], undefined);
  assert.equal(reply.headers.get('cache-control'), 'no-store');
}

async function verifyIssued(reply: TokenReply) {
  const jwks = (await (await fetch(`${baseUrl}${BUILTIN_ISSUER_PATHS.jwks}`)).json()) as {
    keys: JWK[];
  };
  return jwtVerify(String(reply.body['access_token']), createLocalJWKSet(jwks), {
    issuer: ISSUER,
    audience: RESOURCE,
    typ: 'at+jwt',
    currentDate: new Date(now()),
  });
}

// ---------------------------------------------------------------------------------------------
// Clients that prove who they are

test('client_secret_basic with a form-urlencoded id and secret gets a token', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials' },
    basic('billing-bot', SECRET),
  );
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal(reply.headers.get('cache-control'), 'no-store');
  assert.equal(reply.body['token_type'], 'Bearer');
  assert.equal(reply.body['expires_in'], 900);
  assert.equal(reply.body['scope'], 'mcp:tools');
  const { payload } = await verifyIssued(reply);
  assert.equal(payload['client_id'], 'billing-bot');
  assert.equal(payload.sub, 'billing-bot');
  assert.equal(payload['warden_env'], 'staging');
  assert.deepEqual(
    events.map((event) => event.kind),
    ['token.issued'],
  );
});

test('client_secret_post gets a token with the scopes it asks for', async () => {
  const reply = await requestToken({
    grant_type: 'client_credentials',
    client_id: 'billing-bot',
    client_secret: SECRET,
    scope: 'mcp:tools payments:read',
    resource: RESOURCE,
  });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal(reply.body['scope'], 'mcp:tools payments:read');
  const { payload } = await verifyIssued(reply);
  assert.equal(payload['scope'], 'mcp:tools payments:read');
});

test('private_key_jwt with an assertion signed by a registered key gets a token', async () => {
  const reply = await requestToken(assertionForm(await signAssertion()));
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  const { payload } = await verifyIssued(reply);
  assert.equal(payload['client_id'], 'signing-bot');
});

test('private_key_jwt accepts the issuer identifier as the assertion audience', async () => {
  const reply = await requestToken(assertionForm(await signAssertion({ audience: ISSUER })));
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
});

// ---------------------------------------------------------------------------------------------
// Attacks on client authentication

test('refuses a wrong secret with 401 invalid_client and a Basic challenge', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials' },
    basic('billing-bot', 'guess'),
  );
  assertOAuthError(reply, 401, 'invalid_client');
  assert.match(reply.headers.get('www-authenticate') ?? '', /^Basic /);
  assert.deepEqual(events, [
    {
      kind: 'auth.failed',
      clientId: 'billing-bot',
      method: 'client_secret_basic',
      reason: 'wrong_secret',
    },
  ]);
});

test('refuses a wrong secret sent in the form', async () => {
  const reply = await requestToken({
    grant_type: 'client_credentials',
    client_id: 'billing-bot',
    client_secret: `${SECRET}x`,
  });
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses an unknown client', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials' },
    basic('ghost-bot', SECRET),
  );
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses a request with no client authentication', async () => {
  const reply = await requestToken({ grant_type: 'client_credentials', client_id: 'billing-bot' });
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses a secret for an agent registered with keys only', async () => {
  const reply = await requestToken({
    grant_type: 'client_credentials',
    client_id: 'signing-bot',
    client_secret: SECRET,
  });
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses two authentication methods in one request', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', client_id: 'billing-bot', client_secret: SECRET },
    basic('billing-bot', SECRET),
  );
  assertOAuthError(reply, 400, 'invalid_request');
});

test('refuses a replayed client assertion (same jti)', async () => {
  const assertion = await signAssertion({ jti: 'once-only' });
  assert.equal((await requestToken(assertionForm(assertion))).status, 200);
  const replay = await requestToken(assertionForm(assertion));
  assertOAuthError(replay, 401, 'invalid_client');
  assert.deepEqual(events.at(-1), {
    kind: 'auth.failed',
    clientId: 'signing-bot',
    method: 'private_key_jwt',
    reason: 'assertion_replayed',
  });
});

test('refuses an assertion signed by a key not in the agent jwks', async () => {
  const reply = await requestToken(assertionForm(await signAssertion({ key: strangerKey })));
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses an assertion with alg none', async () => {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const iat = Math.floor(now() / 1000);
  const unsigned = `${encode({ alg: 'none' })}.${encode({
    iss: 'signing-bot',
    sub: 'signing-bot',
    aud: tokenUrl,
    iat,
    exp: iat + 60,
    jti: 'unsigned',
  })}.`;
  const reply = await requestToken(assertionForm(unsigned));
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses an assertion MACed with HS256 (algorithm confusion)', async () => {
  const iat = Math.floor(now() / 1000);
  const forged = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid: 'agent-key-1' })
    .setIssuer('signing-bot')
    .setSubject('signing-bot')
    .setAudience(tokenUrl)
    .setJti('hmac')
    .setIssuedAt(iat)
    .setExpirationTime(iat + 60)
    .sign(new TextEncoder().encode('a shared secret of thirty-two bytes!'));
  assertOAuthError(await requestToken(assertionForm(forged)), 401, 'invalid_client');
});

test('refuses an expired assertion', async () => {
  const reply = await requestToken(
    assertionForm(await signAssertion({ issuedSecondsAgo: 600, lifetimeSeconds: 60 })),
  );
  assertOAuthError(reply, 401, 'invalid_client');
  assert.deepEqual(events.at(-1), {
    kind: 'auth.failed',
    clientId: 'signing-bot',
    method: 'private_key_jwt',
    reason: 'assertion_expired',
  });
});

test('refuses a long-lived assertion (exp more than 5 minutes ahead)', async () => {
  const reply = await requestToken(assertionForm(await signAssertion({ lifetimeSeconds: 3600 })));
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses an assertion for another audience', async () => {
  const reply = await requestToken(
    assertionForm(await signAssertion({ audience: 'https://other-as.example.com/token' })),
  );
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses an assertion without a jti (it could not be kept from replay)', async () => {
  const reply = await requestToken(assertionForm(await signAssertion({ jti: null })));
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses an assertion whose iss names another agent than the signer', async () => {
  const reply = await requestToken(assertionForm(await signAssertion({ issuer: 'billing-bot' })));
  assertOAuthError(reply, 401, 'invalid_client');
});

test('refuses an assertion of an unknown assertion type', async () => {
  const reply = await requestToken({
    ...assertionForm(await signAssertion()),
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
  });
  assertOAuthError(reply, 401, 'invalid_client');
});

test('rate-limits failed authentications per client so secrets cannot be brute-forced', async () => {
  for (let attempt = 0; attempt < BRUTE_FORCE_LIMIT; attempt += 1) {
    const reply = await requestToken(
      { grant_type: 'client_credentials' },
      basic('brute-target', `guess-${attempt}`),
    );
    assertOAuthError(reply, 401, 'invalid_client');
  }
  // Locked out: even the right secret is refused now, without being checked.
  const locked = await requestToken(
    { grant_type: 'client_credentials' },
    basic('brute-target', SECRET),
  );
  assertOAuthError(locked, 429, 'temporarily_unavailable');
  assert.ok(Number(locked.headers.get('retry-after')) > 0);
  // Other clients are not affected.
  const other = await requestToken(
    { grant_type: 'client_credentials' },
    basic('billing-bot', SECRET),
  );
  assert.equal(other.status, 200);

  clock.offsetMs += 61_000;
  try {
    const later = await requestToken(
      { grant_type: 'client_credentials' },
      basic('brute-target', SECRET),
    );
    assert.equal(later.status, 200, JSON.stringify(later.body));
  } finally {
    clock.offsetMs -= 61_000;
  }
});

test('parallel guesses cannot all start before the first one fails', async () => {
  const replies = await Promise.all(
    Array.from({ length: BRUTE_FORCE_LIMIT * 3 }, (_, attempt) =>
      requestToken({
        grant_type: 'client_credentials',
        client_id: 'revoked-bot',
        client_secret: `g${attempt}`,
      }),
    ),
  );
  const checked = replies.filter((reply) => reply.status === 401).length;
  assert.equal(checked, BRUTE_FORCE_LIMIT);
  assert.equal(replies.filter((reply) => reply.status === 429).length, BRUTE_FORCE_LIMIT * 2);
  clock.offsetMs += 61_000;
});

test('failed assertions do not lock out the holder of the key', async () => {
  for (let attempt = 0; attempt < BRUTE_FORCE_LIMIT + 1; attempt += 1)
    await requestToken(assertionForm(await signAssertion({ key: strangerKey })));
  const reply = await requestToken(assertionForm(await signAssertion()));
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
});

// ---------------------------------------------------------------------------------------------
// Attacks on the request

test('refuses a token for another resource server (invalid_target)', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', resource: 'https://other.example.com/mcp' },
    basic('billing-bot', SECRET),
  );
  assertOAuthError(reply, 400, 'invalid_target');
});

test('refuses a second resource next to this one', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', resource: [RESOURCE, 'https://other.example.com/mcp'] },
    basic('billing-bot', SECRET),
  );
  assertOAuthError(reply, 400, 'invalid_target');
});

test('refuses other grant types', async () => {
  const reply = await requestToken(
    { grant_type: 'password', username: 'admin', password: 'admin' },
    basic('billing-bot', SECRET),
  );
  assertOAuthError(reply, 400, 'unsupported_grant_type');
});

test('refuses a request without grant_type', async () => {
  const reply = await requestToken({}, basic('billing-bot', SECRET));
  assertOAuthError(reply, 400, 'invalid_request');
});

test('refuses a repeated parameter', async () => {
  const reply = await requestToken(
    { grant_type: ['client_credentials', 'client_credentials'] },
    basic('billing-bot', SECRET),
  );
  assertOAuthError(reply, 400, 'invalid_request');
});

test('refuses a malformed scope', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', scope: 'mcp:tools  "quoted"' },
    basic('billing-bot', SECRET),
  );
  assertOAuthError(reply, 400, 'invalid_scope');
});

test('refuses a revoked agent even with the right secret', async () => {
  revokedAgents.add('revoked-bot');
  try {
    const reply = await requestToken(
      { grant_type: 'client_credentials' },
      basic('revoked-bot', SECRET),
    );
    assertOAuthError(reply, 400, 'unauthorized_client');
  } finally {
    revokedAgents.delete('revoked-bot');
  }
});

test('answers GET with 405 and Allow: POST', async () => {
  const reply = await sendRaw(tokenUrl);
  assert.equal(reply.status, 405);
  assert.equal(reply.headers['allow'], 'POST');
  assert.equal((JSON.parse(reply.text) as { error: string }).error, 'invalid_request');
});

test('refuses an oversized body with 413 without reading it all', async () => {
  const reply = await sendRaw(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&scope=${'a'.repeat(20 * 1024)}`,
  });
  assert.equal(reply.status, 413);
  assert.equal((JSON.parse(reply.text) as { error: string }).error, 'invalid_request');
});

test('refuses an oversized chunked body', async () => {
  const reply = await sendRaw(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&scope=${'a'.repeat(20 * 1024)}`,
    chunked: true,
  });
  assert.equal(reply.status, 413);
});

test('refuses a JSON body', async () => {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...basic('billing-bot', SECRET) },
    body: JSON.stringify({ grant_type: 'client_credentials' }),
  });
  assert.equal(response.status, 400);
  assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
});

test('a parameter sent without a value counts as omitted', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', scope: '', resource: '' },
    basic('billing-bot', SECRET),
  );
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal(reply.body['scope'], 'mcp:tools');
});

test('an unexpected failure answers server_error without its detail', async (t) => {
  const failures: unknown[] = [];
  const failing = createServer((request, response) => {
    void createTokenEndpoint({
      issuer: {
        issuer: ISSUER,
        resource: RESOURCE,
        maxTtlMs: 3_600_000,
        algorithm: 'ES256',
        issueToken: () => Promise.reject(new Error('SELECT private_jwk FROM signing_keys')),
      },
      agents: new Map([['billing-bot', agent('billing-bot', { secretHash: agentHash })]]),
      tokenEndpointUrl: tokenUrl,
      onError: (error) => failures.push(error),
    })(request, response);
  });
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => failing.close(resolve)));
  const port = (failing.address() as AddressInfo).port;
  const response = await fetch(`http://127.0.0.1:${port}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...basic('billing-bot', SECRET),
    },
    body: 'grant_type=client_credentials',
  });
  assert.equal(response.status, 500);
  const text = await response.text();
  assert.equal((JSON.parse(text) as { error: string }).error, 'server_error');
  assert.doesNotMatch(text, /SELECT|private_jwk/);
  assert.equal(failures.length, 1);
});

// ---------------------------------------------------------------------------------------------
// Publication and secrets

test('the JWKS endpoint publishes only public keys', async () => {
  const response = await fetch(`${baseUrl}${BUILTIN_ISSUER_PATHS.jwks}`);
  assert.equal(response.status, 200);
  const { keys } = (await response.json()) as { keys: JWK[] };
  assert.ok(keys.length >= 1);
  for (const key of keys) {
    assert.equal(key.d, undefined);
    assert.equal(key.use, 'sig');
  }
  assert.equal(
    (await fetch(`${baseUrl}${BUILTIN_ISSUER_PATHS.jwks}`, { method: 'POST' })).status,
    405,
  );
});

test('authorization server metadata describes the client_credentials endpoint (RFC 8414)', () => {
  const metadata = describeAuthorizationServer({
    issuer: ISSUER,
    tokenEndpointUrl: `${ISSUER}/oauth/token`,
    jwksUri: `${ISSUER}/.well-known/jwks.json`,
  });
  assert.equal(metadata['issuer'], ISSUER);
  assert.equal(metadata['token_endpoint'], `${ISSUER}/oauth/token`);
  assert.equal(metadata['jwks_uri'], `${ISSUER}/.well-known/jwks.json`);
  assert.deepEqual(metadata['grant_types_supported'], ['client_credentials']);
  assert.deepEqual(metadata['token_endpoint_auth_methods_supported'], [
    'client_secret_basic',
    'client_secret_post',
    'private_key_jwt',
  ]);
  const algorithms = metadata['token_endpoint_auth_signing_alg_values_supported'] as string[];
  assert.ok(algorithms.includes('ES256'));
  assert.ok(!algorithms.includes('none') && !algorithms.some((alg) => alg.startsWith('HS')));
});

test('client secrets are stored as salted scrypt hashes and checked in constant time', async () => {
  const hash = await hashClientSecret('s3cret');
  assert.match(hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  assert.notEqual(await hashClientSecret('s3cret'), hash, 'the salt is random');
  assert.equal(await verifyClientSecret('s3cret', hash), true);
  assert.equal(await verifyClientSecret('s3cret ', hash), false);
  assert.equal(await verifyClientSecret('s3cret', 'scrypt$1048577$8$1$AAAA$AAAA'), false);
  assert.equal(await verifyClientSecret('s3cret', 'plain:s3cret'), false);
});
