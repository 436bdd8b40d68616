// On-behalf-of credentials (RFC 8693), end to end: a real authorization server (oidc-provider)
// exchanges a subject token Warden signs — naming the person, or the agent — for an access token
// to one upstream, after checking it against Warden's published keys; a real MCP upstream checks
// that token against the authorization server's keys and answers with the `sub` it names. The
// client's own token never travels upstream; one exchange serves a caller's calls until its token
// nears expiry; every way the exchange can fail refuses the call (fail closed), on the record,
// with nothing sent upstream.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import type { AgentConfig, TokenExchangeConfig } from '../src/config/config.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/domain/errors.js';
import { createTokenExchangeSource } from '../src/mcp/upstream/token-exchange.js';
import type { SubjectTokenSigner } from '../src/mcp/upstream/token-exchange-subject.js';
import { referenceOf, startAuditedGateway, type AuditedGateway } from './support/audit-reader.js';
import { TEST_AGENT, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import {
  answerIn,
  initializeRequest,
  modernRequest,
  postMcp,
  sendRaw,
  type RawReply,
} from './support/raw-http.js';
import {
  ACCESS_TOKEN_TYPE,
  JWT_TOKEN_TYPE,
  startTokenExchangeServer,
  type TokenExchangeServer,
} from './support/token-exchange-server.js';

const AUDIENCE = 'https://people.upstream.test';
const SCOPE = 'people.read';
const CLIENT_ID = 'warden-gateway';
const SECRET_ENV = 'WARDEN_TEST_EXCHANGE_SECRET';
const SECRET = 'exchange-secret-for-tests-only-5b1e9c';
const WRONG_SECRET_ENV = 'WARDEN_TEST_EXCHANGE_WRONG_SECRET';
const TOKEN_TTL_SECONDS = 300;
const CREDENTIAL_FAILED = 'WARDEN_UPSTREAM_CREDENTIAL_FAILED';
const APP_ROLES = ['tester'];

/** What the upstream saw: every request's Authorization header, and the calls it let through. */
interface PeopleUpstream {
  readonly url: string;
  readonly authorizations: (string | undefined)[];
  /** The verified token's claims of every message it accepted, with the method. */
  readonly accepted: { readonly method: string | undefined; readonly claims: JWTPayload }[];
  close(): Promise<void>;
}

let authorizationServer: TokenExchangeServer;
let upstream: PeopleUpstream;
let malformedServer: Server;
let audited: AuditedGateway;
let gateway: TestGateway;

/** An MCP upstream that admits only access tokens the authorization server issued for it. */
async function startPeopleUpstream(server: TokenExchangeServer): Promise<PeopleUpstream> {
  const keys = createRemoteJWKSet(new URL(server.jwksUri));
  const authorizations: (string | undefined)[] = [];
  const accepted: PeopleUpstream['accepted'] = [];
  const http = createServer((request, response) => {
    void (async () => {
      authorizations.push(request.headers.authorization);
      const body = await readJson(request);
      const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(bearer ?? '', keys, {
          issuer: server.issuer,
          audience: AUDIENCE,
          typ: 'at+jwt',
        }));
      } catch {
        response.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
        return;
      }
      accepted.push({ method: (body as { method?: string } | undefined)?.method, claims });
      const mcp = new McpServer({ name: 'people', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'Says whom the token names.' }, () => ({
        content: [{ type: 'text', text: JSON.stringify({ sub: claims.sub, act: claims['act'] }) }],
      }));
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
      response.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(request, response, body);
    })().catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    authorizations,
    accepted,
    close: async () => {
      http.closeAllConnections();
      http.close();
      await once(http, 'close');
    },
  };
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}

function exchangeCredential(overrides: Record<string, unknown> = {}) {
  return {
    token_exchange: {
      token_endpoint: authorizationServer.tokenEndpoint,
      audience: AUDIENCE,
      scopes: [SCOPE],
      client_id: CLIENT_ID,
      client_secret_env: SECRET_ENV,
      ...overrides,
    },
  };
}

