// JWT access tokens from the attacker's side: every way to forge, replay, stretch or smuggle a
// token is refused with a stable reason, most of them before any key is looked up; and the IdP
// is never hammered, whatever kids an attacker sprays. Keys are served by a node:http IdP on
// 127.0.0.1; time is a frozen clock the tests move.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
} from 'jose';
import type { AuthConfig, ExternalIssuerConfig } from '../src/config/config.js';
import {
  createJwtVerifier,
  MAX_TOKEN_LENGTH,
  requireScopes,
  type JwtVerifier,
  type JwtVerifierOptions,
} from '../src/identity/jwt-verifier.js';
import {
  TokenRejectedError,
  type TokenRejectionReason,
} from '../src/identity/token-rejected-error.js';

const RESOURCE = 'https://warden.example.com/mcp';
const ENVIRONMENT = 'production';
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const RSA_KID = 'rsa-2026-01';
const EC_KID = 'ec-2026-01';
const AUTH: AuthConfig = {
  resource: RESOURCE,
  issuers: [],
  requiredScopes: [],
  maxTokenLifetimeMs: 60 * 60_000,
  clockSkewMs: 30_000,
  mtls: false,
};

interface KeyPair {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

/** A stand-in identity provider: metadata and JWKS over HTTP, with its fetches counted. */
interface FakeIdp {
  readonly issuer: string;
  jwks: JSONWebKeySet;
  /** 'down' answers 500; 'hang' never answers. */
  mode: 'up' | 'down' | 'hang';
  /** Overrides the RFC 8414 metadata document. */
  metadata: Record<string, unknown> | undefined;
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

let idp: FakeIdp;
let rsa: KeyPair;
let ec: KeyPair;
let attacker: KeyPair;
let clock: number;

async function createKeyPair(alg: 'RS256' | 'ES256', kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

async function startFakeIdp(): Promise<FakeIdp> {
  const server: Server = createServer((request, response) => {
    const path = request.url ?? '/';
    idp.hits.set(path, (idp.hits.get(path) ?? 0) + 1);
    if (idp.mode === 'hang') return;
    if (idp.mode === 'down') {
      response.writeHead(500).end();
      return;
    }
    const body =
      path === '/jwks'
        ? idp.jwks
        : path === '/.well-known/oauth-authorization-server'
          ? (idp.metadata ?? { issuer: idp.issuer, jwks_uri: `${idp.issuer}/jwks` })
          : undefined;
    if (body === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    issuer: `http://127.0.0.1:${port}`,
    jwks: { keys: [] },
    mode: 'up',
    metadata: undefined,
    hits: new Map(),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

before(async () => {
  rsa = await createKeyPair('RS256', RSA_KID);
  ec = await createKeyPair('ES256', EC_KID);
  attacker = await createKeyPair('RS256', RSA_KID);
  idp = await startFakeIdp();
});

after(async () => {
  await idp?.close();
});

beforeEach(() => {
  clock = T0;
  idp.jwks = { keys: [rsa.jwk, ec.jwk] };
  idp.mode = 'up';
  idp.metadata = undefined;
  idp.hits.clear();
});

function jwksFetches(): number {
  return idp.hits.get('/jwks') ?? 0;
}

function externalIssuer(overrides: Partial<ExternalIssuerConfig> = {}): ExternalIssuerConfig {
  return {
    kind: 'external',
    issuer: idp.issuer,
    jwksUri: `${idp.issuer}/jwks`,
    algorithms: ['RS256', 'ES256'],
    agentClaim: 'client_id',
    environmentClaim: 'warden_env',
    ...overrides,
  };
}

function createVerifier(overrides: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  return createJwtVerifier({
    auth: AUTH,
    environment: ENVIRONMENT,
    issuers: [externalIssuer()],
    now: () => clock,
    cacheSize: 0,
    jwks: { timeoutMs: 300 },
    ...overrides,
  });
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

function standardClaims(): JWTPayload {
  return {
    iss: idp.issuer,
    sub: 'alice@example.com',
    client_id: 'agent-finance',
    aud: RESOURCE,
    scope: 'mcp tools.call',
    jti: 'tok-0001',
    iat: seconds(clock),
    exp: seconds(clock) + 300,
    warden_env: ENVIRONMENT,
  };
}

/** Header parameters to override; `undefined` removes one. */
type HeaderOverrides = { [K in keyof JWTHeaderParameters]?: JWTHeaderParameters[K] | undefined };

/** A token as the IdP would issue it; `undefined` in the overrides removes a claim or header. */
async function mint(
  claims: Record<string, unknown> = {},
  header: HeaderOverrides = {},
  key: CryptoKey = rsa.privateKey,
): Promise<string> {
  return new SignJWT({ ...standardClaims(), ...claims })
    .setProtectedHeader({
      alg: 'RS256',
      kid: RSA_KID,
      typ: 'at+jwt',
      ...header,
    } as JWTHeaderParameters)
    .sign(key);
}

function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A token assembled by hand, for headers and algorithms a well-behaved library refuses to sign. */
async function forge(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  sign: (input: Buffer) => Buffer | Promise<Buffer>,
): Promise<string> {
  const input = `${encodeSegment(header)}.${encodeSegment(claims)}`;
  return `${input}.${(await sign(Buffer.from(input))).toString('base64url')}`;
}

function signWith(key: CryptoKey): (input: Buffer) => Promise<Buffer> {
  return async (input) =>
    Buffer.from(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', key, new Uint8Array(input)));
}

async function assertRefused(
  attempt: Promise<unknown>,
  reason: TokenRejectionReason,
): Promise<TokenRejectedError> {
  let refusal: TokenRejectedError | undefined;
  await assert.rejects(attempt, (error: unknown) => {
    assert.ok(
      error instanceof TokenRejectedError,
      `expected a TokenRejectedError, got ${String(error)}`,
    );
    assert.equal(error.reason, reason, error.message);
    refusal = error;
    return true;
  });
  assert.ok(refusal);
  return refusal;
}

/** Refused on the token alone: the IdP's keys were never even asked for. */
async function assertRefusedBeforeKeyLookup(
  attempt: Promise<unknown>,
  reason: TokenRejectionReason,
): Promise<void> {
  await assertRefused(attempt, reason);
  assert.equal(idp.hits.size, 0, 'no request reached the IdP');
}

// --- the token a well-behaved IdP issues -----------------------------------------------------

test('accepts a well-formed access token and maps every claim', async () => {
  const thumbprint = 'A'.repeat(43);
  const token = await mint({
    nbf: seconds(clock) - 5,
    roles: ['reader'],
    tenant: 'acme',
    cnf: { 'x5t#S256': thumbprint },
    act: { sub: 'orchestrator', act: { sub: 'planner' } },
  });
  const verified = await createVerifier().verify(token);
  assert.equal(verified.issuer, idp.issuer);
  assert.equal(verified.subject, 'alice@example.com');
  assert.equal(verified.agentClaimValue, 'agent-finance');
  assert.deepEqual(verified.audience, [RESOURCE]);
  assert.deepEqual(verified.scopes, ['mcp', 'tools.call']);
  assert.equal(verified.tokenId, 'tok-0001');
  assert.equal(verified.issuedAt, seconds(T0) * 1000);
  assert.equal(verified.expiresAt, (seconds(T0) + 300) * 1000);
  assert.equal(verified.notBefore, (seconds(T0) - 5) * 1000);
  assert.deepEqual(verified.actChain, ['orchestrator', 'planner']);
  assert.deepEqual(verified.rolesClaim, ['reader']);
  assert.equal(verified.tenant, 'acme');
  assert.equal(verified.certificateThumbprint, thumbprint);
  assert.equal(verified.claims.warden_env, ENVIRONMENT);
  assert.ok(Object.isFrozen(verified) && Object.isFrozen(verified.claims));
});

test('accepts an untyped token from an external issuer, and application/at+jwt', async () => {
  const verifier = createVerifier();
  await verifier.verify(await mint({}, { typ: undefined }));
  await verifier.verify(await mint({}, { typ: 'application/at+jwt' }));
});

test('accepts an ES256 token and an audience list that includes this resource', async () => {
  const token = await mint(
    { aud: ['https://other.example.com', RESOURCE] },
    { alg: 'ES256', kid: EC_KID },
    ec.privateKey,
  );
  const verified = await createVerifier().verify(token);
  assert.deepEqual(verified.audience, ['https://other.example.com', RESOURCE]);
});

test('reads scopes from scp when there is no scope claim, as an array or a string', async () => {
  const verifier = createVerifier();
  const fromArray = await verifier.verify(await mint({ scope: undefined, scp: ['mcp', 'admin'] }));
  assert.deepEqual(fromArray.scopes, ['mcp', 'admin']);
  const fromString = await verifier.verify(await mint({ scope: undefined, scp: 'mcp  read' }));
  assert.deepEqual(fromString.scopes, ['mcp', 'read']);
  const none = await verifier.verify(await mint({ scope: undefined }));
  assert.deepEqual(none.scopes, []);
});

test('names the agent by azp when the configured agent claim is absent', async () => {
  const verified = await createVerifier().verify(
    await mint({ client_id: undefined, azp: 'agent-ops' }),
  );
  assert.equal(verified.agentClaimValue, 'agent-ops');
});

test('names the agent by the issuer-specific claim when configured', async () => {
  const verifier = createVerifier({ issuers: [externalIssuer({ agentClaim: 'appid' })] });
  const verified = await verifier.verify(await mint({ appid: 'agent-entra' }));
  assert.equal(verified.agentClaimValue, 'agent-entra');
});

test('tolerates an expiry within the clock skew', async () => {
  const token = await mint({ iat: seconds(clock) - 300, exp: seconds(clock) - 10 });
  await createVerifier().verify(token);
});

test('refuses a token missing a required scope with insufficient_scope', async () => {
  const verified = await createVerifier().verify(await mint({ scope: 'mcp' }));
  requireScopes(verified, ['mcp']);
  const refusal = await assertRefused(
    Promise.resolve().then(() => requireScopes(verified, ['mcp', 'tools.call'])),
    'scope_insufficient',
  );
  assert.equal(refusal.oauthError, 'insufficient_scope');
});

// --- refused on the token alone, before any key lookup ---------------------------------------

test('refuses a token signed with alg none', async () => {
  for (const alg of ['none', 'None', 'NONE']) {
    const token = await forge({ alg, typ: 'at+jwt' }, standardClaims(), () => Buffer.alloc(0));
    const refusal = await assertRefused(createVerifier().verify(token), 'algorithm_refused');
    assert.equal(refusal.oauthError, 'invalid_token');
  }
  assert.equal(idp.hits.size, 0);
});

for (const [alg, hash] of [
  ['HS256', 'sha256'],
  ['HS384', 'sha384'],
  ['HS512', 'sha512'],
] as const) {
  test(`refuses ${alg} signed with the issuer's RSA public key as the HMAC secret`, async () => {
    const publicPem = await exportSPKI(rsa.publicKey);
    const token = await forge({ alg, kid: RSA_KID, typ: 'at+jwt' }, standardClaims(), (input) =>
      createHmac(hash, publicPem).update(input).digest(),
    );
    await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'algorithm_refused');
  });
}

test('refuses an algorithm the issuer is not configured for', async () => {
  const verifier = createVerifier({ issuers: [externalIssuer({ algorithms: ['ES256'] })] });
  await assertRefusedBeforeKeyLookup(verifier.verify(await mint()), 'algorithm_refused');
});

test('refuses a jku header and never fetches the URL it names', async () => {
  const trap = await startFakeIdp();
  try {
    const token = await forge(
      { alg: 'RS256', kid: RSA_KID, typ: 'at+jwt', jku: `${trap.issuer}/jwks` },
      standardClaims(),
      signWith(attacker.privateKey),
    );
    await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'key_header_refused');
    assert.equal(trap.hits.size, 0, 'the attacker URL was never contacted');
  } finally {
    await trap.close();
  }
});

test('refuses an x5u header', async () => {
  const token = await forge(
    { alg: 'RS256', kid: RSA_KID, x5u: 'https://attacker.example/cert.pem' },
    standardClaims(),
    signWith(attacker.privateKey),
  );
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'key_header_refused');
});

test("refuses a token that embeds the attacker's own key in a jwk header", async () => {
  const token = await forge(
    { alg: 'RS256', typ: 'at+jwt', jwk: attacker.jwk },
    standardClaims(),
    signWith(attacker.privateKey),
  );
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'key_header_refused');
});

test('refuses an x5c header even when the signature is the real issuer key', async () => {
  const token = await forge(
    { alg: 'RS256', kid: RSA_KID, typ: 'at+jwt', x5c: ['MIIB'] },
    standardClaims(),
    signWith(rsa.privateKey),
  );
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'key_header_refused');
});

test('refuses a crit header', async () => {
  const token = await forge(
    { alg: 'RS256', kid: RSA_KID, typ: 'at+jwt', crit: ['exp'], exp: 1 },
    standardClaims(),
    signWith(rsa.privateKey),
  );
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'crit_refused');
});

test('refuses a kid carrying path traversal characters', async () => {
  const token = await mint({}, { kid: '../../../etc/passwd' });
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'kid_invalid');
});

test('refuses a kid carrying SQL', async () => {
  const token = await mint({}, { kid: "k1' OR '1'='1" });
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'kid_invalid');
});

test('refuses a kid longer than 128 characters, or not a string', async () => {
  await assertRefused(
    createVerifier().verify(await mint({}, { kid: 'k'.repeat(129) })),
    'kid_invalid',
  );
  const numeric = await forge({ alg: 'RS256', kid: 7 }, standardClaims(), signWith(rsa.privateKey));
  await assertRefusedBeforeKeyLookup(createVerifier().verify(numeric), 'kid_invalid');
});

test('refuses an oversized token without parsing it', async () => {
  const token = await mint({ padding: 'x'.repeat(MAX_TOKEN_LENGTH) });
  assert.ok(token.length > MAX_TOKEN_LENGTH);
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'token_too_large');
});

