/**
 * The built-in token endpoint, attacked over real HTTP on 127.0.0.1: only a registered agent that
 * proves itself (secret or signed assertion, once) gets a token, only for this gateway, and only
 * with the scopes configured for it. Clients come from several loopback addresses (127.0.0.0/8),
 * so that failures can be told apart by source.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import type { ClientAuthenticationMethod } from '../src/identity/client-authentication.js';
import { createMemorySecretLimiter } from '../src/identity/client-secret-limiter.js';
import {
  BUILTIN_ISSUER_PATHS,
  createJwksHandler,
  createTokenEndpoint,
  describeAuthorizationServer,
} from '../src/identity/token-endpoint.js';
import type {
  OAuthErrorCode,
  TokenEndpointEvent,
  TokenRequestFailure,
} from '../src/identity/token-endpoint.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { sendRaw } from './support/raw-http.js';
import { startTestGateway } from './support/gateway.js';

const ISSUER = 'https://warden.example.com';
const RESOURCE = 'https://warden.example.com/mcp';
// Characters that RFC 6749 §2.3.1 requires to be form-urlencoded inside the Basic header.
const SECRET = 'correct horse:battery+staple%é';
const BRUTE_FORCE_LIMIT = 5;
const CLIENT_BUDGET = 8;

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
      agent('billing-bot', { secretHash, scopes: ['payments:read'] }),
      agent('research-bot', { secretHash, scopes: ['research:read', 'research:write'] }),
      agent('brute-target', { secretHash }),
      agent('lockout-target', { secretHash }),
      agent('swarm-target', { secretHash }),
      agent('revoked-bot', { secretHash }),
      agent('signing-bot', {
        jwks: { keys: [agentJwk as Record<string, unknown>] },
        scopes: ['signing:write'],
      }),
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
    secretLimiter: createMemorySecretLimiter({
      maxFailuresPerSource: BRUTE_FORCE_LIMIT,
      maxFailuresPerClient: CLIENT_BUDGET,
      windowMs: 60_000,
      now,
    }),
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

/**
 * POSTs a token request. `from` is the client's source address (any of 127.0.0.0/8), `query` is
 * appended to the endpoint URL, and `body` replaces the form-encoded parameters as sent.
 */
async function requestToken(
  form: Record<string, string | string[]>,
  headers: Record<string, string> = {},
  options: { from?: string; query?: string; body?: string; url?: string } = {},
): Promise<TokenReply> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(form))
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, item);
  const body = options.body ?? params.toString();
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      `${options.url ?? tokenUrl}${options.query ?? ''}`,
      {
        method: 'POST',
        localAddress: options.from ?? '127.0.0.1',
        agent: false,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: toHeaders(response.headers),
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

function toHeaders(headers: IncomingHttpHeaders): Headers {
  const result = new Headers();
  for (const [name, value] of Object.entries(headers))
    for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value])
      result.append(name, item);
  return result;
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