before(async () => {
  process.env[SECRET_ENV] = SECRET;
  process.env[WRONG_SECRET_ENV] = 'not-the-secret';
  authorizationServer = await startTokenExchangeServer({
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    audience: AUDIENCE,
    scopes: [SCOPE],
    accessTokenTtlSeconds: TOKEN_TTL_SECONDS,
  });
  upstream = await startPeopleUpstream(authorizationServer);
  // An authorization server that answers 200 with no token in it.
  malformedServer = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ token_type: 'Bearer', expires_in: 300 }));
  });
  malformedServer.listen(0, '127.0.0.1');
  await once(malformedServer, 'listening');
  const malformedPort = (malformedServer.address() as AddressInfo).port;
  const deadPort = await closedPort();
  audited = await startAuditedGateway('token-exchange', {
    upstreams: {
      people: { url: upstream.url, credential: exchangeCredential() },
      // Never kept: each call is exchanged anew, so a refusal can come mid-session.
      uncached: { url: upstream.url, credential: exchangeCredential({ refresh_before: '10m' }) },
      unreachable: {
        url: upstream.url,
        credential: exchangeCredential({
          token_endpoint: `http://127.0.0.1:${deadPort}/token`,
          timeout: '5s',
        }),
      },
      wrong_secret: {
        url: upstream.url,
        credential: exchangeCredential({ client_secret_env: WRONG_SECRET_ENV }),
      },
      malformed: {
        url: upstream.url,
        credential: exchangeCredential({
          token_endpoint: `http://127.0.0.1:${malformedPort}/token`,
        }),
      },
    },
  });
  gateway = audited.gateway;
  assert.ok(gateway.issuer, 'the test gateway runs the built-in issuer');
  // The authorization server trusts Warden's subject tokens, checked against its published keys.
  authorizationServer.trustedIssuers.set(
    gateway.issuer.issuer,
    createRemoteJWKSet(new URL(`${gateway.url}/.well-known/jwks.json`)),
  );
});

after(async () => {
  await audited?.close();
  await upstream?.close();
  await authorizationServer?.close();
  if (malformedServer) {
    malformedServer.close();
    await once(malformedServer, 'close');
  }
  delete process.env[SECRET_ENV];
  delete process.env[WRONG_SECRET_ENV];
});

const TEST_AGENT_CONFIG: AgentConfig = {
  id: TEST_AGENT,
  roles: ['tester'],
  tenant: undefined,
  clientIds: [],
  secretHash: undefined,
  jwks: undefined,
  mtlsIdentity: undefined,
};

/** A token the built-in issuer mints for an app acting for `user`, as after their login. */
async function personToken(user: string, app = 'app'): Promise<string> {
  assert.ok(gateway.issuer);
  const issued = await gateway.issuer.issueToken({
    agent: TEST_AGENT_CONFIG,
    user,
    app: { clientId: app, roles: APP_ROLES },
  });
  return issued.token;
}