test('refuses anything but three base64url parts', async () => {
  const good = await mint();
  const [header, payload] = good.split('.');
  const verifier = createVerifier();
  for (const token of [
    '',
    `${header}.${payload}`,
    `${good}.extra`,
    `${header}.${payload}.sig=`,
    `${header}..${payload}`,
    'a.b.c.d.e',
    ` ${good}`,
  ]) {
    await assertRefused(verifier.verify(token), 'token_malformed');
  }
  const notJson = `${Buffer.from('{"alg":').toString('base64url')}.${payload}.AAAA`;
  await assertRefusedBeforeKeyLookup(verifier.verify(notJson), 'token_malformed');
});

test('refuses an OIDC ID token (typ JWT) replayed as an access token', async () => {
  await assertRefusedBeforeKeyLookup(
    createVerifier().verify(await mint({}, { typ: 'JWT' })),
    'type_refused',
  );
});

test('refuses a token from an issuer that is not configured, without fetching anything', async () => {
  const token = await mint({ iss: 'https://idp.attacker.example' }, {}, attacker.privateKey);
  await assertRefusedBeforeKeyLookup(createVerifier().verify(token), 'issuer_unknown');
  await assertRefused(createVerifier().verify(await mint({ iss: undefined })), 'issuer_unknown');
});

