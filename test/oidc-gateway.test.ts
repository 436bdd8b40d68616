// A real authorization server (oidc-provider) in front of a real gateway: an agent gets a
// client_credentials JWT access token for the gateway's resource and environment, and calls an
// upstream tool through Warden with it. The gateway knows only the issuer URL and the agent's
// client id there. The same token is refused by a gateway of another environment, and stops
// working on the very next call once revoked by its jti; neither refusal reaches the upstream.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { startTestGateway, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import { startAuthorizationServer, type AuthorizationServer } from './support/oidc-provider.js';
import {
  answerIn,
  assertWardenError,
  initializeRequest,
  openSession,
  postMcp,
  type RawReply,
} from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

const ENVIRONMENT = 'production';
const AGENT = 'finance-agent';
const CLIENT_ID = 'finance-agent-at-idp';
const CLIENT_SECRET = 'a-long-random-client-secret-for-tests-only';
const TOOLS_CALL = {
  jsonrpc: '2.0',
  id: 'call',
  method: 'tools/call',
  params: { name: 'echo', arguments: {} },
};

let authorizationServer: AuthorizationServer;
let upstream: ScriptedUpstream;
let production: TestGateway;
let staging: TestGateway;

/** A gateway trusting only the authorization server, with the agent registered by client id. */
function startGatewayIn(environment: string): Promise<TestGateway> {
  return startTestGateway({
    environment,
    log: { level: 'silent' },
    auth: {
      resource: TEST_RESOURCE,
      required_scopes: ['mcp'],
      issuers: [{ issuer: authorizationServer.issuer }],
    },
    agents: { [AGENT]: { roles: ['finance'], client_ids: [CLIENT_ID] } },
    roles: { finance: { grants: [{ tool: 'fixture.echo' }] } },
    upstreams: { fixture: { url: upstream.url } },
  });
}

before(async () => {
  authorizationServer = await startAuthorizationServer({
    resource: TEST_RESOURCE,
    environment: ENVIRONMENT,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
  });
  upstream = await startScriptedUpstream();
  production = await startGatewayIn(ENVIRONMENT);
  staging = await startGatewayIn('staging');
});

after(async () => {
  await staging?.close();
  await production?.close();
  await upstream?.close();
  await authorizationServer?.close();
});

beforeEach(() => {
  upstream.received.length = 0;
});

function assertInvalidToken(reply: RawReply, reason: string): void {
  const body = assertWardenError(reply, 'WARDEN_INVALID_TOKEN');
  assert.equal((body.error?.data as { reason?: string } | undefined)?.reason, reason);
  assert.match(String(reply.headers['www-authenticate']), /^Bearer .*error="invalid_token"/);
}

test('an agent calls an upstream tool through Warden with a token from the authorization server', async () => {
  const token = await authorizationServer.requestToken();
  const claims = decodeJwt(token);
  assert.equal(claims.iss, authorizationServer.issuer);
  assert.equal(claims.aud, TEST_RESOURCE);
  assert.equal(claims['warden_env'], ENVIRONMENT);

  const client = new Client({ name: 'oidc-gateway-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(production.endpoint('fixture')), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  try {
    const result = await client.callTool({ name: 'echo', arguments: {} });
    assert.deepEqual(result.content, [{ type: 'text', text: 'echoed' }]);
  } finally {
    await client.close();
  }
  const call = upstream.received.find(({ message }) => message?.method === 'tools/call');
  assert.ok(call, 'the upstream received the tool call');
  assert.equal(call.headers.authorization, undefined, "the agent's token stays at the gateway");
});

test('refuses the token at a gateway of another environment, forwarding nothing', async () => {
  const token = await authorizationServer.requestToken();
  const reply = await postMcp(staging.endpoint('fixture'), initializeRequest(), {
    headers: { authorization: `Bearer ${token}` },
  });
  assertInvalidToken(reply, 'environment_mismatch');
  assert.deepEqual(upstream.received, []);
});

test('a token revoked by its jti stops working on the very next call', async () => {
  const token = await authorizationServer.requestToken();
  const headers = { authorization: `Bearer ${token}` };
  const endpoint = production.endpoint('fixture');
  const sessionId = await openSession(endpoint, headers);
  const accepted = await postMcp(endpoint, TOOLS_CALL, { sessionId, headers });
  assert.ok(answerIn(accepted, 'call').result, accepted.text);

  const { jti } = decodeJwt(token);
  assert.equal(typeof jti, 'string', 'the authorization server names its tokens');
  const revokedAt = Date.now();
  await production.revoke({
    kind: 'token',
    subject: jti as string,
    revokedAt,
    expiresAt: revokedAt + 3_600_000,
    reason: 'leaked in a CI log',
    revokedBy: 'test',
  });
  upstream.received.length = 0;
  assertInvalidToken(await postMcp(endpoint, TOOLS_CALL, { sessionId, headers }), 'revoked');
  assert.deepEqual(upstream.received, [], 'the call after the revocation was not forwarded');

  // Another token of the same agent is unaffected.
  const fresh = { authorization: `Bearer ${await authorizationServer.requestToken()}` };
  const freshSession = await openSession(endpoint, fresh);
  const unaffected = await postMcp(endpoint, TOOLS_CALL, {
    sessionId: freshSession,
    headers: fresh,
  });
  assert.ok(answerIn(unaffected, 'call').result, unaffected.text);
});