async function connect(upstreamName: string, token: string): Promise<Client> {
  const client = new Client({ name: 'token-exchange-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gateway.endpoint(upstreamName)), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

async function whoami(client: Client): Promise<{ sub: string; act: unknown }> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const [content] = result.content as { type: string; text: string }[];
  assert.equal(content?.type, 'text');
  return JSON.parse(content.text) as { sub: string; act: unknown };
}

function exchangesFor(subject: string) {
  return authorizationServer.exchanges.filter((exchange) => exchange.subject?.sub === subject);
}

/** No part of the client's token (its signature above all) in any header the upstream saw. */
function assertTokenNeverReachedUpstream(clientToken: string): void {
  const parts = clientToken.split('.').filter((part) => part.length >= 16);
  assert.equal(parts.length, 3);
  for (const authorization of upstream.authorizations) {
    for (const part of parts)
      assert.ok(!String(authorization).includes(part), "the client's token reached the upstream");
  }
}

/** The refusal of a raw initialize: in band, with the code, and the reference on the record. */
async function assertRefusedOnRecord(
  reply: RawReply,
  reason: string,
): Promise<{ data: Record<string, unknown> }> {
  assert.equal(reply.status, 200, reply.text);
  const answer = answerIn(reply, 'init');
  const data = (answer.error?.data ?? {}) as Record<string, unknown>;
  assert.equal(data['code'], CREDENTIAL_FAILED, reply.text);
  assert.equal(data['reason'], reason, reply.text);
  const reference = referenceOf(reply);
  const records = await audited.audit.recordsUntil(
    reference,
    (record) => record.errorCode === CREDENTIAL_FAILED,
  );
  assert.ok(
    records.some((record) => record.errorCode === CREDENTIAL_FAILED),
    `no record of the refusal under ${reference}: ${JSON.stringify(records.map((r) => r.event))}`,
  );
  return { data };
}

test("a person's call reaches the upstream as that person, with a token exchanged for them", async () => {
  const token = await personToken('alice');
  const client = await connect('people', token);
  try {
    const seen = await whoami(client);
    assert.equal(seen.sub, 'alice');
    // Warden acts (the authenticated client), for the app that acts for alice.
    assert.deepEqual(seen.act, { sub: CLIENT_ID, act: { sub: 'app' } });
  } finally {
    await client.close();
  }
  const [exchange, ...more] = exchangesFor('alice');
  assert.ok(exchange, 'the authorization server was asked for alice');
  assert.equal(more.length, 0);
  assert.equal(exchange.clientId, CLIENT_ID);
  assert.equal(exchange.params['subject_token_type'], JWT_TOKEN_TYPE);
  assert.equal(exchange.params['requested_token_type'], ACCESS_TOKEN_TYPE);
  assert.equal(exchange.params['audience'], AUDIENCE);
  assert.equal(exchange.params['scope'], SCOPE);
  assert.equal(exchange.params['actor_token'], undefined, 'Warden is the actor as the client');
  const subject = exchange.subject ?? {};
  assert.equal(subject.iss, gateway.issuer?.issuer);
  assert.equal(subject.aud, authorizationServer.tokenEndpoint);
  assert.equal(subject['client_id'], 'app');
  assert.deepEqual(subject['act'], { sub: 'app' });
  assert.equal(subject['warden_agent'], TEST_AGENT);
  assert.ok((subject.exp ?? 0) - (subject.iat ?? 0) <= 60, 'the subject token is short-lived');
  assert.ok(
    upstream.accepted.some(({ claims }) => claims.sub === 'alice' && claims.aud === AUDIENCE),
  );
  assertTokenNeverReachedUpstream(token);
});

test("an agent's own call reaches the upstream as the agent", async () => {
  const token = await gateway.token();
  const client = await connect('people', token);
  try {
    const seen = await whoami(client);
    assert.equal(seen.sub, TEST_AGENT);
    assert.deepEqual(seen.act, { sub: CLIENT_ID }, 'no one acts for the agent but Warden');
  } finally {
    await client.close();
  }
  const [exchange] = exchangesFor(TEST_AGENT);
  assert.equal(exchange?.subject?.['client_id'], TEST_AGENT);
  assert.equal(exchange?.subject?.['act'], undefined);
  assertTokenNeverReachedUpstream(token);
});

test('a 2026-07-28 request, with no session, reaches the upstream as its person too', async () => {
  const request = modernRequest(7, 'tools/call', { name: 'whoami', arguments: {} });
  const reply = await postMcp(gateway.endpoint('people'), request.body, {
    headers: { authorization: `Bearer ${await personToken('ivan')}`, ...request.headers },
  });
  const answer = answerIn(reply, 7);
  const [content] = (answer.result?.['content'] ?? []) as { text?: string }[];
  assert.equal((JSON.parse(content?.text ?? '{}') as { sub?: string }).sub, 'ivan', reply.text);
  assert.equal(exchangesFor('ivan').length, 1);
});

test("every header the upstream saw carries an exchanged token, never the client's", async () => {
  const token = await personToken('erin');
  const client = await connect('people', token);
  try {
    assert.equal((await whoami(client)).sub, 'erin');
  } finally {
    await client.close();
  }
  assertTokenNeverReachedUpstream(token);
  for (const authorization of upstream.authorizations) {
    const bearer = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    assert.ok(bearer, `an upstream request without Warden's bearer token: ${authorization}`);
    assert.equal(decodeJwt(bearer).iss, authorizationServer.issuer);
  }
});

test("one exchange serves a caller's calls, concurrent or one after another", async () => {
  const token = await personToken('carol');
  const headers = { authorization: `Bearer ${token}` };
  // Five sessions opened at once: one exchange for all of them (single flight, then the cache).
  const replies = await Promise.all(
    Array.from({ length: 5 }, () =>
      postMcp(gateway.endpoint('people'), initializeRequest(), { headers }),
    ),
  );
  for (const reply of replies) assert.ok(answerIn(reply, 'init').result, reply.text);
  const client = await connect('people', token);
  try {
    for (let call = 0; call < 4; call += 1) assert.equal((await whoami(client)).sub, 'carol');
  } finally {
    await client.close();
  }
  assert.equal(exchangesFor('carol').length, 1);
  // Another app acting for carol is another actor: a token of its own.
  const other = await connect('people', await personToken('carol', 'other-app'));
  try {
    assert.deepEqual((await whoami(other)).act, { sub: CLIENT_ID, act: { sub: 'other-app' } });
  } finally {
    await other.close();
  }
  assert.equal(exchangesFor('carol').length, 2);
});

test('a caller the authorization server refuses mid-session is refused, on the record, and nothing reaches the upstream', async () => {
  const token = await personToken('dave');
  const client = await connect('uncached', token);
  try {
    assert.equal((await whoami(client)).sub, 'dave');
    authorizationServer.refusedSubjects.add('dave');
    const acceptedBefore = upstream.accepted.length;
    const requestsBefore = upstream.authorizations.length;
    const error = await client.callTool({ name: 'whoami', arguments: {} }).then(
      () => assert.fail('the call went through'),
      (caught: unknown) => caught as { data?: Record<string, unknown> },
    );
    assert.equal(error.data?.['code'], CREDENTIAL_FAILED);
    assert.equal(error.data?.['reason'], 'exchange_refused');
    assert.equal(error.data?.['error'], 'invalid_grant');
    assert.equal(upstream.authorizations.length, requestsBefore, 'the upstream was not called');
    assert.equal(upstream.accepted.length, acceptedBefore);
    const reference = String(error.data?.['reference']);
    const records = await audited.audit.recordsUntil(
      reference,
      (record) => record.errorCode === CREDENTIAL_FAILED,
    );
    const refusal = records.find((record) => record.errorCode === CREDENTIAL_FAILED);
    assert.ok(refusal, `no record of the refusal under ${reference}`);
    assert.equal(refusal.user, 'dave');
    assert.equal(refusal.tool, 'whoami');
  } finally {
    authorizationServer.refusedSubjects.delete('dave');
    await client.close();
  }
});

test('a person the authorization server refuses cannot even open a session upstream', async () => {
  authorizationServer.refusedSubjects.add('mallory');
  const requestsBefore = upstream.authorizations.length;
  const reply = await postMcp(gateway.endpoint('people'), initializeRequest(), {
    headers: { authorization: `Bearer ${await personToken('mallory')}` },
  });
  const { data } = await assertRefusedOnRecord(reply, 'exchange_refused');
  assert.equal(data['error'], 'invalid_grant');
  assert.equal(upstream.authorizations.length, requestsBefore, 'the upstream was not called');
});

test('an unreachable authorization server fails closed: refused, on the record, upstream not called', async () => {
  const requestsBefore = upstream.authorizations.length;
  const reply = await postMcp(gateway.endpoint('unreachable'), initializeRequest(), {
    headers: { authorization: `Bearer ${await personToken('alice')}` },
  });
  await assertRefusedOnRecord(reply, 'authorization_server_unreachable');
  assert.equal(upstream.authorizations.length, requestsBefore);
});

test('Warden with the wrong client secret gets no token, and sends nothing without one', async () => {
  const requestsBefore = upstream.authorizations.length;
  const reply = await postMcp(gateway.endpoint('wrong_secret'), initializeRequest(), {
    headers: { authorization: `Bearer ${await personToken('alice')}` },
  });
  const { data } = await assertRefusedOnRecord(reply, 'exchange_refused');
  assert.equal(data['error'], 'invalid_client');
  assert.equal(upstream.authorizations.length, requestsBefore);
});

test('an answer without an access token is refused, not forwarded without a credential', async () => {
  const requestsBefore = upstream.authorizations.length;
  const reply = await postMcp(gateway.endpoint('malformed'), initializeRequest(), {
    headers: { authorization: `Bearer ${await personToken('alice')}` },
  });
  await assertRefusedOnRecord(reply, 'malformed_response');
  assert.equal(upstream.authorizations.length, requestsBefore);
});

test('a subject token or an exchanged token replayed at Warden is refused as an access token', async () => {
  const exchange = exchangesFor('alice')[0];
  const subjectToken = exchange?.params['subject_token'];
  assert.ok(subjectToken, 'a subject token was seen');
  const exchangedToken = /^Bearer (\S+)$/.exec(
    upstream.authorizations.find((value) => value !== undefined) ?? '',
  )?.[1];
  assert.ok(exchangedToken);
  for (const stolen of [subjectToken, exchangedToken]) {
    const reply = await sendRaw(gateway.endpoint('people'), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stolen}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(initializeRequest()),
    });
    assert.equal(reply.status, 401, reply.text);
  }
});