// --- signature and key selection -------------------------------------------------------------

test('refuses a token without kid when the issuer publishes several keys', async () => {
  await assertRefused(createVerifier().verify(await mint({}, { kid: undefined })), 'kid_required');
});

test('accepts a token without kid when the issuer publishes exactly one key', async () => {
  idp.jwks = { keys: [rsa.jwk] };
  await createVerifier().verify(await mint({}, { kid: undefined }));
});

test("refuses a token signed by the attacker's key under the issuer's kid", async () => {
  const token = await mint({}, {}, attacker.privateKey);
  await assertRefused(createVerifier().verify(token), 'signature_invalid');
});

test('refuses a tampered payload that keeps the original signature', async () => {
  const [header, , signature] = (await mint()).split('.');
  const escalated = encodeSegment({ ...standardClaims(), scope: 'mcp tools.call admin' });
  await assertRefused(
    createVerifier().verify(`${header}.${escalated}.${signature}`),
    'signature_invalid',
  );
});

test("refuses a token whose kid was switched to another of the issuer's keys", async () => {
  const [, payload, signature] = (await mint()).split('.');
  const header = encodeSegment({ alg: 'RS256', kid: EC_KID, typ: 'at+jwt' });
  await assertRefused(createVerifier().verify(`${header}.${payload}.${signature}`), 'key_unknown');
});

