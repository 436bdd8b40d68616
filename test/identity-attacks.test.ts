/**
 * The identity features attacked from outside, with cases their own suites do not list: a
 * certificate the listener refused (revoked by CRL or by serial, expired, outside its CA's trust
 * domain) passing for a self-signed one because its key is also registered; client
 * authentication at the token endpoint mixed and matched; ID-JAGs naming look-alike people or
 * carrying claims Warden must not copy; token exchange for callers whose ids could confuse a
 * cache key; tokens naming an agent they may not.
 */
import assert from 'node:assert/strict';
import { randomUUID, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { AuditRecord } from '../src/domain/audit-record.js';
import type { AgentConfig, TokenExchangeConfig } from '../src/config/config.js';
import { parseConfig } from '../src/config/load.js';
import { issueCertificate } from '../src/identity/certificate-issuer.js';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import { hashPassword } from '../src/identity/login/builtin-users.js';
import { ID_JAG_TYPE } from '../src/identity/id-jag.js';
import { WardenError } from '../src/domain/errors.js';
import { createTokenExchangeSource } from '../src/mcp/upstream/token-exchange.js';
import type { SubjectTokenSigner } from '../src/mcp/upstream/token-exchange-subject.js';
import {
  createAuditedSetup,
  freshSource,
  openAuditReader,
  sendFrom,
  type AuditedSetup,
  type AuditReader,
} from './support/audit-reader.js';
import { startTestGateway, TESTER_ROLE, type TestGateway } from './support/gateway.js';
import {
  answeredWithResult,
  initializeRequest,
  MCP_POST_HEADERS,
  openSession,
  postMcp,
} from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { postMcpTls, sendTls, thumbprintOf } from './support/tls-client.js';
import {
  issueCa,
  issueClient,
  issueCrl,
  issueServer,
  serialOf,
  writeFiles,
  type Pair,
} from './support/tls-pki.js';

const DAY_MS = 86_400_000;
const RESOURCE = 'https://warden.test/mcp';

// ---------------------------------------------------------------------------------------------
// Certificates

const serverCa = issueCa('attack server CA');
const clientCa = issueCa('attack client CA');
const server = issueServer(serverCa);
const TRUST_DOMAIN = 'a.example';

function selfSigned(commonName: string, notBefore: number, notAfter: number): Pair {
  const issued = issueCertificate({
    commonName,
    usage: 'client',
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
  });
  return { cert: issued.certificate, key: issued.privateKey };
}

const spiffe = (name: string, domain = TRUST_DOMAIN) => `spiffe://${domain}/agent/${name}`;

/** Issued by the client CA, then put on its CRL. */
const onCrl = issueClient(clientCa, { commonName: 'on-crl', uris: [spiffe('keyed-bot')] });
/** Issued by the client CA, then revoked by serial (`warden certs revoke`). */
const revokedBySerial = issueClient(clientCa, { commonName: 'by-serial', uris: [spiffe('x')] });
/** Issued by the client CA for a trust domain it may not vouch for. */
const otherDomain = issueClient(clientCa, {
  commonName: 'other-domain',
  uris: [spiffe('keyed-bot', 'b.example')],
});
/** Issued by the client CA, expired yesterday. */
const expiredIssued = issueClient(clientCa, {
  commonName: 'expired-issued',
  uris: [spiffe('y')],
  notBefore: new Date(Date.now() - 3 * DAY_MS),
  notAfter: new Date(Date.now() - DAY_MS),
});
const expiredSelf = selfSigned('expired-self', Date.now() - 3 * DAY_MS, Date.now() - DAY_MS);
const futureSelf = selfSigned('future-self', Date.now() + DAY_MS, Date.now() + 3 * DAY_MS);
/** Self-signed with a registered key, then revoked by serial. */
const selfRevoked = selfSigned('self-revoked', Date.now() - DAY_MS, Date.now() + DAY_MS);
/** Two good self-signed certificates of the same agent. */
const selfA = selfSigned('self-a', Date.now() - DAY_MS, Date.now() + DAY_MS);
const selfB = selfSigned('self-b', Date.now() - DAY_MS, Date.now() + DAY_MS);
/** Self-signed with a registered key, revoked by serial while its connection stays open. */
const selfLater = selfSigned('self-later', Date.now() - DAY_MS, Date.now() + DAY_MS);
/** Two CA certificates of one agent. */
const caBotA = issueClient(clientCa, { commonName: 'ca-bot-a', uris: [spiffe('ca-bot')] });
const caBotB = issueClient(clientCa, { commonName: 'ca-bot-b', uris: [spiffe('ca-bot')] });
const yBot = issueClient(clientCa, { commonName: 'y-bot', uris: [spiffe('y-bot')] });
const secretBot = issueClient(clientCa, { commonName: 'secret-bot', uris: [spiffe('secret-bot')] });
const SECRET = 'secret-bot secret, long enough for a test';

function publicJwkOf(pair: Pair): Record<string, unknown> {
  return new X509Certificate(pair.cert).publicKey.export({ format: 'jwk' }) as Record<
    string,
    unknown
  >;
}

function normalisedSerial(pair: Pair): string {
  return serialOf(pair.cert).toLowerCase().replace(/^0+/, '');
}

describe('certificates the listener refused never stand as self-signed ones', () => {
  let setup: AuditedSetup;
  let gateway: TestGateway;
  let audit: AuditReader;
  let upstream: ScriptedUpstream;
  let agents: ReadonlyMap<string, AgentConfig>;

  before(async () => {
    setup = createAuditedSetup('identity-attacks-tls');
    writeFiles(setup.dir, {
      'server.crt': server.cert,
      'server.key': server.key,
      'clients.crt': clientCa.certificate,
      'clients.crl': issueCrl(clientCa, [serialOf(onCrl.cert)]),
    });
    upstream = await startScriptedUpstream();
    const raw = {
      ...setup.config,
      log: { level: 'silent' },
      listen: {
        host: '127.0.0.1',
        port: 0,
        tls: {
          cert: join(setup.dir, 'server.crt'),
          key: join(setup.dir, 'server.key'),
          client_ca: [{ file: join(setup.dir, 'clients.crt'), trust_domains: [TRUST_DOMAIN] }],
          crl: join(setup.dir, 'clients.crl'),
          client_certificates: 'optional',
        },
      },
      auth: { resource: RESOURCE, issuers: [{ builtin: {} }], mtls: true },
      agents: {
        'test-agent': { roles: ['tester'] },
        // Every refused certificate's key is registered too: only the refusal stands between.
        'keyed-bot': {
          roles: ['tester'],
          jwks: {
            keys: [
              onCrl,
              revokedBySerial,
              otherDomain,
              expiredIssued,
              expiredSelf,
              futureSelf,
              selfRevoked,
              selfA,
              selfB,
              selfLater,
            ].map(publicJwkOf),
          },
        },
        'ca-bot': { roles: ['tester'], mtls_identity: spiffe('ca-bot') },
        'y-bot': { roles: ['tester'], mtls_identity: spiffe('y-bot') },
        // x-bot registered y-bot's key (a mistake, or an attacker's registration).
        'x-bot': { roles: ['tester'], jwks: { keys: [publicJwkOf(yBot)] } },
        'secret-bot': {
          roles: ['tester'],
          mtls_identity: spiffe('secret-bot'),
          secret_hash: await hashClientSecret(SECRET),
        },
      },
      roles: { tester: TESTER_ROLE },
      upstreams: { fixture: { url: upstream.url } },
    };
    gateway = await startTestGateway(raw);
    agents = parseConfig(raw, 'test').agents;
    audit = await openAuditReader(setup.storeUrl);
    for (const pair of [revokedBySerial, selfRevoked]) {
      await gateway.revoke({
        kind: 'certificate',
        subject: normalisedSerial(pair),
        revokedAt: Date.now(),
        expiresAt: Date.now() + DAY_MS,
        reason: 'stolen',
        revokedBy: 'test',
      });
    }
  });

  after(async () => {
    await gateway?.close();
    await audit?.close();
    await upstream?.close();
    setup?.cleanUp();
  });

  function requestTokenWith(
    client: Pair | undefined,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ) {
    return sendTls(`${gateway.url}/oauth/token`, {
      ca: serverCa.certificate,
      client,
      localAddress: freshSource(),
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...form }).toString(),
    });
  }

  async function refusalOf(reply: { headers: Record<string, unknown> }): Promise<AuditRecord> {
    const requestId = String(reply.headers['x-request-id']);
    const records = await audit.recordsUntil(requestId, (r) => r.event === 'auth.failed');
    const record = records.find((r) => r.event === 'auth.failed');
    assert.ok(record, `no auth.failed record for ${requestId}`);
    return record;
  }

  /** A token for `agent` bound to `pair`, as one obtained before the certificate was refused. */
  async function boundToken(agent: string, pair: Pair): Promise<string> {
    const registered = agents.get(agent);
    assert.ok(gateway.issuer && registered);
    const issued = await gateway.issuer.issueToken({
      agent: registered,
      certificateThumbprint: thumbprintOf(pair.cert),
    });
    return issued.token;
  }

  function initialize(client: Pair | undefined, token: string | undefined) {
    return postMcpTls(`${gateway.url}/mcp/fixture`, serverCa.certificate, initializeRequest(), {
      client,
      token,
    });
  }

  const refused: readonly [string, Pair, string][] = [
    ['on its CA’s CRL', onCrl, 'certificate_revoked'],
    ['revoked by serial', revokedBySerial, 'certificate_revoked'],
    ['outside its CA’s trust domain', otherDomain, 'certificate_trust_domain'],
    ['CA-issued and expired', expiredIssued, 'certificate_expired'],
    ['self-signed and expired', expiredSelf, 'certificate_untrusted'],
    ['self-signed and not yet valid', futureSelf, 'certificate_untrusted'],
    ['self-signed and revoked by serial', selfRevoked, 'certificate_revoked'],
  ];

  for (const [what, pair] of refused) {
    test(`a certificate ${what}, its key registered, gets no token by self_signed_tls_client_auth`, async () => {
      const reply = await requestTokenWith(pair, { client_id: 'keyed-bot' });
      assert.equal(reply.status, 401, reply.text);
      assert.equal((JSON.parse(reply.text) as Record<string, unknown>)['error'], 'invalid_client');
      // Recorded as the certificate refused, never as a request without credentials.
      const record = await refusalOf(reply);
      assert.equal(record.agent, 'keyed-bot');
      assert.equal(record.details?.['reason'], 'certificate_untrusted');
    });
  }

  test('a good self-signed certificate with a registered key still gets a bound token', async () => {
    const reply = await requestTokenWith(selfA, { client_id: 'keyed-bot' });
    assert.equal(reply.status, 200, reply.text);
    const token = String((JSON.parse(reply.text) as Record<string, unknown>)['access_token']);
    const cnf = decodeJwt(token)['cnf'] as Record<string, string> | undefined;
    assert.equal(cnf?.['x5t#S256'], thumbprintOf(selfA.cert));
    assert.equal((await initialize(selfA, token)).status, 200);
    // Bound to A: certificate B of the same agent, its key registered as well, does not do.
    const withB = await initialize(selfB, token);
    assert.equal(withB.status, 401, withB.text);
  });

  for (const [what, pair] of refused) {
    test(`a token bound to a certificate ${what} is refused with that certificate at /mcp`, async () => {
      const token = await boundToken('keyed-bot', pair);
      const reply = await initialize(pair, token);
      assert.equal(reply.status, 401, reply.text);
    });
  }

  test('a self-signed certificate revoked by serial stops counting on its open connection', async () => {
    const agent = new HttpsAgent({
      keepAlive: true,
      maxSockets: 1,
      ca: serverCa.certificate,
      cert: selfLater.cert,
      key: selfLater.key,
    });
    try {
      const tokenReply = await sendOver(
        agent,
        '/oauth/token',
        {
          'content-type': 'application/x-www-form-urlencoded',
        },
        'grant_type=client_credentials&client_id=keyed-bot',
      );
      assert.equal(tokenReply.status, 200, tokenReply.text);
      const token = String(
        (JSON.parse(tokenReply.text) as Record<string, unknown>)['access_token'],
      );
      await gateway.revoke({
        kind: 'certificate',
        subject: normalisedSerial(selfLater),
        revokedAt: Date.now(),
        expiresAt: Date.now() + DAY_MS,
        reason: 'stolen',
        revokedBy: 'test',
      });
      const used = await sendOver(
        agent,
        '/mcp/fixture',
        { ...MCP_POST_HEADERS, authorization: `Bearer ${token}` },
        JSON.stringify(initializeRequest()),
      );
      assert.equal(used.reused, true, 'the same connection');
      assert.equal(used.status, 401, used.text);
    } finally {
      agent.destroy();
    }
  });

  /** One request over `agent` (keep-alive): whether it went over a connection already open. */
  function sendOver(
    agent: HttpsAgent,
    path: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<{ status: number; text: string; reused: boolean }> {
    return new Promise((resolve, reject) => {
      const outgoing = httpsRequest(
        `${gateway.url}${path}`,
        {
          agent,
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, text, reused: outgoing.reusedSocket }),
          );
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  test('a token bound to one CA certificate of an agent is refused with its other one', async () => {
    const reply = await requestTokenWith(caBotA, { client_id: 'ca-bot' });
    assert.equal(reply.status, 200, reply.text);
    const token = String((JSON.parse(reply.text) as Record<string, unknown>)['access_token']);
    assert.equal((await initialize(caBotA, token)).status, 200);
    const withB = await initialize(caBotB, token);
    assert.equal(withB.status, 401, withB.text);
    assert.match(String(withB.headers['www-authenticate']), /invalid_token/);
  });

  test('a verified certificate of y-bot does not authenticate x-bot, though x-bot registered its key', async () => {
    const reply = await requestTokenWith(yBot, { client_id: 'x-bot' });
    assert.equal(reply.status, 401, reply.text);
    assert.equal((await refusalOf(reply)).details?.['reason'], 'certificate_mismatch');
  });

  test('client_id in the body and another in Basic is refused, with a certificate too', async () => {
    const basic = `Basic ${Buffer.from(`secret-bot:${SECRET}`).toString('base64')}`;
    const reply = await requestTokenWith(
      secretBot,
      { client_id: 'ca-bot' },
      { authorization: basic },
    );
    assert.equal(reply.status, 401, reply.text);
    assert.equal((await refusalOf(reply)).details?.['reason'], 'malformed_credentials');
  });

  test('client_id given twice in the body is refused', async () => {
    const reply = await sendTls(`${gateway.url}/oauth/token`, {
      ca: serverCa.certificate,
      client: caBotA,
      localAddress: freshSource(),
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=ca-bot&client_id=y-bot',
    });
    assert.equal(reply.status, 400, reply.text);
    assert.equal((JSON.parse(reply.text) as Record<string, unknown>)['error'], 'invalid_request');
  });

  test('a refused certificate beside a correct secret is refused, not ignored for an unbound token', async () => {
    for (const pair of [onCrl, revokedBySerial, otherDomain, expiredIssued]) {
      const reply = await requestTokenWith(pair, {
        client_id: 'secret-bot',
        client_secret: SECRET,
      });
      assert.equal(reply.status, 401, reply.text);
      assert.equal((await refusalOf(reply)).details?.['reason'], 'certificate_untrusted');
    }
    // The same secret over the agent's own good certificate: a token bound to it.
    const good = await requestTokenWith(secretBot, {
      client_id: 'secret-bot',
      client_secret: SECRET,
    });
    assert.equal(good.status, 200, good.text);
    const token = String((JSON.parse(good.text) as Record<string, unknown>)['access_token']);
    assert.equal(
      (decodeJwt(token)['cnf'] as Record<string, string> | undefined)?.['x5t#S256'],
      thumbprintOf(secretBot.cert),
    );
  });

  test('a wrong secret is refused even over a connection with the agent’s own certificate', async () => {
    const reply = await requestTokenWith(secretBot, {
      client_id: 'secret-bot',
      client_secret: 'not the secret',
    });
    assert.equal(reply.status, 401, reply.text);
    assert.equal((await refusalOf(reply)).details?.['reason'], 'wrong_secret');
    const basic = `Basic ${Buffer.from('secret-bot:not the secret').toString('base64')}`;
    const viaBasic = await requestTokenWith(secretBot, {}, { authorization: basic });
    assert.equal(viaBasic.status, 401, viaBasic.text);
    assert.equal((await refusalOf(viaBasic)).details?.['reason'], 'wrong_secret');
  });
});

// ---------------------------------------------------------------------------------------------
// ID-JAG

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ASSISTANT_SECRET = 'assistant-secret-0123456789';

/** An enterprise IdP on 127.0.0.1: its JWKS, and the key it signs ID-JAGs with. */
async function startIdp(): Promise<{ issuer: string; key: CryptoKey; close(): Promise<void> }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'idp', alg: 'ES256', use: 'sig' };
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ keys: [jwk] }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    issuer: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    key: privateKey,
    close: () => closeServer(server),
  };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
}