// The cache's clock, driven by the test: the same real authorization server, with a signer of
// the test's own that the authorization server also trusts.
test('an exchanged token is exchanged again once it nears expiry, and the cache stays bounded', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const issuer = 'https://direct-signer.test';
  authorizationServer.trustedIssuers.set(
    issuer,
    createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'direct', alg: 'ES256' }] }),
  );
  const signer: SubjectTokenSigner = {
    issuer,
    currentKey: () => Promise.resolve({ kid: 'direct', algorithm: 'ES256', privateKey }),
  };
  const config: TokenExchangeConfig = {
    kind: 'token_exchange',
    tokenEndpoint: authorizationServer.tokenEndpoint,
    audience: AUDIENCE,
    resource: undefined,
    scopes: [SCOPE],
    clientId: CLIENT_ID,
    clientSecretEnv: SECRET_ENV,
    subjectTokenAudience: authorizationServer.tokenEndpoint,
    subjectTokenTtlMs: 60_000,
    refreshBeforeMs: 30_000,
    cacheSize: 2,
    timeoutMs: 10_000,
  };
  let clock = Date.now();
  const source = createTokenExchangeSource(config, { signer, now: () => clock });
  const frank = { user: 'frank', agent: TEST_AGENT, delegation: [] };

  const concurrent = await Promise.all(Array.from({ length: 5 }, () => source.tokenFor(frank)));
  assert.equal(new Set(concurrent).size, 1, 'concurrent callers share one exchange');
  assert.equal(exchangesFor('frank').length, 1);
  // Still usable until refresh_before ahead of its expiry.
  clock += (TOKEN_TTL_SECONDS - 30) * 1000 - 1_000;
  assert.equal(await source.tokenFor(frank), concurrent[0]);
  assert.equal(exchangesFor('frank').length, 1);
  clock += 2_000;
  const renewed = await source.tokenFor(frank);
  assert.notEqual(renewed, concurrent[0]);
  assert.equal(exchangesFor('frank').length, 2);

  // Two entries at most: a third caller pushes out the least recently used.
  await source.tokenFor({ user: 'grace', agent: TEST_AGENT, delegation: [] });
  await source.tokenFor({ user: 'heidi', agent: TEST_AGENT, delegation: [] });
  assert.equal(exchangesFor('frank').length, 2);
  await source.tokenFor(frank);
  assert.equal(exchangesFor('frank').length, 3, 'frank was evicted, so exchanged again');
  // A call with no caller behind it has no one to act for.
  await assert.rejects(source.tokenFor(undefined), { code: CREDENTIAL_FAILED });
});

