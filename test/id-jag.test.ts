/**
 * Enterprise-managed authorization (ID-JAG, SEP-990) through a real gateway: a test enterprise
 * IdP on 127.0.0.1 publishes its keys (found through its RFC 8414 metadata) and signs Identity
 * Assertion JWT Authorization Grants; a registered agent trades one at the token endpoint
 * (RFC 7523 jwt-bearer grant) for a token that acts for the person, with no role neither holds,
 * and the audit log names both. Then, from the attacker's side: every forged, misdirected,
 * stale or replayed assertion is refused with one answer, and recorded with its exact reason.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import { ID_JAG_TYPE, JWT_BEARER_GRANT_TYPE, type VerifiedIdJag } from '../src/identity/id-jag.js';
import { personFromIdJag } from '../src/identity/id-jag-person.js';
import {
  createAuditedSetup,
  freshSource,
  openAuditReader,
  sendFrom,
  startAuditedGateway,
  type AuditedGateway,
  type AuditReader,
} from './support/audit-reader.js';
import { startTestGateway, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import {
  answeredWithResult,
  initializeRequest,
  openSession,
  postMcp,
  type RawReply,
} from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

/** The built-in issuer's identifier: the origin of TEST_RESOURCE, the only accepted `aud`. */
const WARDEN_ISSUER = new URL(TEST_RESOURCE).origin;
const ASSISTANT_SECRET = 'assistant-secret-0123456789';
const OTHER_SECRET = 'other-bot-secret-0123456789';
const REFUSED_ASSERTION = 'the assertion was not accepted';
const DOWN_IDP = 'http://127.0.0.1:9/down-idp';

/** A test enterprise IdP: RFC 8414 metadata, a JWKS, and a key to sign ID-JAGs with. */
interface TestIdp {
  readonly issuer: string;
  readonly key: CryptoKey;
  close(): Promise<void>;
}

