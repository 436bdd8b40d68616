/**
 * The built-in issuer mints tokens the gateway (or anyone holding the JWKS) can verify, bound to
 * this gateway, its environment and a registered agent; its keys rotate with an overlap so no
 * valid token stops verifying early, and no retired key keeps verifying.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { AgentConfig, AuthConfig, BuiltinIssuerConfig } from '../src/config/config.js';
import {
  createBuiltinIssuer,
  createBuiltinKeyring,
  IssuerError,
} from '../src/identity/builtin-issuer.js';
import { createSigningKeyring } from '../src/identity/signing-keys.js';
import type { SigningAlgorithm } from '../src/identity/signing-keys.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const START = Date.parse('2026-03-01T09:00:00Z');

const AUTH: AuthConfig = {
  resource: 'https://warden.example.com/mcp',
  issuers: [],
  requiredScopes: ['mcp:tools'],
  maxTokenLifetimeMs: HOUR,
  clockSkewMs: 30_000,
  mtls: false,
};

function issuerConfig(algorithm: SigningAlgorithm = 'ES256'): BuiltinIssuerConfig {
  return {
    kind: 'builtin',
    issuer: 'https://warden.example.com',
    tokenTtlMs: 15 * MINUTE,
    maxTtlMs: HOUR,
    rotateEveryMs: 30 * DAY,
    algorithm,
  };
}

const AGENT: AgentConfig = {
  id: 'billing-bot',
  roles: ['finance_executor'],
  scopes: ['payments:write'],
  tenant: undefined,
  clientIds: [],
  secretHash: undefined,
  jwks: undefined,
  mtlsIdentity: undefined,
};
const AGENTS: ReadonlyMap<string, AgentConfig> = new Map([[AGENT.id, AGENT]]);

interface Setup {
  readonly store: Store;
  readonly clock: { now: number };
  readonly keyring: ReturnType<typeof createSigningKeyring>;
  readonly issuer: ReturnType<typeof createBuiltinIssuer>;
}

async function setUp(
  t: { after: (fn: () => Promise<void>) => void },
  algorithm: SigningAlgorithm = 'ES256',
): Promise<Setup> {
  const store = await openStore('sqlite::memory:');
  t.after(() => store.close());
  const clock = { now: START };
  const now = () => clock.now;
  const config = issuerConfig(algorithm);
  const keyring = createBuiltinKeyring({ repository: store.signingKeys, config, auth: AUTH, now });
  const issuer = createBuiltinIssuer({
    config,
    auth: AUTH,
    environment: 'production',
    agents: AGENTS,
    keyring,
    now,
  });
  return { store, clock, keyring, issuer };
}

/** Another keyring on the same store: another replica, or the `warden keys` CLI. */
function openSecondKeyring(setup: Setup, algorithm: SigningAlgorithm) {
  return createSigningKeyring({
    repository: setup.store.signingKeys,
    algorithm,
    rotateEveryMs: 30 * DAY,
    maxTokenTtlMs: HOUR,
    now: () => setup.clock.now,
  });
}

async function verifyAt(setup: Setup, token: string) {
  return jwtVerify(token, createLocalJWKSet(await setup.keyring.publicJwks()), {
    issuer: 'https://warden.example.com',
    audience: AUTH.resource,
    typ: 'at+jwt',
    currentDate: new Date(setup.clock.now),
  });
}

for (const algorithm of ['ES256', 'EdDSA', 'RS256'] as const) {
  test(`a minted ${algorithm} token verifies against the published JWKS and carries every RFC 9068 claim`, async (t) => {
    const setup = await setUp(t, algorithm);
    const issued = await setup.issuer.issueToken({ agent: AGENT });
    const { payload, protectedHeader } = await verifyAt(setup, issued.token);

    const { keys } = await setup.keyring.publicJwks();
    assert.equal(keys.length, 1);
    assert.deepEqual(protectedHeader, { alg: algorithm, kid: keys[0]?.kid, typ: 'at+jwt' });
    const iat = Math.floor(START / 1000);
    assert.deepEqual(payload, {
      iss: 'https://warden.example.com',
      aud: AUTH.resource,
      sub: 'billing-bot',
      client_id: 'billing-bot',
      jti: issued.tokenId,
      iat,
      exp: iat + 15 * 60,
      scope: 'mcp:tools',
      warden_env: 'production',
    });
    assert.equal(issued.expiresAt, (iat + 15 * 60) * 1000);
  });
}