// --- audience, time and environment ----------------------------------------------------------

test('refuses a token meant for another resource', async () => {
  const verifier = createVerifier();
  for (const aud of [
    'https://other.example.com/mcp',
    `${RESOURCE}/`,
    'https://warden.example.com',
  ]) {
    await assertRefused(verifier.verify(await mint({ aud })), 'audience_mismatch');
  }
  await assertRefused(verifier.verify(await mint({ aud: undefined })), 'audience_mismatch');
});

test('refuses an expired token', async () => {
  const token = await mint({ iat: seconds(clock) - 600, exp: seconds(clock) - 60 });
  await assertRefused(createVerifier().verify(token), 'token_expired');
});

test('refuses a token that is not valid yet', async () => {
  const token = await mint({ nbf: seconds(clock) + 120 });
  await assertRefused(createVerifier().verify(token), 'token_not_yet_valid');
});

test('refuses a token issued in the future', async () => {
  const token = await mint({ iat: seconds(clock) + 120, exp: seconds(clock) + 600 });
  await assertRefused(createVerifier().verify(token), 'issued_in_future');
});

test('refuses a token without exp', async () => {
  await assertRefused(createVerifier().verify(await mint({ exp: undefined })), 'expiry_missing');
});

test('refuses a token that lives longer than the maximum lifetime', async () => {
  const verifier = createVerifier();
  const twoHours = 2 * 3600;
  await assertRefused(
    verifier.verify(await mint({ exp: seconds(clock) + twoHours })),
    'lifetime_exceeded',
  );
  await assertRefused(
    verifier.verify(await mint({ iat: undefined, exp: seconds(clock) + twoHours })),
    'lifetime_exceeded',
  );
  await assertRefused(
    verifier.verify(await mint({ iat: seconds(clock) - twoHours, exp: seconds(clock) + 60 })),
    'lifetime_exceeded',
  );
});

