/**
 * The token endpoint's protections hold whichever replica is asked: three gateways on one
 * PostgreSQL schema accept a client assertion once between them, count wrong secrets as one
 * budget, and verify a token signed with a key another replica just rotated in, at once. Then,
 * at the keyring: an unknown kid is looked up in the store (so no NOTIFY is needed, as on a
 * SQLite file two processes share), and a flood of made-up kids reads the store a bounded
 * number of times.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { parseConfig } from '../src/config/load.js';
import {
  createBuiltinIssuer,
  createBuiltinKeyring,
  findBuiltinIssuerConfig,
} from '../src/identity/builtin-issuer.js';
import { CLIENT_ASSERTION_TYPE, hashClientSecret } from '../src/identity/client-authentication.js';
import { createSigningKeyring } from '../src/identity/signing-keys.js';
import { openStore } from '../src/store/open-store.js';
import type { SigningKeyRepository, Store } from '../src/store/types.js';
import { initializeRequest, postMcp, sendRaw } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import {
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';
import {
  startTestGateway,
  TEST_RESOURCE,
  TESTER_ROLE,
  type TestGateway,
} from './support/gateway.js';

const SECRET = 'the-guarded-secret-0123456789';
/** The token endpoint's default: wrong secrets per source and client in a minute. */
const SECRET_TRIES = 10;