test('the published JWKS holds public keys only, each with kid, alg and use=sig', async (t) => {
  const setup = await setUp(t, 'RS256');
  await setup.issuer.issueToken({ agent: AGENT });
  const [key] = (await setup.keyring.publicJwks()).keys;
  assert.ok(key);
  for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi'])
    assert.equal(key[secret as keyof typeof key], undefined, `JWKS leaks "${secret}"`);
  assert.equal(key.alg, 'RS256');
  assert.equal(key.use, 'sig');
  // Random, at least 16 bytes of base64url: not guessable, not a counter.
  assert.match(key.kid ?? '', /^[A-Za-z0-9_-]{22,}$/);
});

test('a user token names the user as sub and the agent as client_id, with the asked scopes', async (t) => {
  const setup = await setUp(t);
  const issued = await setup.issuer.issueToken({
    agent: AGENT,
    user: 'alice@example.com',
    scopes: ['mcp:tools', 'payments:write'],
  });
  const { payload } = await verifyAt(setup, issued.token);
  assert.equal(payload.sub, 'alice@example.com');
  assert.equal(payload['client_id'], 'billing-bot');
  assert.equal(payload['scope'], 'mcp:tools payments:write');
});

test('a certificate-bound token carries cnf.x5t#S256', async (t) => {
  const setup = await setUp(t);
  const thumbprint = Buffer.alloc(32, 7).toString('base64url');
  const issued = await setup.issuer.issueToken({ agent: AGENT, certificateThumbprint: thumbprint });
  const { payload } = await verifyAt(setup, issued.token);
  assert.deepEqual(payload['cnf'], { 'x5t#S256': thumbprint });
});

test('every token has its own random jti', async (t) => {
  const setup = await setUp(t);
  const ids = new Set<string>();
  for (let i = 0; i < 20; i += 1)
    ids.add((await setup.issuer.issueToken({ agent: AGENT })).tokenId);
  assert.equal(ids.size, 20);
});

test('refuses a TTL above the maximum instead of capping it', async (t) => {
  const setup = await setUp(t);
  await assert.rejects(
    setup.issuer.issueToken({ agent: AGENT, ttlMs: HOUR + 1000 }),
    (error: unknown) => error instanceof IssuerError && error.code === 'WARDEN_TOKEN_TTL_TOO_LONG',
  );
  const longest = await setup.issuer.issueToken({ agent: AGENT, ttlMs: HOUR });
  assert.equal(longest.expiresAt - Math.floor(START / 1000) * 1000, HOUR);
});

test('refuses a zero or negative TTL', async (t) => {
  const setup = await setUp(t);
  for (const ttlMs of [0, -MINUTE, Number.NaN])
    await assert.rejects(
      setup.issuer.issueToken({ agent: AGENT, ttlMs }),
      (error: unknown) => error instanceof IssuerError && error.code === 'WARDEN_INVALID_TOKEN_TTL',
    );
});

test('refuses to issue for an agent that is not in the registry', async (t) => {
  const setup = await setUp(t);
  const impostor: AgentConfig = { ...AGENT, id: 'root-agent', roles: ['admin'] };
  await assert.rejects(
    setup.issuer.issueToken({ agent: impostor }),
    (error: unknown) => error instanceof IssuerError && error.code === 'WARDEN_UNKNOWN_AGENT',
  );
});

test('refuses a scope not configured for the agent, such as an admin scope', async (t) => {
  const setup = await setUp(t);
  for (const scopes of [['warden_admin'], ['payments:write', 'payments:admin'], ['Payments:Write']])
    await assert.rejects(
      setup.issuer.issueToken({ agent: AGENT, scopes }),
      (error: unknown) => error instanceof IssuerError && error.code === 'WARDEN_SCOPE_NOT_ALLOWED',
    );
});

test('refuses a scope that is not a valid scope token', async (t) => {
  const setup = await setUp(t);
  await assert.rejects(
    setup.issuer.issueToken({ agent: AGENT, scopes: ['a b'] }),
    (error: unknown) => error instanceof IssuerError && error.code === 'WARDEN_INVALID_SCOPE',
  );
});