test("refuses another environment's token from the same issuer with the same keys", async () => {
  const verifier = createVerifier();
  const refusal = await assertRefused(
    verifier.verify(await mint({ warden_env: 'staging' })),
    'environment_mismatch',
  );
  assert.equal(refusal.claim, 'warden_env');
  await assertRefused(
    verifier.verify(await mint({ warden_env: undefined })),
    'environment_mismatch',
  );
});

// --- claims the pipeline relies on -----------------------------------------------------------

test('refuses a token that names no subject or no agent', async () => {
  const verifier = createVerifier();
  await assertRefused(verifier.verify(await mint({ sub: undefined })), 'claim_missing');
  await assertRefused(verifier.verify(await mint({ client_id: undefined })), 'claim_missing');
});

test('refuses a malformed roles claim rather than ignoring the narrowing it asks for', async () => {
  await assertRefused(createVerifier().verify(await mint({ roles: 'reader' })), 'claim_invalid');
});

test('refuses a scope claim that is not a string', async () => {
  await assertRefused(createVerifier().verify(await mint({ scope: ['admin'] })), 'claim_invalid');
});

test('refuses an act chain whose actor has no subject', async () => {
  const token = await mint({ act: { sub: 'orchestrator', act: { iss: 'x' } } });
  await assertRefused(createVerifier().verify(token), 'claim_invalid');
});