describe('ID-JAGs naming look-alike people, carrying foreign claims, or tricky resources', () => {
  let idp: Awaited<ReturnType<typeof startIdp>>;
  let gateway: TestGateway;
  let upstream: ScriptedUpstream;
  const issuer = new URL(RESOURCE).origin;

  before(async () => {
    idp = await startIdp();
    upstream = await startScriptedUpstream();
    gateway = await startTestGateway({
      log: { level: 'silent' },
      auth: {
        resource: RESOURCE,
        issuers: [{ builtin: {} }],
        required_scopes: ['mcp:tools'],
        enterprise: {
          id_jag: [
            {
              issuer: idp.issuer,
              jwks_uri: `${idp.issuer}/keys`,
              roles_by_group: { staff: ['clerk'] },
            },
          ],
        },
        login: {
          agent: 'assistant',
          users: {
            alice: { password_hash: await hashPassword('alice password 1234'), roles: ['root'] },
          },
        },
      },
      roles: {
        clerk: { grants: [{ tool: 'fixture.echo' }] },
        root: { trusted: true, grants: [{ tool: '*' }] },
      },
      agents: {
        assistant: {
          roles: ['clerk', 'root'],
          scopes: ['payments:read'],
          secret_hash: await hashClientSecret(ASSISTANT_SECRET),
        },
        'other-bot': { roles: ['root'] },
      },
      upstreams: { fixture: { url: upstream.url } },
    });
  });

  after(async () => {
    await gateway?.close();
    await upstream?.close();
    await idp?.close();
  });

  async function signIdJag(claims: Record<string, unknown> = {}): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    const all: Record<string, unknown> = {
      iss: idp.issuer,
      sub: 'bob@example.com',
      aud: issuer,
      client_id: 'assistant',
      jti: randomUUID(),
      iat,
      exp: iat + 120,
      resource: RESOURCE,
      scope: 'mcp:tools',
      ...claims,
    };
    return new SignJWT(Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)))
      .setProtectedHeader({ alg: 'ES256', kid: 'idp', typ: ID_JAG_TYPE })
      .sign(idp.key);
  }

  async function present(assertion: string, form: Record<string, string> = {}) {
    const reply = await sendFrom(freshSource(), `${gateway.url}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`assistant:${ASSISTANT_SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, ...form }).toString(),
    });
    return { status: reply.status, body: JSON.parse(reply.text) as Record<string, unknown> };
  }

  test('the configured user alice gets her built-in roles (the control)', async () => {
    const reply = await present(await signIdJag({ sub: 'alice' }));
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const claims = decodeJwt(String(reply.body['access_token']));
    assert.equal(claims.sub, 'alice');
    assert.deepEqual(claims['roles'], ['root']);
  });

  const lookAlikes = [
    'Alice',
    'ALICE',
    'alice ',
    ' alice',
    'alice\t',
    'alice\n',
    'alice\u200b',
    '\u0430lice', // Cyrillic a
    'ａｌｉｃｅ', // fullwidth
    'alice\u0000',
  ];
  for (const sub of lookAlikes) {
    test(`an ID-JAG naming ${JSON.stringify(sub)} never gets alice’s built-in roles`, async () => {
      const reply = await present(await signIdJag({ sub }));
      if (reply.status !== 200) {
        assert.equal(reply.body['error'], 'invalid_grant');
        return;
      }
      const claims = decodeJwt(String(reply.body['access_token']));
      assert.notEqual(claims.sub, 'alice');
      assert.ok(
        !(claims['roles'] as string[] | undefined)?.includes('root'),
        String(claims['roles']),
      );
    });
  }

  test('user ids with surrounding white space or control characters are refused, not issued', async () => {
    for (const sub of ['alice ', ' alice', 'alice\n', 'alice\u0000', 'alice\u200b']) {
      const reply = await present(await signIdJag({ sub }));
      assert.equal(reply.status, 400, `${JSON.stringify(sub)}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body['error'], 'invalid_grant');
    }
  });

  test('roles, warden_agent, act and cnf in an ID-JAG are ignored, never copied', async () => {
    const reply = await present(
      await signIdJag({
        roles: ['root'],
        warden_agent: 'other-bot',
        act: { sub: 'other-bot' },
        cnf: { 'x5t#S256': 'A'.repeat(43) },
        azp: 'other-bot',
        groups: ['staff'],
      }),
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const claims = decodeJwt(String(reply.body['access_token']));
    assert.equal(claims.sub, 'bob@example.com');
    assert.deepEqual(claims['roles'], ['clerk']);
    assert.equal(claims['warden_agent'], 'assistant');
    assert.equal(claims['client_id'], 'assistant');
    assert.deepEqual(claims['act'], { sub: 'assistant' });
    assert.equal(claims['cnf'], undefined);
    assert.equal(claims['azp'], undefined);
  });

  const resources: readonly [string, string | undefined][] = [
    [`${RESOURCE}/../mcp/fixture`, `${RESOURCE}/fixture`],
    [`${RESOURCE}/`, RESOURCE],
    ['https://WARDEN.TEST/mcp', RESOURCE],
    ['https://warden.test:443/mcp', RESOURCE],
    ['https://warden.test/%6Dcp', undefined],
    [`${RESOURCE}/fixture/../../admin`, undefined],
    ['http://warden.test/mcp', undefined],
    ['https://evil@warden.test/mcp', undefined],
    [`${RESOURCE}?x=1`, undefined],
    [`${RESOURCE}#x`, undefined],
  ];
  for (const [resource, audience] of resources) {
    test(`an ID-JAG for ${resource} is ${audience === undefined ? 'refused' : `for ${audience}`}`, async () => {
      const reply = await present(await signIdJag({ resource }));
      if (audience === undefined) {
        assert.equal(reply.status, 400, JSON.stringify(reply.body));
        assert.equal(reply.body['error'], 'invalid_target');
        return;
      }
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      const claims = decodeJwt(String(reply.body['access_token']));
      assert.deepEqual([claims.aud].flat(), [audience]);
    });
  }

  test('a request never widens an ID-JAG granted for one endpoint, however it spells the gateway', async () => {
    for (const resource of [
      RESOURCE,
      `${RESOURCE}/`,
      'https://WARDEN.TEST/mcp',
      `${RESOURCE}/x/..`,
    ]) {
      const reply = await present(await signIdJag({ resource: `${RESOURCE}/fixture` }), {
        resource,
      });
      assert.equal(reply.status, 400, `${resource}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body['error'], 'invalid_target');
    }
    const narrow = await present(await signIdJag({ resource: `${RESOURCE}/fixture` }), {
      resource: 'https://WARDEN.test/mcp/x/../fixture',
    });
    assert.equal(narrow.status, 200, JSON.stringify(narrow.body));
    assert.equal(decodeJwt(String(narrow.body['access_token'])).aud, `${RESOURCE}/fixture`);
  });

  test('an encoded slash in the resource names no endpoint the token can be used at', async () => {
    const reply = await present(
      await signIdJag({ resource: `${RESOURCE}/fixture%2F..%2F..%2Fadmin` }),
    );
    if (reply.status !== 200) return;
    const token = String(reply.body['access_token']);
    const used = await postMcp(`${gateway.url}/mcp/fixture`, initializeRequest(), {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(used.status, 401, used.text);
    assert.match(used.text, /"reason":"audience_mismatch"/);
  });

  test('scopes with odd white space are refused, in the request and in the assertion', async () => {
    for (const scope of [
      'mcp:tools\tpayments:read',
      ' mcp:tools',
      'mcp:tools  payments:read',
      'mcp:tools\u00a0payments:read',
      'mcp:tools\n',
    ]) {
      const asked = await present(await signIdJag({ scope: 'mcp:tools payments:read' }), { scope });
      assert.equal(asked.status, 400, `${JSON.stringify(scope)}: ${JSON.stringify(asked.body)}`);
      const granted = await present(await signIdJag({ scope }));
      assert.equal(
        granted.status,
        400,
        `${JSON.stringify(scope)}: ${JSON.stringify(granted.body)}`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Token exchange

const EXCHANGE_SECRET_ENV = 'WARDEN_TEST_ATTACK_EXCHANGE_SECRET';

/** An authorization server whose answer the test writes; it records every subject it saw. */
interface ScriptedAuthorizationServer {
  readonly tokenEndpoint: string;
  readonly subjects: Record<string, unknown>[];
  /** The answer to the next requests: status and body (a function of the request's number). */
  answer: (count: number) => { status: number; body: string };
  close(): Promise<void>;
}

/** A good answer: a new Bearer token, for five minutes. */
function answerWithToken(count: number): { status: number; body: string } {
  return {
    status: 200,
    body: JSON.stringify({
      access_token: `exchanged-${count}`,
      token_type: 'Bearer',
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      expires_in: 300,
    }),
  };
}

async function startScriptedAuthorizationServer(): Promise<ScriptedAuthorizationServer> {
  const subjects: Record<string, unknown>[] = [];
  const state: ScriptedAuthorizationServer = {
    tokenEndpoint: '',
    subjects,
    answer: answerWithToken,
    close: () => closeServer(server),
  };
  const server: Server = createServer((request: IncomingMessage, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      const subject = new URLSearchParams(text).get('subject_token');
      subjects.push(subject === null ? {} : decodeJwt(subject));
      const { status, body } = state.answer(subjects.length);
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(state, {
    tokenEndpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
  });
}

describe('token exchange for callers whose ids could confuse it', () => {
  let as: ScriptedAuthorizationServer;
  let signer: SubjectTokenSigner;
  let config: TokenExchangeConfig;

  before(async () => {
    process.env[EXCHANGE_SECRET_ENV] = 'exchange secret';
    as = await startScriptedAuthorizationServer();
    const { privateKey } = await generateKeyPair('ES256');
    signer = {
      issuer: 'https://warden.test',
      currentKey: () => Promise.resolve({ kid: 'k', algorithm: 'ES256', privateKey }),
    };
    config = {
      kind: 'token_exchange',
      tokenEndpoint: as.tokenEndpoint,
      audience: 'https://people.test',
      resource: undefined,
      scopes: [],
      clientId: 'warden',
      clientSecretEnv: EXCHANGE_SECRET_ENV,
      subjectTokenAudience: 'https://as.test',
      subjectTokenTtlMs: 60_000,
      refreshBeforeMs: 30_000,
      cacheSize: 100,
      timeoutMs: 5000,
    } as TokenExchangeConfig;
  });

  after(async () => {
    await as?.close();
    delete process.env[EXCHANGE_SECRET_ENV];
  });

  test('callers whose parts could run together each get their own exchange, naming them exactly', async () => {
    const source = createTokenExchangeSource(config, { signer });
    const callers = [
      { user: 'alice|agent', agent: 'bot', delegation: [] },
      { user: 'alice', agent: 'agent|bot', delegation: [] },
      { user: 'alice bot', agent: 'x', delegation: [] },
      { user: 'alice', agent: 'bot x', delegation: [] },
      { user: 'alice', agent: 'bot', delegation: ['x'] },
      { user: 'alice', agent: 'bot x', delegation: [] },
      { user: undefined, agent: 'alice', delegation: [] },
      { user: 'alice\nwarden_agent: admin', agent: 'bot', delegation: [] },
      { user: 'alice', agent: 'bot', delegation: [] },
      { user: '=alice', agent: 'bot', delegation: [] },
      { user: 'a'.repeat(5000), agent: 'bot', delegation: [] },
      { user: 'a'.repeat(5000), agent: 'bot2', delegation: [] },
    ];
    const distinct = new Map(callers.map((caller) => [JSON.stringify(caller), caller]));
    const before = as.subjects.length;
    const tokens = new Map<string, string>();
    for (const [key, caller] of distinct) tokens.set(key, await source.tokenFor(caller));
    assert.equal(new Set(tokens.values()).size, distinct.size, 'no two callers share a token');
    assert.equal(as.subjects.length - before, distinct.size);
    for (const [index, caller] of [...distinct.values()].entries()) {
      const subject = as.subjects[before + index];
      assert.equal(subject?.['sub'], caller.user ?? caller.agent);
      assert.equal(subject?.['warden_agent'], caller.agent);
    }
    // And each is served its own from the cache, without another exchange.
    for (const [key, caller] of distinct)
      assert.equal(await source.tokenFor(caller), tokens.get(key));
    assert.equal(as.subjects.length - before, distinct.size);
  });

  test('two agents acting for one person never share an exchanged token', async () => {
    const source = createTokenExchangeSource(config, { signer });
    const viaA = await source.tokenFor({ user: 'carol', agent: 'bot-a', delegation: [] });
    const viaB = await source.tokenFor({ user: 'carol', agent: 'bot-b', delegation: [] });
    const viaApp = await source.tokenFor({ user: 'carol', agent: 'bot-a', delegation: ['app'] });
    assert.equal(new Set([viaA, viaB, viaApp]).size, 3);
  });

  /** The failure of one exchange answered with `body`, checked to name no token. */
  async function failureFor(body: string, status = 200): Promise<WardenError> {
    as.answer = () => ({ status, body });
    const source = createTokenExchangeSource(config, { signer });
    try {
      await source.tokenFor({ user: `u-${randomUUID()}`, agent: 'bot', delegation: [] });
    } catch (error) {
      assert.ok(error instanceof WardenError, String(error));
      assert.equal(error.code, 'WARDEN_UPSTREAM_CREDENTIAL_FAILED');
      const seen = JSON.stringify({ message: error.message, details: error.details });
      assert.ok(!seen.includes('secret-upstream-token'), `the token leaked: ${seen}`);
      return error;
    } finally {
      as.answer = answerWithToken;
    }
    assert.fail('the exchange was accepted');
  }

  const token = 'secret-upstream-token';
  const answers: readonly [string, string, number?][] = [
    [
      'token_type DPoP',
      JSON.stringify({ access_token: token, token_type: 'DPoP', expires_in: 300 }),
    ],
    ['token_type N_A', JSON.stringify({ access_token: token, token_type: 'N_A', expires_in: 300 })],
    ['no token_type', JSON.stringify({ access_token: token, expires_in: 300 })],
    ['expires_in 0', JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 0 })],
    [
      'expires_in -60',
      JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: -60 }),
    ],
    [
      'expires_in as text',
      JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: '300' }),
    ],
    [
      'issued_token_type refresh_token',
      JSON.stringify({
        access_token: token,
        token_type: 'Bearer',
        issued_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
      }),
    ],
    [
      'a token with a line break',
      JSON.stringify({ access_token: `${token}\r\nx-evil: 1`, token_type: 'Bearer' }),
    ],
    ['an error echoing the token', JSON.stringify({ error: `invalid_grant ${token}` }), 400],
    [
      'a 2 MB body',
      JSON.stringify({ access_token: token, token_type: 'Bearer', pad: 'x'.repeat(2_000_000) }),
    ],
  ];
  for (const [what, body, status] of answers) {
    test(`an authorization server answering with ${what} fails the exchange, naming no token`, async () => {
      await failureFor(body, status);
    });
  }

  test('a token that expires before it could be refreshed is used once, never cached', async () => {
    as.answer = (count) => ({
      status: 200,
      body: JSON.stringify({ access_token: `short-${count}`, token_type: 'Bearer', expires_in: 1 }),
    });
    try {
      const source = createTokenExchangeSource(config, { signer });
      const caller = { user: 'dave', agent: 'bot', delegation: [] };
      const first = await source.tokenFor(caller);
      const second = await source.tokenFor(caller);
      assert.notEqual(first, second);
    } finally {
      as.answer = answerWithToken;
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Tokens naming an agent they may not

describe('tokens that name an agent they may not act as', () => {
  let idp: Awaited<ReturnType<typeof startIdp>>;
  let gateway: TestGateway;
  let upstream: ScriptedUpstream;
  let agents: ReadonlyMap<string, AgentConfig>;

  before(async () => {
    idp = await startIdp();
    upstream = await startScriptedUpstream();
    upstream.tools = ['echo', 'wipe'];
    const raw = {
      log: { level: 'silent' },
      auth: {
        resource: RESOURCE,
        issuers: [{ builtin: {} }, { issuer: idp.issuer, jwks_uri: `${idp.issuer}/keys` }],
      },
      roles: {
        clerk: { grants: [{ tool: 'fixture.echo' }] },
        root: { trusted: true, grants: [{ tool: '*' }] },
      },
      agents: {
        'test-agent': { roles: ['clerk'] },
        'clerk-bot': { roles: ['clerk'], client_ids: ['ext-clerk'] },
        'root-bot': { roles: ['root', 'clerk'] },
      },
      upstreams: { fixture: { url: upstream.url } },
    };
    gateway = await startTestGateway(raw);
    agents = parseConfig({ store: 'sqlite::memory:', ...raw }, 'test').agents;
  });

  after(async () => {
    await gateway?.close();
    await upstream?.close();
    await idp?.close();
  });

  async function externalToken(claims: Record<string, unknown>): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      aud: RESOURCE,
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
      warden_env: 'development',
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp', typ: 'at+jwt' })
      .setIssuer(idp.issuer)
      .sign(idp.key);
  }

  /** Whether `tool` at /mcp/fixture is called (true) or refused (false) with this token. */
  async function calls(token: string, tool: string): Promise<boolean> {
    const url = `${gateway.url}/mcp/fixture`;
    const headers = { authorization: `Bearer ${token}` };
    const sessionId = await openSession(url, headers);
    const reply = await postMcp(
      url,
      { jsonrpc: '2.0', id: 'call', method: 'tools/call', params: { name: tool, arguments: {} } },
      { sessionId, headers },
    );
    return answeredWithResult(reply, 'call');
  }

  test('an external token’s warden_agent is ignored: a client id no agent has is refused', async () => {
    const token = await externalToken({
      sub: 'mallory',
      client_id: 'nobody',
      warden_agent: 'root-bot',
    });
    const reply = await postMcp(`${gateway.url}/mcp/fixture`, initializeRequest(), {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(reply.status, 401, reply.text);
    assert.match(reply.text, /"reason":"agent_unknown"/);
  });

  test('an external token acts as the agent of its client id, whatever warden_agent and roles say', async () => {
    const token = await externalToken({
      sub: 'mallory',
      client_id: 'ext-clerk',
      warden_agent: 'root-bot',
    });
    assert.equal(await calls(token, 'echo'), true);
    assert.equal(await calls(token, 'wipe'), false);
  });

  test('a built-in person token never acts with a role its agent lacks, whatever roles it names', async () => {
    const clerkBot = agents.get('clerk-bot');
    assert.ok(gateway.issuer && clerkBot);
    const { token } = await gateway.issuer.issueToken({
      agent: clerkBot,
      user: 'alice',
      app: { clientId: 'https://app.example/client.json', roles: ['root', 'clerk'] },
    });
    assert.equal(decodeJwt(token)['warden_agent'], 'clerk-bot');
    assert.equal(await calls(token, 'echo'), true);
    assert.equal(await calls(token, 'wipe'), false);
  });
});