/** The `auth.failed` event of a refusal, from 127.0.0.1 unless said otherwise. */
function refusal(
  clientId: string,
  method: ClientAuthenticationMethod,
  reason: TokenRequestFailure,
  error: OAuthErrorCode,
  source = '127.0.0.1',
): TokenEndpointEvent {
  return { kind: 'auth.failed', requestId: undefined, source, clientId, method, reason, error };
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
    refusal('billing-bot', 'client_secret_basic', 'wrong_secret', 'invalid_client'),
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
  assert.deepEqual(
    events.at(-1),
    refusal('signing-bot', 'private_key_jwt', 'assertion_replayed', 'invalid_client'),
  );
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
  assert.deepEqual(
    events.at(-1),
    refusal('signing-bot', 'private_key_jwt', 'assertion_expired', 'invalid_client'),
  );
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

test('rate-limits wrong secrets per source and client so secrets cannot be brute-forced', async () => {
  const attacker = '127.0.0.11';
  for (let attempt = 0; attempt < BRUTE_FORCE_LIMIT; attempt += 1) {
    const reply = await requestToken(
      { grant_type: 'client_credentials' },
      basic('brute-target', `guess-${attempt}`),
      { from: attacker },
    );
    assertOAuthError(reply, 401, 'invalid_client');
  }
  // Limited: from this source even the right secret is refused now, without being checked.
  const locked = await requestToken(
    { grant_type: 'client_credentials' },
    basic('brute-target', SECRET),
    { from: attacker },
  );
  assertOAuthError(locked, 429, 'temporarily_unavailable');
  assert.ok(Number(locked.headers.get('retry-after')) > 0);
  assert.deepEqual(
    events.at(-1),
    refusal(
      'brute-target',
      'client_secret_basic',
      'rate_limited',
      'temporarily_unavailable',
      attacker,
    ),
  );
  // Other clients are not affected, even from the same source.
  const other = await requestToken(
    { grant_type: 'client_credentials' },
    basic('billing-bot', SECRET),
    { from: attacker },
  );
  assert.equal(other.status, 200);

  clock.offsetMs += 61_000;
  try {
    const later = await requestToken(
      { grant_type: 'client_credentials' },
      basic('brute-target', SECRET),
      { from: attacker },
    );
    assert.equal(later.status, 200, JSON.stringify(later.body));
  } finally {
    clock.offsetMs -= 61_000;
  }
});

test('a stranger who knows a client id cannot lock the agent out from elsewhere', async () => {
  const stranger = '127.0.0.21';
  for (let attempt = 0; attempt < BRUTE_FORCE_LIMIT + 7; attempt += 1)
    await requestToken(
      {
        grant_type: 'client_credentials',
        client_id: 'lockout-target',
        client_secret: `x${attempt}`,
      },
      {},
      { from: stranger },
    );
  const strangerAgain = await requestToken(
    { grant_type: 'client_credentials' },
    basic('lockout-target', SECRET),
    { from: stranger },
  );
  assertOAuthError(strangerAgain, 429, 'temporarily_unavailable');
  // The agent, from its own address, keeps getting tokens, by either secret method.
  const agentItself = await requestToken(
    { grant_type: 'client_credentials' },
    basic('lockout-target', SECRET),
    { from: '127.0.0.22' },
  );
  assert.equal(agentItself.status, 200, JSON.stringify(agentItself.body));
  const agentByPost = await requestToken(
    { grant_type: 'client_credentials', client_id: 'lockout-target', client_secret: SECRET },
    {},
    { from: '127.0.0.22' },
  );
  assert.equal(agentByPost.status, 200, JSON.stringify(agentByPost.body));
});

test('guessing from many sources spends the client budget: then each source gets one guess, and the agent still gets in', async () => {
  const guess = (from: string, secret: string) =>
    requestToken({ grant_type: 'client_credentials' }, basic('swarm-target', secret), { from });
  // A swarm spends the client's budget across sources, each staying under its own limit.
  const swarm = Array.from({ length: CLIENT_BUDGET / 2 }, (_, index) => `127.0.1.${index + 1}`);
  for (const from of swarm)
    for (let attempt = 0; attempt < 2; attempt += 1)
      assertOAuthError(await guess(from, `swarm-${attempt}`), 401, 'invalid_client');

  // A source that has failed gets no more guesses while the budget is spent...
  const dirty = await guess(swarm[0] ?? '', 'swarm-again');
  assertOAuthError(dirty, 429, 'temporarily_unavailable');
  assert.equal((events.at(-1) as { reason?: string } | undefined)?.reason, 'client_rate_limited');
  // ...and a fresh source gets one, then no more.
  assertOAuthError(await guess('127.0.1.50', 'fresh-1'), 401, 'invalid_client');
  assertOAuthError(await guess('127.0.1.50', 'fresh-2'), 429, 'temporarily_unavailable');
  assertOAuthError(await guess('127.0.1.50', SECRET), 429, 'temporarily_unavailable');
  // The agent's own source has not failed, so its secret is still checked, and it gets in.
  const agentItself = await guess('127.0.1.99', SECRET);
  assert.equal(agentItself.status, 200, JSON.stringify(agentItself.body));
  // Its success does not give the swarm its budget back.
  assertOAuthError(await guess(swarm[1] ?? '', 'swarm-after'), 429, 'temporarily_unavailable');
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
  assert.equal(
    (events.at(-1) as { reason?: string } | undefined)?.reason,
    'unsupported_grant_type',
  );
  assert.equal(events.at(-1)?.kind, 'auth.failed', 'the refusal is recorded');
});

test('refuses a request without grant_type', async () => {
  const reply = await requestToken({}, basic('billing-bot', SECRET));
  assertOAuthError(reply, 400, 'invalid_request');
  assert.equal(events.at(-1)?.kind, 'auth.failed', 'the refusal is recorded');
  assert.equal((events.at(-1) as { reason?: string } | undefined)?.reason, 'malformed_request');
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

// ---------------------------------------------------------------------------------------------
// Attacks on scope: only auth.required_scopes and the agent's configured scopes are ever issued

test('refuses the reported escalation: scope "admin warden_admin" for research-bot', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', scope: 'admin warden_admin' },
    basic('research-bot', SECRET),
  );
  assertOAuthError(reply, 400, 'invalid_scope');
  assert.doesNotMatch(JSON.stringify(reply.body), /admin/, 'the refusal does not echo the scope');
  assert.deepEqual(events, [
    refusal('research-bot', 'client_secret_basic', 'scope_not_allowed', 'invalid_scope'),
  ]);
});

const REFUSED_SCOPES: ReadonlyArray<readonly [string, string, string]> = [
  ['an unknown scope', 'warden_admin', 'scope_not_allowed'],
  ['one configured scope and one not', 'research:read warden_admin', 'scope_not_allowed'],
  [
    'a configured scope and an unknown one behind it',
    'warden_admin research:read',
    'scope_not_allowed',
  ],
  ["another agent's scope", 'payments:read', 'scope_not_allowed'],
  ['a case variant of a configured scope', 'Research:Read', 'scope_not_allowed'],
  ['a case variant of an admin scope', 'Warden_Admin', 'scope_not_allowed'],
  ['a configured scope with a suffix', 'research:read:all', 'scope_not_allowed'],
  ['a configured scope as a prefix', 'research', 'scope_not_allowed'],
  ['a wildcard', '*', 'scope_not_allowed'],
  ['scopes separated by a tab', 'research:read\twarden_admin', 'scope_malformed'],
  ['scopes separated by two spaces', 'research:read  warden_admin', 'scope_malformed'],
  ['a leading space', ' research:read', 'scope_malformed'],
  ['a trailing space', 'research:read ', 'scope_malformed'],
  ['a lone space', ' ', 'scope_malformed'],
  ['scopes separated by a no-break space', 'research:read\u00a0warden_admin', 'scope_malformed'],
  ['a newline', 'research:read\nwarden_admin', 'scope_malformed'],
  ['a look-alike (Cyrillic a)', 'rese\u0430rch:read', 'scope_malformed'],
  ['a quoted scope', '"research:read"', 'scope_malformed'],
  ['a NUL byte', 'research:read\u0000', 'scope_malformed'],
];

for (const [name, scope, reason] of REFUSED_SCOPES) {
  test(`refuses ${name} with invalid_scope`, async () => {
    const reply = await requestToken(
      { grant_type: 'client_credentials', scope },
      basic('research-bot', SECRET),
    );
    assertOAuthError(reply, 400, 'invalid_scope');
    assert.equal(events.at(-1)?.kind, 'auth.failed');
    assert.equal((events.at(-1) as { reason?: string } | undefined)?.reason, reason);
  });
}

test('issues the configured scopes asked for, deduplicated, and the required ones', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', scope: 'research:read research:read mcp:tools' },
    basic('research-bot', SECRET),
  );
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal(reply.body['scope'], 'research:read mcp:tools');
  const { payload } = await verifyIssued(reply);
  assert.equal(payload['scope'], 'research:read mcp:tools');
  assert.equal(payload['roles'], undefined, 'the issuer never mints a roles claim');
});