test('refuses a DPoP-bound token presented as a bearer token', async () => {
  const token = await mint({ cnf: { jkt: 'A'.repeat(43) } });
  await assertRefused(createVerifier().verify(token), 'binding_unsupported');
});

// --- the IdP's keys: discovery, refresh, rotation, outages -----------------------------------

test('discovers the JWKS from the issuer metadata when no jwks_uri is configured', async () => {
  const verifier = createVerifier({ issuers: [externalIssuer({ jwksUri: undefined })] });
  await verifier.verify(await mint());
  assert.equal(idp.hits.get('/.well-known/oauth-authorization-server'), 1);
  assert.equal(jwksFetches(), 1);
});

test('refuses keys from metadata that names another issuer (mix-up)', async () => {
  idp.metadata = { issuer: 'https://idp.attacker.example', jwks_uri: `${idp.issuer}/jwks` };
  const verifier = createVerifier({ issuers: [externalIssuer({ jwksUri: undefined })] });
  await assertRefused(verifier.verify(await mint()), 'jwks_unavailable');
  assert.equal(jwksFetches(), 0);
});

test('an attacker spraying unknown kids triggers one JWKS refresh per interval, no more', async () => {
  const verifier = createVerifier();
  await verifier.verify(await mint());
  assert.equal(jwksFetches(), 1);

  clock += 31_000;
  await assertRefused(verifier.verify(await mint({}, { kid: 'sprayed-0' })), 'key_unknown');
  assert.equal(jwksFetches(), 2, 'the first unknown kid refreshes the keys');
  for (let i = 1; i <= 50; i++) {
    await assertRefused(verifier.verify(await mint({}, { kid: `sprayed-${i}` })), 'key_unknown');
  }
  assert.equal(jwksFetches(), 2, 'later unknown kids within the interval fetch nothing');

  clock += 30_000;
  await assertRefused(verifier.verify(await mint({}, { kid: 'sprayed-51' })), 'key_unknown');
  assert.equal(jwksFetches(), 3);
  await verifier.verify(await mint());
  assert.equal(jwksFetches(), 3, 'known keys are served from the cache');
});

test('concurrent unknown kids share a single JWKS fetch', async () => {
  const verifier = createVerifier();
  const tokens = await Promise.all(
    Array.from({ length: 20 }, (_, i) => mint({}, { kid: `burst-${i}` })),
  );
  const results = await Promise.allSettled(tokens.map((token) => verifier.verify(token)));
  assert.ok(results.every((result) => result.status === 'rejected'));
  assert.equal(jwksFetches(), 1);
});

test('picks up a key the IdP rotated in, once the refresh interval allows', async () => {
  const verifier = createVerifier();
  await verifier.verify(await mint());
  const next = await createKeyPair('RS256', 'rsa-2026-02');
  idp.jwks = { keys: [rsa.jwk, ec.jwk, next.jwk] };
  const rotated = await mint({}, { kid: 'rsa-2026-02' }, next.privateKey);

  // Published right after our last fetch: refused until the interval passes (the IdP should
  // publish keys before signing with them, which is what rotation with overlap means).
  await assertRefused(verifier.verify(rotated), 'key_unknown');
  clock += 30_000;
  const verified = await verifier.verify(await mint({}, { kid: 'rsa-2026-02' }, next.privateKey));
  assert.equal(verified.subject, 'alice@example.com');
  assert.equal(jwksFetches(), 2);
});