test('token exchange without the built-in issuer is a config error that says what to add', () => {
  const raw = {
    auth: { resource: TEST_RESOURCE, issuers: [{ issuer: 'https://idp.example.com' }] },
    agents: { [TEST_AGENT]: { roles: [] } },
    upstreams: {
      people: {
        url: 'https://people.example.com/mcp',
        credential: {
          token_exchange: {
            token_endpoint: 'https://as.example.com/token',
            audience: AUDIENCE,
            client_id: CLIENT_ID,
            client_secret_env: SECRET_ENV,
          },
        },
      },
    },
  };
  assert.throws(
    () => parseConfig(raw, 'warden.yaml'),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.issues.some((issue) =>
        /^upstreams\.people\.credential\.token_exchange: needs the built-in issuer/.test(issue),
      ),
  );
});

test('a token_exchange with a missing or misspelt key names it', () => {
  const base = {
    auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
    agents: { [TEST_AGENT]: { roles: [] } },
  };
  const refuse = (exchange: Record<string, unknown>): readonly string[] => {
    try {
      parseConfig(
        {
          ...base,
          upstreams: {
            people: {
              url: 'https://people.example.com/mcp',
              credential: { token_exchange: exchange },
            },
          },
        },
        'warden.yaml',
      );
    } catch (error) {
      if (error instanceof ConfigError) return error.issues;
      throw error;
    }
    return assert.fail('the config was accepted');
  };
  const valid = {
    token_endpoint: 'https://as.example.com/token',
    audience: AUDIENCE,
    client_id: CLIENT_ID,
    client_secret_env: SECRET_ENV,
  };
  const noSecret: Record<string, unknown> = { ...valid };
  delete noSecret['client_secret_env'];
  assert.match(
    refuse(noSecret).join('\n'),
    /upstreams\.people\.credential\.token_exchange\.client_secret_env: missing/,
  );
  assert.match(
    refuse({ ...valid, scope: 'people.read' }).join('\n'),
    /upstreams\.people\.credential\.token_exchange: unknown key "scope".*scopes/,
  );
  assert.match(
    refuse({ ...valid, token_endpoint: 'ftp://as.example.com/token' }).join('\n'),
    /upstreams\.people\.credential\.token_exchange\.token_endpoint: /,
  );
  const config = parseConfig(
    {
      ...base,
      upstreams: {
        people: { url: 'https://people.example.com/mcp', credential: { token_exchange: valid } },
      },
    },
    'warden.yaml',
  );
  const people = config.upstreams.get('people');
  assert.ok(people?.kind === 'http');
  assert.deepEqual(people.credential?.source, {
    kind: 'token_exchange',
    tokenEndpoint: 'https://as.example.com/token',
    audience: AUDIENCE,
    resource: undefined,
    scopes: [],
    clientId: CLIENT_ID,
    clientSecretEnv: SECRET_ENV,
    subjectTokenAudience: 'https://as.example.com/token',
    subjectTokenTtlMs: 60_000,
    refreshBeforeMs: 30_000,
    cacheSize: 10_000,
    timeoutMs: 10_000,
  });
});