test('a space sent as %20 or as + is the same single separator', async () => {
  for (const encoded of [
    'research%3Aread%20research%3Awrite',
    'research%3Aread+research%3Awrite',
  ]) {
    const reply = await requestToken({}, basic('research-bot', SECRET), {
      body: `grant_type=client_credentials&scope=${encoded}`,
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body['scope'], 'research:read research:write');
  }
});

test('without a scope parameter (or with an empty one) only the required scopes are issued', async () => {
  for (const form of [{}, { scope: '' }]) {
    const reply = await requestToken(
      { grant_type: 'client_credentials', ...form },
      basic('research-bot', SECRET),
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body['scope'], 'mcp:tools', 'configured scopes are issued when asked for');
  }
});

test('refuses a scope sent twice as a form parameter, in either order', async () => {
  for (const scope of [
    ['research:read', 'warden_admin'],
    ['warden_admin', 'research:read'],
    ['research:read', 'research:read'],
  ]) {
    const reply = await requestToken(
      { grant_type: 'client_credentials', scope },
      basic('research-bot', SECRET),
    );
    assertOAuthError(reply, 400, 'invalid_request');
  }
});

test('refuses parameters in the query string: a scope there is neither issued nor ignored', async () => {
  for (const query of ['?scope=warden_admin', '?scope=research%3Aread', '?client_secret=x', '?a']) {
    const reply = await requestToken(
      { grant_type: 'client_credentials', scope: 'research:read' },
      basic('research-bot', SECRET),
      { query },
    );
    assertOAuthError(reply, 400, 'invalid_request');
  }
});

test('a private_key_jwt client gets its configured scopes and nothing else', async () => {
  const granted = await requestToken({
    ...assertionForm(await signAssertion()),
    scope: 'signing:write',
  });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));
  assert.equal(granted.body['scope'], 'signing:write');
  for (const scope of ['warden_admin', 'signing:write research:read', 'Signing:Write']) {
    const refused = await requestToken({ ...assertionForm(await signAssertion()), scope });
    assertOAuthError(refused, 400, 'invalid_scope');
    assert.deepEqual(
      events.at(-1),
      refusal('signing-bot', 'private_key_jwt', 'scope_not_allowed', 'invalid_scope'),
    );
  }
});