interface TokenReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** POSTs a token request from a loopback source address of the test's choosing. */
async function requestToken(
  gateway: TestGateway,
  form: Record<string, string>,
  from = '127.0.0.1',
): Promise<TokenReply> {
  const reply = await sendRaw(`${gateway.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
    localAddress: from,
  });
  return { status: reply.status, body: JSON.parse(reply.text) as Record<string, unknown> };
}

describe('three replicas on one PostgreSQL schema', () => {
  const schema = uniqueName('warden_ident');
  const storeUrl = `${POSTGRES_URL}?schema=${schema}`;
  let upstream: ScriptedUpstream;
  let agentKey: CryptoKey;
  let raw: Record<string, unknown>;
  const replicas: TestGateway[] = [];

  before(async () => {
    testSchemas.push(schema);
    upstream = await startScriptedUpstream();
    const pair = await generateKeyPair('ES256');
    agentKey = pair.privateKey;
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'signer-1', alg: 'ES256' };
    raw = {
      store: storeUrl,
      log: { level: 'silent' },
      auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
      roles: { tester: TESTER_ROLE },
      agents: {
        'test-agent': { roles: ['tester'] },
        'signing-bot': { roles: [], jwks: { keys: [publicJwk] } },
        'secret-bot': { roles: [], secret_hash: await hashClientSecret(SECRET) },
      },
      upstreams: { fixture: { url: upstream.url } },
    };
    // One after the other: the first creates the schema and the signing key the others share.
    for (const name of ['replica-a', 'replica-b', 'replica-c'])
      replicas.push(await startTestGateway({ ...raw, audit: { stream: name } }));
  });

  after(async () => {
    await Promise.all(replicas.map((replica) => replica.close()));
    await upstream?.close();
  });

  const replica = (index: number): TestGateway => {
    const found = replicas[index];
    if (!found) throw new Error(`no replica ${index}`);
    return found;
  };

  async function signAssertion(jti: string): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    // The issuer identifier is an accepted audience, and it is the same on every replica.
    const audience = replica(0).issuer?.issuer ?? '';
    return new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'signer-1' })
      .setIssuer('signing-bot')
      .setSubject('signing-bot')
      .setAudience(audience)
      .setJti(jti)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 60)
      .sign(agentKey);
  }

  const assertionForm = (assertion: string) => ({
    grant_type: 'client_credentials',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: assertion,
  });

  async function auditRecords(filter: (record: AuditRecord) => boolean): Promise<AuditRecord[]> {
    const store = await openStore(storeUrl);
    try {
      const records: AuditRecord[] = [];
      for (const stream of await store.audit.streams())
        records.push(...(await store.audit.readStream(stream, 1, 10_000)));
      return records.filter(filter);
    } finally {
      await store.close();
    }
  }

  test('an assertion used on one replica is refused as a replay by the others, on the record', async () => {
    const assertion = await signAssertion(randomUUID());
    const first = await requestToken(replica(0), assertionForm(assertion), '127.0.0.31');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    for (const index of [1, 2]) {
      const replay = await requestToken(replica(index), assertionForm(assertion), '127.0.0.31');
      assert.equal(replay.status, 401, `replica ${index}: ${JSON.stringify(replay.body)}`);
      assert.equal(replay.body['error'], 'invalid_client');
      assert.equal(replay.body['access_token'], undefined);
    }
    let refusals: AuditRecord[] = [];
    for (let attempt = 0; attempt < 50 && refusals.length < 2; attempt += 1) {
      refusals = await auditRecords(
        (record) =>
          record.event === 'auth.failed' &&
          record.agent === 'signing-bot' &&
          record.details?.['reason'] === 'assertion_replayed',
      );
      if (refusals.length < 2) await sleep(50);
    }
    assert.deepEqual(
      refusals.map((record) => record.stream).sort(),
      ['replica-b', 'replica-c'],
      'each refusing replica recorded auth.failed / assertion_replayed',
    );
    assert.ok(refusals.every((record) => record.errorCode === 'OAUTH_INVALID_CLIENT'));
  });

  test('one assertion sent to three replicas at once gets one token', async () => {
    const assertion = await signAssertion(randomUUID());
    const replies = await Promise.all(
      [0, 1, 2].map((index) => requestToken(replica(index), assertionForm(assertion))),
    );
    assert.deepEqual(
      replies.map((reply) => reply.status).sort(),
      [200, 401, 401],
      JSON.stringify(replies.map((reply) => reply.body)),
    );
  });

  test(`wrong secrets spread over three replicas are ${SECRET_TRIES} tries in all, not ${SECRET_TRIES} each`, async () => {
    const guesser = '127.0.0.41';
    const guess = (index: number, secret: string) =>
      requestToken(
        replica(index % 3),
        { grant_type: 'client_credentials', client_id: 'secret-bot', client_secret: secret },
        guesser,
      );
    for (let attempt = 0; attempt < SECRET_TRIES; attempt += 1) {
      const reply = await guess(attempt, `guess-${attempt}`);
      assert.equal(reply.status, 401, `guess ${attempt}: ${JSON.stringify(reply.body)}`);
    }
    for (const index of [0, 1, 2]) {
      const limited = await guess(index, `guess-more-${index}`);
      assert.equal(limited.status, 429, `replica ${index}: ${JSON.stringify(limited.body)}`);
      assert.equal(limited.body['error'], 'temporarily_unavailable');
      // Not even the right secret is checked from this source now, on any replica.
      assert.equal((await guess(index, SECRET)).status, 429);
    }
    // The agent itself, from its own address, still gets in through any replica.
    const agent = await requestToken(
      replica(2),
      { grant_type: 'client_credentials', client_id: 'secret-bot', client_secret: SECRET },
      '127.0.0.42',
    );
    assert.equal(agent.status, 200, JSON.stringify(agent.body));
  });

  test('a token signed with a key just rotated in elsewhere verifies on every replica at once', async () => {
    const initialize = (index: number, token: string) =>
      postMcp(replica(index).endpoint('fixture'), initializeRequest(), {
        headers: { authorization: `Bearer ${token}` },
      });
    // Every replica has the current key cached: it verified a token signed with it just now.
    for (const index of [0, 1, 2]) {
      const warm = await initialize(index, await replica(index).token());
      assert.equal(warm.status, 200, warm.text);
    }
    // Another process on the store (the CLI, or a replica) rotates and signs with the new key.
    const config = parseConfig({ ...raw, audit: { stream: 'rotator' } }, 'test');
    const builtin = findBuiltinIssuerConfig(config.auth);
    assert.ok(builtin);
    const store = await openTracked(storeUrl);
    const keyring = createBuiltinKeyring({
      repository: store.signingKeys,
      config: builtin,
      auth: config.auth,
    });
    const { kid } = await keyring.rotate();
    const issuer = createBuiltinIssuer({
      config: builtin,
      auth: config.auth,
      environment: config.environment,
      agents: config.agents,
      keyring,
    });
    const agent = config.agents.get('test-agent');
    assert.ok(agent);
    const issued = await issuer.issueToken({ agent });
    assert.equal(
      JSON.parse(Buffer.from(issued.token.split('.')[0] ?? '', 'base64url').toString()).kid,
      kid,
    );
    for (const index of [0, 1, 2]) {
      const reply = await initialize(index, issued.token);
      assert.equal(reply.status, 200, `replica ${index}: ${reply.status} ${reply.text}`);
    }
  });
});

/** A repository that counts the store reads of the keys. */
function counting(repository: SigningKeyRepository): SigningKeyRepository & { reads: number } {
  const counted = {
    reads: 0,
    list: async () => {
      counted.reads += 1;
      return repository.list();
    },
    insert: (key: Parameters<SigningKeyRepository['insert']>[0]) => repository.insert(key),
    markRotated: (at: number, retireAt: number) => repository.markRotated(at, retireAt),
    deleteRetired: (now: number) => repository.deleteRetired(now),
    subscribe: (listener: () => void) => repository.subscribe(listener),
  };
  return counted;
}

function keyringOn(store: Store, options: { unknownKidRereadMs?: number } = {}) {
  const repository = counting(store.signingKeys);
  const keyring = createSigningKeyring({
    repository,
    algorithm: 'ES256',
    rotateEveryMs: 30 * 86_400_000,
    maxTokenTtlMs: 3_600_000,
    // Long enough that only the unknown-kid look-up can explain a fresh key being found.
    refreshIntervalMs: 60_000,
    ...options,
  });
  return { repository, keyring };
}

const kidsOf = (jwks: { keys: { kid?: string }[] }) => jwks.keys.map((key) => key.kid);

describe('the keyring looks an unknown kid up in the store', () => {
  test('two processes on one SQLite file: a key rotated by one is found by the other at once', async () => {
    const url = `sqlite:${join(tempRoot, `${uniqueName('keys')}.db`)}`;
    const rotating = keyringOn(await openTracked(url)).keyring;
    const verifying = keyringOn(await openTracked(url)).keyring;
    const first = (await rotating.currentKey()).kid;
    assert.deepEqual(kidsOf(await verifying.publicJwksFor(first)), [first]);
    const { kid: rotated } = await rotating.rotate();
    // The cached copy does not know it yet (no notification crosses SQLite processes)...
    assert.ok(!kidsOf(await verifying.publicJwks()).includes(rotated));
    // ...but a token naming it makes the keyring look, before the token is judged.
    assert.ok(kidsOf(await verifying.publicJwksFor(rotated)).includes(rotated));
  });

  test('on PostgreSQL a rotation is also announced: the other keyring re-reads unasked', async () => {
    const schema = uniqueName('warden_keys');
    testSchemas.push(schema);
    const rotatingStore = await openTracked(POSTGRES_URL, { schema });
    const verifyingStore = await openTracked(POSTGRES_URL, { schema });
    const rotating = keyringOn(rotatingStore).keyring;
    const verifying = keyringOn(verifyingStore).keyring;
    let announced = 0;
    await verifyingStore.signingKeys.subscribe(() => {
      announced += 1;
      verifying.markStale();
    });
    const first = (await rotating.currentKey()).kid;
    for (let wait = 0; wait < 100 && announced === 0; wait += 1) await sleep(20);
    assert.deepEqual(kidsOf(await verifying.publicJwks()), [first]);
    const { kid: rotated } = await rotating.rotate();
    for (let wait = 0; wait < 100 && announced < 2; wait += 1) await sleep(20);
    assert.equal(announced, 2, 'the insert of each key was announced');
    // Without naming the kid: the announcement alone made the cached copy stale.
    assert.ok(kidsOf(await verifying.publicJwks()).includes(rotated));
  });

  test('a flood of made-up kids reads the store a bounded number of times, and real ones still verify', async () => {
    const store = await openTracked('sqlite::memory:');
    const rereadMs = 100;
    const { repository, keyring } = keyringOn(store, { unknownKidRereadMs: rereadMs });
    const real = (await keyring.currentKey()).kid;
    const before = repository.reads;
    const started = performance.now();
    // Waves of 200 concurrent requests with random kids, for a while.
    let requests = 0;
    while (performance.now() - started < 500) {
      await Promise.all(
        Array.from({ length: 200 }, () => keyring.publicJwksFor(`sprayed-${randomUUID()}`)),
      );
      requests += 200;
    }
    const elapsed = performance.now() - started;
    const reads = repository.reads - before;
    // At most one read per interval (plus the one in flight at each end); never one per request.
    assert.ok(reads <= Math.ceil(elapsed / rereadMs) + 2, `${reads} reads in ${elapsed} ms`);
    assert.ok(reads < requests / 50, `${reads} reads for ${requests} requests`);
    // The real key is found without waiting for anything.
    assert.deepEqual(kidsOf(await keyring.publicJwksFor(real)), [real]);
  });

  test('a refused look-up is not cached: a key stored after a miss is found on the next ask', async () => {
    const url = `sqlite:${join(tempRoot, `${uniqueName('keys')}.db`)}`;
    const rotating = keyringOn(await openTracked(url)).keyring;
    const verifying = keyringOn(await openTracked(url), { unknownKidRereadMs: 50 }).keyring;
    await rotating.currentKey();
    await verifying.publicJwksFor('not-yet');
    const { kid } = await rotating.rotate();
    // Asked again within the interval: the look-up waits its turn rather than refusing.
    assert.ok(kidsOf(await verifying.publicJwksFor(kid)).includes(kid));
  });
});

/** Two stores on one database: two replicas, or two processes on one SQLite file. */
const sharedDatabases = [
  {
    name: 'a SQLite file',
    open: (name: string) => openTracked(`sqlite:${join(tempRoot, `${name}.db`)}`),
  },
  {
    name: 'PostgreSQL',
    open: (name: string) => {
      if (!testSchemas.includes(name)) testSchemas.push(name);
      return openTracked(POSTGRES_URL, { schema: name });
    },
  },
];

for (const database of sharedDatabases) {
  describe(`the shared records on ${database.name}`, () => {
    const T0 = 1_900_000_000_000;

    test('one assertion id claimed through two stores at once is granted once', async () => {
      const name = uniqueName('warden_claims');
      const [a, b] = [await database.open(name), await database.open(name)];
      for (let round = 0; round < 20; round += 1) {
        const jti = randomUUID();
        const claims = await Promise.all(
          [a, b, a, b].map((store) =>
            store.assertionReplays.claim('signing-bot', jti, T0 + 60_000, T0),
          ),
        );
        assert.equal(claims.filter(Boolean).length, 1, `round ${round}: ${claims.join()}`);
      }
    });

    test('an id is a replay until it is no longer kept, for its own agent only', async () => {
      const name = uniqueName('warden_claims');
      const [a, b] = [await database.open(name), await database.open(name)];
      assert.equal(await a.assertionReplays.claim('signing-bot', 'jti-1', T0 + 1000, T0), true);
      assert.equal(
        await b.assertionReplays.claim('signing-bot', 'jti-1', T0 + 1000, T0 + 999),
        false,
      );
      assert.equal(await b.assertionReplays.claim('other-bot', 'jti-1', T0 + 1000, T0), true);
      // Past its keep-until the assertion has expired anyway; the row may be taken over.
      assert.equal(
        await b.assertionReplays.claim('signing-bot', 'jti-1', T0 + 5000, T0 + 1000),
        true,
      );
      assert.equal(await a.assertionReplays.deleteExpired(T0 + 1000), 1, 'other-bot’s id went');
      assert.equal(
        await a.assertionReplays.claim('signing-bot', 'jti-1', T0 + 5000, T0 + 2000),
        false,
      );
    });

    test('expired secret failures of clients no one tries again are swept', async () => {
      const name = uniqueName('warden_failures');
      const store = await database.open(name);
      const attempt = { clientId: 'quiet-bot', source: '203.0.113.9', windowMs: 50, now: T0 };
      await store.secretFailures.reserve(attempt, () => 'source_and_client');
      await sleep(60);
      // SQLite compares with the caller's clock, PostgreSQL with its own.
      assert.equal(await store.secretFailures.deleteExpired(50, T0 + 1, 100), 2);
      const seen = await store.secretFailures.reserve({ ...attempt, now: T0 + 1 }, (recent) => {
        assert.deepEqual([recent.bySource, recent.byClient], [[], []]);
        return 'none';
      });
      assert.equal(seen, undefined);
    });
  });
}