async function startTestIdp(): Promise<TestIdp> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
  let issuer = '';
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', issuer).pathname;
    const documents: Record<string, unknown> = {
      '/.well-known/oauth-authorization-server': {
        issuer,
        jwks_uri: `${issuer}/keys`,
        token_endpoint: `${issuer}/token`,
        identity_chaining_requested_token_types_supported: [
          'urn:ietf:params:oauth:token-type:id-jag',
        ],
      },
      '/keys': { keys: [jwk] },
    };
    const document = documents[path];
    response.writeHead(document === undefined ? 404 : 200, {
      'content-type': 'application/json',
    });
    response.end(JSON.stringify(document ?? { error: 'not_found' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    key: privateKey,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

interface AssertionOptions {
  /** Claims to add or replace; `undefined` removes one. */
  readonly claims?: Record<string, unknown>;
  readonly header?: Record<string, unknown>;
  readonly key?: CryptoKey | Uint8Array;
  /** Seconds from now. */
  readonly issuedAt?: number;
  readonly lifetime?: number;
}

let idp: TestIdp;

/** An ID-JAG as the IdP would issue it for alice, for the agent `assistant`, unless told. */
async function signIdJag(options: AssertionOptions = {}): Promise<string> {
  const iat = Math.floor(Date.now() / 1000) + (options.issuedAt ?? 0);
  const claims: Record<string, unknown> = {
    iss: idp.issuer,
    sub: 'alice@example.com',
    aud: WARDEN_ISSUER,
    client_id: 'assistant',
    jti: randomUUID(),
    iat,
    exp: iat + (options.lifetime ?? 120),
    resource: TEST_RESOURCE,
    scope: 'mcp:tools',
    groups: ['finance', 'platform-admins'],
    ...options.claims,
  };
  const present = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
  return new SignJWT(present)
    .setProtectedHeader({ alg: 'ES256', kid: 'idp-1', typ: ID_JAG_TYPE, ...options.header })
    .sign(options.key ?? idp.key);
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

interface TokenReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly text: string;
  readonly headers: RawReply['headers'];
  readonly requestId: string;
}

/** Presents an assertion at the gateway's token endpoint from a fresh source address. */
async function presentIdJag(
  gateway: TestGateway,
  assertion: string | undefined,
  options: {
    readonly authorization?: string | null;
    readonly form?: Record<string, string>;
  } = {},
): Promise<TokenReply> {
  const authorization =
    options.authorization === undefined
      ? basic('assistant', ASSISTANT_SECRET)
      : options.authorization;
  const form = new URLSearchParams({
    grant_type: JWT_BEARER_GRANT_TYPE,
    ...(assertion !== undefined && { assertion }),
    ...options.form,
  });
  const reply: RawReply = await sendFrom(freshSource(), `${gateway.url}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(authorization !== null && { authorization }),
    },
    body: form.toString(),
  });
  return {
    status: reply.status,
    body: JSON.parse(reply.text) as Record<string, unknown>,
    text: reply.text,
    headers: reply.headers,
    requestId: String(reply.headers['x-request-id']),
  };
}

describe('enterprise-managed authorization through a real gateway', () => {
  let upstream: ScriptedUpstream;
  let audited: AuditedGateway;
  let gateway: TestGateway;
  let audit: AuditReader;
  let raw: Record<string, unknown>;

  before(async () => {
    idp = await startTestIdp();
    upstream = await startScriptedUpstream();
    raw = {
      log: { level: 'silent' },
      auth: {
        resource: TEST_RESOURCE,
        issuers: [{ builtin: {} }],
        required_scopes: ['mcp:tools'],
        enterprise: {
          // No jwks_uri: the keys are found through the IdP's metadata.
          id_jag: [
            {
              issuer: idp.issuer,
              roles_by_group: {
                finance: ['payments-clerk'],
                'platform-admins': ['gateway-operator'],
              },
            },
            // An IdP whose keys cannot be fetched (nothing listens there).
            { issuer: DOWN_IDP, jwks_uri: `${DOWN_IDP}/keys` },
          ],
        },
      },
      roles: {
        'payments-clerk': { grants: [{ tool: 'fixture.echo' }] },
        auditor: {},
        'gateway-operator': { trusted: true, grants: [{ tool: '*' }] },
      },
      agents: {
        // The agent may act as a payments clerk or an auditor; never as an operator.
        assistant: {
          roles: ['payments-clerk', 'auditor'],
          scopes: ['payments:read'],
          secret_hash: await hashClientSecret(ASSISTANT_SECRET),
        },
        'other-bot': { roles: [], secret_hash: await hashClientSecret(OTHER_SECRET) },
      },
      upstreams: { fixture: { url: upstream.url } },
    };
    audited = await startAuditedGateway('id-jag', raw);
    gateway = audited.gateway;
    audit = audited.audit;
  });

  after(async () => {
    await audited?.close();
    await upstream?.close();
    await idp?.close();
  });

  /** Asserts one refusal on the wire (no detail, no echo) and its exact reason on the record. */
  async function assertRefused(
    reply: TokenReply,
    assertion: string | undefined,
    expected: { error: string; status?: number; reason: string },
  ): Promise<AuditRecord> {
    assert.equal(reply.status, expected.status ?? 400, reply.text);
    assert.equal(reply.body['error'], expected.error, reply.text);
    assert.equal(reply.body['access_token'], undefined);
    if (expected.error === 'invalid_grant')
      assert.equal(reply.body['error_description'], REFUSED_ASSERTION);
    assert.ok(!reply.text.includes(expected.reason), 'the reason stays off the wire');
    if (assertion !== undefined)
      assert.ok(!reply.text.includes(assertion.slice(0, 20)), 'the assertion is never echoed');
    const records = await audit.recordsUntil(reply.requestId, (r) => r.event === 'auth.failed');
    const refusal = records.find((record) => record.event === 'auth.failed');
    assert.ok(refusal, `no auth.failed record for ${reply.requestId}`);
    assert.equal(refusal.details?.['reason'], expected.reason);
    assert.equal(refusal.errorCode, `OAUTH_${expected.error.toUpperCase()}`);
    return refusal;
  }

  test('the authorization server metadata offers the jwt-bearer grant', async () => {
    const reply = await fetch(`${gateway.url}/.well-known/oauth-authorization-server`);
    const metadata = (await reply.json()) as { grant_types_supported: string[] };
    assert.ok(metadata.grant_types_supported.includes(JWT_BEARER_GRANT_TYPE));
    assert.ok(metadata.grant_types_supported.includes('client_credentials'));
  });

  test('a person the IdP vouches for calls a tool through the agent, and the log names both', async () => {
    const reply = await presentIdJag(gateway, await signIdJag());
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.body['token_type'], 'Bearer');
    assert.equal(reply.body['scope'], 'mcp:tools');
    const token = String(reply.body['access_token']);
    const claims = decodeJwt(token);
    assert.equal(claims.sub, 'alice@example.com');
    assert.equal(claims['client_id'], 'assistant');
    assert.deepEqual(claims['act'], { sub: 'assistant' });
    // finance → payments-clerk (the agent holds it); platform-admins → an operator role it does not.
    assert.deepEqual(claims['roles'], ['payments-clerk']);

    const issued = await audit.recordsUntil(reply.requestId, (r) => r.event === 'token.issued');
    const record = issued.find((r) => r.event === 'token.issued');
    assert.equal(record?.user, 'alice@example.com');
    assert.equal(record?.agent, 'assistant');
    assert.deepEqual(record?.roles, ['payments-clerk']);
    assert.equal(record?.details?.['grant'], JWT_BEARER_GRANT_TYPE);
    assert.equal(record?.details?.['idp'], idp.issuer);

    const headers = { authorization: `Bearer ${token}` };
    const session = await openSession(gateway.endpoint('fixture'), headers);
    const call = await postMcp(
      gateway.endpoint('fixture'),
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: {} } },
      { sessionId: session, headers },
    );
    assert.ok(answeredWithResult(call, 7), call.text);
    const allowed = await audit.withEvent('call.allowed');
    const decision = allowed.find((r) => r.user === 'alice@example.com');
    assert.ok(decision, 'the allowed call names the person');
    assert.equal(decision.agent, 'assistant');
    assert.deepEqual(decision.roles, ['payments-clerk']);
  });

  test('a person whose groups map only to roles the agent lacks acts with none, and is refused', async () => {
    // Groups that map only to a role the agent lacks: nothing to act with, and no tool.
    const bob = await presentIdJag(
      gateway,
      await signIdJag({ claims: { sub: 'bob@example.com', groups: ['platform-admins'] } }),
    );
    assert.equal(bob.status, 200, bob.text);
    const bobToken = String(bob.body['access_token']);
    assert.deepEqual(decodeJwt(bobToken)['roles'], []);
    const refused = await postMcp(gateway.endpoint('fixture'), initializeRequest(), {
      headers: { authorization: `Bearer ${bobToken}` },
    });
    const reference = JSON.parse(refused.text) as { error?: { data?: Record<string, string> } };
    assert.equal(reference.error?.data?.['code'], 'WARDEN_NO_GRANT_ON_UPSTREAM', refused.text);
    const records = await audit.recordsOf(String(reference.error?.data?.['reference']));
    assert.ok(
      records.some((r) => r.user === 'bob@example.com' && r.agent === 'assistant'),
      'the refusal names the person and the agent',
    );
  });

  test('a built-in user the IdP names adds the roles configured for them', () => {
    const grant: VerifiedIdJag = {
      idp: {
        issuer: idp.issuer,
        jwksUri: undefined,
        userClaim: 'sub',
        groupsClaim: 'groups',
        rolesByGroup: new Map([['finance', ['payments-clerk']]]),
      },
      userId: 'carol@example.com',
      claims: { sub: 'carol@example.com', groups: ['finance', 'unknown-group'] },
      resources: [],
      scopes: undefined,
    };
    const users = new Map([
      [
        'carol@example.com',
        {
          id: 'carol@example.com',
          passwordHash: 'scrypt$unused',
          roles: ['auditor'],
          name: 'Carol',
          email: undefined,
        },
      ],
    ]);
    const carol = personFromIdJag(grant, users);
    assert.deepEqual(carol.roles, ['payments-clerk', 'auditor']);
    assert.equal(carol.name, 'Carol');
    assert.equal(carol.via, 'id-jag');
    // Unknown groups map to nothing, and nobody else's configured roles are taken.
    assert.deepEqual(personFromIdJag(grant, undefined).roles, ['payments-clerk']);
  });

  test('scopes: the granted ones narrowed to what the agent may hold, a request beyond them refused', async () => {
    const narrowed = await presentIdJag(
      gateway,
      await signIdJag({ claims: { scope: 'mcp:tools payments:read payments:write' } }),
    );
    assert.equal(narrowed.status, 200, narrowed.text);
    assert.equal(narrowed.body['scope'], 'mcp:tools payments:read');

    const beyond = await signIdJag();
    await assertRefused(
      await presentIdJag(gateway, beyond, { form: { scope: 'mcp:tools payments:read' } }),
      beyond,
      { error: 'invalid_scope', reason: 'scope_not_granted' },
    );
  });

  test('a token for one endpoint of the gateway, when asked', async () => {
    const reply = await presentIdJag(gateway, await signIdJag(), {
      form: { resource: `${TEST_RESOURCE}/fixture` },
    });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(decodeJwt(String(reply.body['access_token'])).aud, `${TEST_RESOURCE}/fixture`);
  });

  describe('refused, from the attacker side', () => {
    test('refuses an OpenID ID token offered in place of an ID-JAG', async () => {
      const idToken = await signIdJag({ header: { typ: 'JWT' }, claims: { aud: 'assistant' } });
      await assertRefused(await presentIdJag(gateway, idToken), idToken, {
        error: 'invalid_grant',
        reason: 'id_jag_wrong_type',
      });
    });

    test('refuses a plain JWT without a typ', async () => {
      const plain = await new SignJWT({
        iss: idp.issuer,
        sub: 'alice@example.com',
        aud: WARDEN_ISSUER,
        client_id: 'assistant',
        jti: randomUUID(),
      })
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(idp.key);
      await assertRefused(await presentIdJag(gateway, plain), plain, {
        error: 'invalid_grant',
        reason: 'id_jag_wrong_type',
      });
    });

    test('refuses an assertion from an IdP that is not trusted', async () => {
      const stranger = await generateKeyPair('ES256');
      const forged = await signIdJag({
        claims: { iss: 'http://127.0.0.1:9/evil-idp' },
        key: stranger.privateKey,
      });
      await assertRefused(await presentIdJag(gateway, forged), forged, {
        error: 'invalid_grant',
        reason: 'id_jag_unknown_issuer',
      });
    });

    test('refuses an assertion signed with a key the IdP does not publish', async () => {
      const stranger = await generateKeyPair('ES256');
      for (const kid of ['idp-1', 'made-up-kid']) {
        const forged = await signIdJag({ header: { kid }, key: stranger.privateKey });
        await assertRefused(await presentIdJag(gateway, forged), forged, {
          error: 'invalid_grant',
          reason: 'id_jag_signature_invalid',
        });
      }
    });

    test('refuses alg none and a shared-key (HS256) signature', async () => {
      const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const iat = Math.floor(Date.now() / 1000);
      const payload = {
        iss: idp.issuer,
        sub: 'alice@example.com',
        aud: WARDEN_ISSUER,
        client_id: 'assistant',
        jti: randomUUID(),
        iat,
        exp: iat + 60,
      };
      const unsigned = `${encode({ alg: 'none', typ: ID_JAG_TYPE })}.${encode(payload)}.`;
      await assertRefused(await presentIdJag(gateway, unsigned), unsigned, {
        error: 'invalid_grant',
        reason: 'id_jag_algorithm_refused',
      });
      const hmac = await signIdJag({
        header: { alg: 'HS256' },
        key: new TextEncoder().encode('a shared secret the attacker knows, 32+ bytes'),
      });
      await assertRefused(await presentIdJag(gateway, hmac), hmac, {
        error: 'invalid_grant',
        reason: 'id_jag_algorithm_refused',
      });
    });

    test('refuses an assertion meant for another authorization server', async () => {
      for (const aud of ['https://other-as.example', [WARDEN_ISSUER, 'https://other-as.example']]) {
        const misdirected = await signIdJag({ claims: { aud } });
        await assertRefused(await presentIdJag(gateway, misdirected), misdirected, {
          error: 'invalid_grant',
          reason: 'id_jag_wrong_audience',
        });
      }
    });

    test('refuses an assertion issued to another client than the one presenting it', async () => {
      const forOther = await signIdJag({ claims: { client_id: 'other-bot' } });
      await assertRefused(await presentIdJag(gateway, forOther), forOther, {
        error: 'invalid_grant',
        reason: 'id_jag_client_mismatch',
      });
      // A stolen assertion presented by another registered agent, with its own secret.
      const stolen = await signIdJag();
      await assertRefused(
        await presentIdJag(gateway, stolen, { authorization: basic('other-bot', OTHER_SECRET) }),
        stolen,
        { error: 'invalid_grant', reason: 'id_jag_client_mismatch' },
      );
    });

    test('refuses an expired assertion, and one that lives too long', async () => {
      const expired = await signIdJag({ issuedAt: -600, lifetime: 120 });
      await assertRefused(await presentIdJag(gateway, expired), expired, {
        error: 'invalid_grant',
        reason: 'id_jag_expired',
      });
      const longLived = await signIdJag({ lifetime: 3600 });
      await assertRefused(await presentIdJag(gateway, longLived), longLived, {
        error: 'invalid_grant',
        reason: 'id_jag_lifetime_too_long',
      });
      const fromTheFuture = await signIdJag({ issuedAt: 600, lifetime: 60 });
      await assertRefused(await presentIdJag(gateway, fromTheFuture), fromTheFuture, {
        error: 'invalid_grant',
        reason: 'id_jag_lifetime_too_long',
      });
    });

    test('refuses a replayed assertion', async () => {
      const assertion = await signIdJag();
      assert.equal((await presentIdJag(gateway, assertion)).status, 200);
      await assertRefused(await presentIdJag(gateway, assertion), assertion, {
        error: 'invalid_grant',
        reason: 'id_jag_replayed',
      });
    });

    test('refuses an assertion naming a registered agent as the person', async () => {
      const posing = await signIdJag({ claims: { sub: 'other-bot' } });
      await assertRefused(await presentIdJag(gateway, posing), posing, {
        error: 'invalid_grant',
        reason: 'id_jag_user_is_agent',
      });
    });

    test('refuses an assertion, or a request, for a resource not served here', async () => {
      const elsewhere = await signIdJag({ claims: { resource: 'https://other.example/mcp' } });
      await assertRefused(await presentIdJag(gateway, elsewhere), elsewhere, {
        error: 'invalid_target',
        reason: 'resource_not_served',
      });
      const asked = await signIdJag();
      await assertRefused(
        await presentIdJag(gateway, asked, { form: { resource: 'https://other.example/mcp' } }),
        asked,
        { error: 'invalid_target', reason: 'resource_not_served' },
      );
      // Granted for one endpoint only: the whole gateway may not be asked for.
      const narrow = await signIdJag({ claims: { resource: `${TEST_RESOURCE}/fixture` } });
      await assertRefused(
        await presentIdJag(gateway, narrow, { form: { resource: TEST_RESOURCE } }),
        narrow,
        { error: 'invalid_target', reason: 'resource_not_served' },
      );
    });

    test('refuses a client that does not authenticate, or authenticates wrongly', async () => {
      const bare = await signIdJag();
      await assertRefused(await presentIdJag(gateway, bare, { authorization: null }), bare, {
        error: 'invalid_client',
        status: 401,
        reason: 'no_credentials',
      });
      await assertRefused(
        await presentIdJag(gateway, bare, { authorization: basic('assistant', 'wrong') }),
        bare,
        { error: 'invalid_client', status: 401, reason: 'wrong_secret' },
      );
      // The assertion was never looked at, so it is still good for its rightful client.
      assert.equal((await presentIdJag(gateway, bare)).status, 200);
    });

    test('fails closed when the IdP keys cannot be had', async () => {
      const stranger = await generateKeyPair('ES256');
      const unverifiable = await signIdJag({ claims: { iss: DOWN_IDP }, key: stranger.privateKey });
      const reply = await presentIdJag(gateway, unverifiable);
      assert.equal(reply.headers['retry-after'], '30');
      await assertRefused(reply, unverifiable, {
        error: 'temporarily_unavailable',
        status: 503,
        reason: 'id_jag_keys_unavailable',
      });
    });

    test('refuses a request without an assertion', async () => {
      await assertRefused(await presentIdJag(gateway, undefined), undefined, {
        error: 'invalid_request',
        reason: 'malformed_request',
      });
    });
  });

  test('an assertion spent at one gateway is a replay at another on the same store', async () => {
    const setup = createAuditedSetup('id-jag-second');
    const first = await startTestGateway({ ...setup.config, ...raw });
    let second: TestGateway | undefined;
    const reader = await openAuditReader(setup.storeUrl);
    try {
      second = await startTestGateway({
        ...setup.config,
        ...raw,
        audit: { ...setup.config.audit, stream: 'second' },
      });
      const assertion = await signIdJag();
      const spent = await presentIdJag(first, assertion);
      assert.equal(spent.status, 200, spent.text);
      const replay = await presentIdJag(second, assertion);
      assert.equal(replay.status, 400, replay.text);
      assert.equal(replay.body['error'], 'invalid_grant');
      const records = await reader.recordsUntil(replay.requestId, (r) => r.event === 'auth.failed');
      assert.equal(
        records.find((r) => r.event === 'auth.failed')?.details?.['reason'],
        'id_jag_replayed',
      );
    } finally {
      await second?.close();
      await first.close();
      await reader.close();
      setup.cleanUp();
    }
  });
});

describe('without an enterprise IdP', () => {
  let gateway: TestGateway;

  before(async () => {
    idp = await startTestIdp();
    gateway = await startTestGateway({
      log: { level: 'silent' },
      agents: {
        assistant: { roles: [], secret_hash: await hashClientSecret(ASSISTANT_SECRET) },
      },
      // Never called: the gateway needs an upstream to start.
      upstreams: { fixture: { url: 'http://127.0.0.1:9/mcp' } },
    });
  });

  after(async () => {
    await gateway?.close();
    await idp?.close();
  });

  test('the jwt-bearer grant is unsupported and not advertised', async () => {
    const reply = await presentIdJag(gateway, await signIdJag());
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.body['error'], 'unsupported_grant_type');
    const metadata = (await (
      await fetch(`${gateway.url}/.well-known/oauth-authorization-server`)
    ).json()) as { grant_types_supported: string[] };
    assert.ok(!metadata.grant_types_supported.includes(JWT_BEARER_GRANT_TYPE));
  });
});