test('a token signed before a rotation keeps verifying during the overlap; new tokens use the new key', async (t) => {
  const setup = await setUp(t);
  const before = await setup.issuer.issueToken({ agent: AGENT, ttlMs: HOUR });
  const oldKid = decodeProtectedHeader(before.token).kid;

  setup.clock.now += 10 * MINUTE;
  const { kid: newKid } = await setup.keyring.rotate();
  assert.notEqual(newKid, oldKid);

  const after = await setup.issuer.issueToken({ agent: AGENT });
  assert.equal(decodeProtectedHeader(after.token).kid, newKid);
  await verifyAt(setup, after.token);
  await verifyAt(setup, before.token);
  const published = (await setup.keyring.publicJwks()).keys.map((key) => key.kid).sort();
  assert.deepEqual(published, [oldKid, newKid].sort());

  // Just before the old token expires it still verifies.
  setup.clock.now = before.expiresAt - 1000;
  await verifyAt(setup, before.token);

  const [rotated] = (await setup.keyring.listKeys()).filter((key) => key.kid === oldKid);
  assert.equal(rotated?.state, 'rotated');
  assert.ok(rotated?.retireAt !== undefined && rotated.retireAt >= before.expiresAt);
});

test('after retireAt the rotated key is unpublished and deleted, and its tokens stop verifying', async (t) => {
  const setup = await setUp(t);
  const before = await setup.issuer.issueToken({ agent: AGENT, ttlMs: HOUR });
  const oldKid = decodeProtectedHeader(before.token).kid;
  await setup.keyring.rotate();
  const retireAt = (await setup.keyring.listKeys()).find((key) => key.kid === oldKid)?.retireAt;
  assert.ok(retireAt !== undefined);

  setup.clock.now = retireAt;
  const published = (await setup.keyring.publicJwks()).keys.map((key) => key.kid);
  assert.ok(!published.includes(oldKid), 'the retired key is still published');
  await assert.rejects(
    jwtVerify(before.token, createLocalJWKSet(await setup.keyring.publicJwks()), {
      currentDate: new Date(before.expiresAt - 1000),
    }),
    { code: 'ERR_JWKS_NO_MATCHING_KEY' },
  );
  const stored = (await setup.store.signingKeys.list()).map((key) => key.kid);
  assert.ok(!stored.includes(oldKid ?? ''), 'the retired private key is still in the store');
});

test('rotates on schedule once the active key is older than rotate_every', async (t) => {
  const setup = await setUp(t);
  const first = (await setup.keyring.currentKey()).kid;
  setup.clock.now += 30 * DAY - 1;
  assert.equal((await setup.keyring.currentKey()).kid, first);
  setup.clock.now += 1;
  const second = (await setup.keyring.currentKey()).kid;
  assert.notEqual(second, first);

  const states = new Map((await setup.keyring.listKeys()).map((key) => [key.kid, key.state]));
  assert.equal(states.get(first), 'rotated');
  assert.equal(states.get(second), 'active');
  const issued = await setup.issuer.issueToken({ agent: AGENT });
  assert.equal(decodeProtectedHeader(issued.token).kid, second);
});

test('a rotation made elsewhere on the same store (another replica, the CLI) is picked up within seconds', async (t) => {
  const setup = await setUp(t);
  const first = (await setup.keyring.currentKey()).kid;
  const cli = openSecondKeyring(setup, 'ES256');
  const { kid: rotated } = await cli.rotate();

  setup.clock.now += 5_000;
  assert.equal((await setup.keyring.currentKey()).kid, rotated);
  const published = (await setup.keyring.publicJwks()).keys.map((key) => key.kid).sort();
  assert.deepEqual(published, [first, rotated].sort());
});

test('concurrent first requests create a single key', async (t) => {
  const setup = await setUp(t);
  const kids = await Promise.all(
    Array.from({ length: 10 }, async () => (await setup.keyring.currentKey()).kid),
  );
  assert.equal(new Set(kids).size, 1);
  assert.equal((await setup.store.signingKeys.list()).length, 1);
});

test('a change of configured algorithm rotates to a key of the new algorithm', async (t) => {
  const setup = await setUp(t, 'ES256');
  const first = await setup.keyring.currentKey();
  const eddsa = openSecondKeyring(setup, 'EdDSA');
  const next = await eddsa.currentKey();
  assert.notEqual(next.kid, first.kid);
  assert.equal(next.algorithm, 'EdDSA');
});