test('stops accepting a key the IdP withdrew once the cached keys are refreshed', async () => {
  const verifier = createVerifier();
  await verifier.verify(await mint());
  idp.jwks = { keys: [ec.jwk] };
  clock += 11 * 60_000;
  await assertRefused(verifier.verify(await mint()), 'key_unknown');
});

test('fails closed when the IdP is down, and asks it at most once per interval', async () => {
  idp.mode = 'down';
  const verifier = createVerifier();
  await assertRefused(verifier.verify(await mint()), 'jwks_unavailable');
  idp.mode = 'up';
  await assertRefused(verifier.verify(await mint()), 'jwks_unavailable');
  assert.equal(jwksFetches(), 1, 'a failed attempt counts against the interval too');
  clock += 30_000;
  await verifier.verify(await mint());
  assert.equal(jwksFetches(), 2);
});

test('fails closed within the timeout when the IdP never answers', async () => {
  idp.mode = 'hang';
  const started = Date.now();
  await assertRefused(createVerifier().verify(await mint()), 'jwks_unavailable');
  // The fetch timeout is 300 ms; the bound leaves a loaded machine room, and is still far from
  // the minutes an unbounded fetch of a silent IdP would take.
  assert.ok(Date.now() - started < 10_000, 'bounded by the fetch timeout');
});

test('keeps using cached keys through an IdP outage, but not for ever', async () => {
  const verifier = createVerifier();
  await verifier.verify(await mint());
  idp.mode = 'down';
  clock += 11 * 60_000;
  await verifier.verify(await mint());
  assert.equal(jwksFetches(), 2, 'a refresh was attempted');
  clock += 50 * 60_000;
  await assertRefused(verifier.verify(await mint()), 'jwks_unavailable');
});

// --- the built-in issuer ---------------------------------------------------------------------

test("verifies the built-in issuer's tokens with its local keys, and requires at+jwt", async () => {
  const builtin = 'https://warden.example.com';
  let published: JSONWebKeySet = { keys: [ec.jwk] };
  const verifier = createVerifier({
    builtinIssuer: builtin,
    localKeys: () => Promise.resolve(published),
  });
  const claims = { iss: builtin };
  const header = { alg: 'ES256', kid: EC_KID };
  const verified = await verifier.verify(await mint(claims, header, ec.privateKey));
  assert.equal(verified.issuer, builtin);
  await assertRefused(
    verifier.verify(await mint(claims, { ...header, typ: undefined }, ec.privateKey)),
    'type_refused',
  );

  const next = await createKeyPair('ES256', 'ec-2026-02');
  published = { keys: [ec.jwk, next.jwk] };
  await verifier.verify(await mint(claims, { alg: 'ES256', kid: 'ec-2026-02' }, next.privateKey));
  assert.equal(idp.hits.size, 0, 'the built-in issuer never goes over HTTP');
});

// --- the verified-token cache ----------------------------------------------------------------

test('serves a repeated token from the verified-token cache', async () => {
  const verifier = createVerifier({ cacheSize: 10 });
  const token = await mint();
  const first = await verifier.verify(token);
  assert.equal(await verifier.verify(token), first);
});

test('never serves an expired token from the verified-token cache', async () => {
  const verifier = createVerifier({ cacheSize: 10 });
  const token = await mint();
  await verifier.verify(token);
  clock += 300_000 + AUTH.clockSkewMs + 1_000;
  await assertRefused(verifier.verify(token), 'token_expired');
});

test('bounds the verified-token cache, evicting the least recently used', async () => {
  const verifier = createVerifier({ cacheSize: 2 });
  const [a, b, c] = await Promise.all([mint({ jti: 'a' }), mint({ jti: 'b' }), mint({ jti: 'c' })]);
  const firstA = await verifier.verify(a);
  const firstB = await verifier.verify(b);
  assert.equal(await verifier.verify(a), firstA, 'a is served from the cache, now most recent');
  await verifier.verify(c);
  assert.equal(await verifier.verify(a), firstA, 'a survived the eviction');
  assert.notEqual(await verifier.verify(b), firstB, 'b, least recently used, was evicted');
});