test('scope refusals are not counted as wrong secrets: the agent is not locked out by asking', async () => {
  for (let attempt = 0; attempt < BRUTE_FORCE_LIMIT + 2; attempt += 1)
    assertOAuthError(
      await requestToken(
        { grant_type: 'client_credentials', scope: 'warden_admin' },
        basic('research-bot', SECRET),
        { from: '127.0.0.31' },
      ),
      400,
      'invalid_scope',
    );
  const reply = await requestToken(
    { grant_type: 'client_credentials' },
    basic('research-bot', SECRET),
    { from: '127.0.0.31' },
  );
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
});

test('an unauthenticated client learns nothing about scopes: it is refused as a client first', async () => {
  const reply = await requestToken(
    { grant_type: 'client_credentials', scope: 'warden_admin' },
    basic('research-bot', 'wrong'),
    { from: '127.0.0.32' },
  );
  assertOAuthError(reply, 401, 'invalid_client');
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

// ---------------------------------------------------------------------------------------------
// The audit log under a flood

test(
  'a flood of 300 refused token requests from one source leaves one record in full and one count',
  { timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-token-flood-'));
    const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
    const gateway = await startTestGateway({
      store: storeUrl,
      log: { level: 'silent' },
      audit: { hash_key_file: join(dir, 'hash.key'), stream: 'token-flood' },
      agents: { 'test-agent': { roles: ['tester'] }, 'pay-bot': { secret_hash: agentHash } },
      upstreams: { fixture: { url: 'http://127.0.0.1:9/mcp' } },
    });
    let closed = false;
    t.after(async () => {
      if (!closed) await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const url = `${gateway.url}${BUILTIN_ISSUER_PATHS.token}`;
    const started = Date.now();
    const statuses = new Map<number, number>();
    let firstReference: string | null = null;
    for (let attempt = 0; attempt < 300; attempt += 1) {
      // Unknown clients (refused at once) and wrong secrets (checked, then rate-limited).
      const reply =
        attempt % 3 === 0
          ? await requestToken({ grant_type: 'client_credentials' }, basic('ghost', 'x'), { url })
          : await requestToken(
              { grant_type: 'client_credentials' },
              basic('pay-bot', `guess-${attempt}`),
              { url },
            );
      statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
      firstReference ??= reply.headers.get('x-request-id');
    }
    const tookMs = Date.now() - started;
    assert.equal(statuses.get(200), undefined);
    assert.ok((statuses.get(429) ?? 0) > 0, 'the wrong secrets were rate-limited');
    await gateway.close();
    closed = true;

    const store = await openStore(storeUrl);
    let records;
    try {
      records = (await store.audit.readStream('token-flood', 1, 10_000)).filter(
        (record) => record.event === 'auth.failed',
      );
    } finally {
      await store.close();
    }
    const [first] = records;
    assert.equal(first?.errorCode, 'OAUTH_INVALID_CLIENT');
    assert.ok(firstReference, 'the refusal carries the reference');
    assert.equal(first?.requestId, firstReference, 'the record is found by the reference');
    assert.equal(first?.details?.['endpoint'], 'token');
    assert.equal(first?.details?.['source'], '127.0.0.1');
    assert.equal(first?.details?.['clientId'], 'ghost', 'an unknown id is told, not named agent');
    assert.equal(first?.agent, undefined);
    const summaries = records.filter((record) => record.details?.['repeated'] !== undefined);
    const inFull = records.length - summaries.length;
    const repeated = summaries.reduce(
      (sum, record) => sum + Number(record.details?.['repeated']),
      0,
    );
    assert.equal(inFull + repeated, 300, 'every refusal is accounted for');
    // One window (a minute) holds the whole flood unless this machine is very slow.
    const windows = Math.ceil(tookMs / 60_000) + 1;
    assert.ok(records.length <= 2 * windows, `${records.length} records for one source`);
    if (tookMs < 60_000) {
      assert.equal(records.length, 2);
      assert.equal(summaries[0]?.details?.['repeated'], 299);
      const codes = summaries[0]?.details?.['codes'] as Record<string, number>;
      assert.equal(
        (codes['OAUTH_INVALID_CLIENT'] ?? 0) + (codes['OAUTH_TEMPORARILY_UNAVAILABLE'] ?? 0),
        299,
      );
      assert.ok((codes['OAUTH_TEMPORARILY_UNAVAILABLE'] ?? 0) > 0);
    }
  },
);
