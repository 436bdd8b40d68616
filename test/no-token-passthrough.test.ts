// Token passthrough, from the attacker's side: a client (or whoever stole its token) sends its own
// Authorization header and cookies, hoping the gateway forwards them and the upstream accepts
// them. Warden forwards neither; the upstream sees only Warden's own credential for it. The
// client's bearer token is a valid Warden token (it must be, to get through), and it is the one
// credential an upstream must never see: with it, the upstream could call Warden as the client.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { openSession, postMcp } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

const ENV_NAME = 'WARDEN_TEST_UPSTREAM_TOKEN';
const ENV_SECRET = 'warden-env-secret-4d1f';
const CLIENT_TOKEN = 'client-stolen-token-9c2e';
const CLIENT_COOKIE = 'session=client-cookie-77aa';
const CLIENT_SIDE_CHANNELS = {
  cookie: CLIENT_COOKIE,
  'proxy-authorization': `Basic ${CLIENT_TOKEN}`,
  'x-api-key': CLIENT_TOKEN,
};
const TOOLS_LIST = { jsonrpc: '2.0', id: 2, method: 'tools/list' };

let upstream: ScriptedUpstream;
let gateway: TestGateway;
let secretDir: string;
let secretFile: string;
/** The client's valid Warden token, and every header the client sends with it. */
let wardenToken: string;
let clientHeaders: Record<string, string>;

before(async () => {
  process.env[ENV_NAME] = ENV_SECRET;
  secretDir = mkdtempSync(join(tmpdir(), 'warden-secret-'));
  secretFile = join(secretDir, 'upstream-token');
  writeFileSync(secretFile, 'file-secret-one\n');
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    upstreams: {
      bare: { url: upstream.url },
      from_env: { url: upstream.url, credential: { env: ENV_NAME } },
      from_file: { url: upstream.url, credential: { file: secretFile } },
      api_key: {
        url: upstream.url,
        credential: { env: ENV_NAME, header: 'X-Api-Key', scheme: '' },
      },
    },
  });
  wardenToken = await gateway.token();
  clientHeaders = { ...CLIENT_SIDE_CHANNELS, authorization: `Bearer ${wardenToken}` };
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
  rmSync(secretDir, { recursive: true, force: true });
  delete process.env[ENV_NAME];
});

beforeEach(() => {
  upstream.received.length = 0;
});

/** Opens a session and lists tools, every request carrying the client's own credentials. */
async function useUpstreamAsClient(name: string): Promise<void> {
  const endpoint = gateway.endpoint(name);
  const sessionId = await openSession(endpoint, clientHeaders);
  const reply = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: clientHeaders });
  assert.equal(reply.status, 200, reply.text);
  assert.equal(upstream.received.length, 3, 'initialize, initialized, tools/list');
}

function assertNoClientSecretReachedUpstream(): void {
  // Any one part of the JWT (its signature above all) would be a leak, not only the whole token.
  const tokenParts = wardenToken.split('.').filter((part) => part.length >= 16);
  assert.equal(tokenParts.length, 3);
  for (const { headers, message } of upstream.received) {
    assert.equal(headers.cookie, undefined);
    assert.equal(headers['proxy-authorization'], undefined);
    for (const [name, value] of Object.entries(headers)) {
      assert.doesNotMatch(String(value), /client-stolen-token|client-cookie/, `header ${name}`);
      for (const part of tokenParts) {
        assert.ok(!String(value).includes(part), `the Warden token reached upstream in ${name}`);
      }
    }
    const body = JSON.stringify(message ?? null);
    for (const part of tokenParts) {
      assert.ok(!body.includes(part), 'the Warden token reached upstream in a message');
    }
  }
}

function authorizationHeadersSeen(): (string | undefined)[] {
  return upstream.received.map(({ headers }) => headers.authorization);
}

test("a client's own Warden bearer token and cookies never reach an upstream", async () => {
  await useUpstreamAsClient('bare');
  assertNoClientSecretReachedUpstream();
  assert.deepEqual(authorizationHeadersSeen(), [undefined, undefined, undefined]);
});

test("the upstream sees Warden's credential from an env var instead of the client's", async () => {
  await useUpstreamAsClient('from_env');
  assertNoClientSecretReachedUpstream();
  assert.deepEqual(authorizationHeadersSeen(), Array(3).fill(`Bearer ${ENV_SECRET}`));
});

test("a client cannot overwrite Warden's credential by sending the same header", async () => {
  await useUpstreamAsClient('api_key');
  assertNoClientSecretReachedUpstream();
  assert.deepEqual(
    upstream.received.map(({ headers }) => headers['x-api-key']),
    Array(3).fill(ENV_SECRET),
  );
});

test("the upstream sees Warden's credential from a secret file instead of the client's", async () => {
  await useUpstreamAsClient('from_file');
  assertNoClientSecretReachedUpstream();
  assert.deepEqual(authorizationHeadersSeen(), Array(3).fill('Bearer file-secret-one'));
});

test('a rotated secret file is used on a later request, without a restart', async () => {
  const endpoint = gateway.endpoint('from_file');
  const sessionId = await openSession(endpoint, clientHeaders);
  const listTools = async () => {
    upstream.received.length = 0;
    const reply = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: clientHeaders });
    assert.equal(reply.status, 200, reply.text);
    assertNoClientSecretReachedUpstream();
    return authorizationHeadersSeen();
  };

  const stamp = new Date('2026-01-01T00:00:00Z');
  writeFileSync(secretFile, 'file-secret-two\n');
  utimesSync(secretFile, stamp, stamp);
  // The file is re-checked at most once a second; wait just past that, once.
  await sleep(1100);
  assert.deepEqual(await listTools(), ['Bearer file-secret-two']);

  // A rotation within one tick of a coarse file clock (or a copy that keeps the timestamp)
  // leaves the modification time as it was; the new secret must still be picked up.
  writeFileSync(secretFile, 'file-secret-three\n');
  utimesSync(secretFile, stamp, stamp);
  await sleep(1100);
  assert.deepEqual(await listTools(), ['Bearer file-secret-three']);
});

test("the client is given Warden's session id, never the upstream's, and vice versa", async () => {
  const endpoint = gateway.endpoint('bare');
  const sessionId = await openSession(endpoint, clientHeaders);
  assert.ok(!upstream.sessions.has(sessionId), "Warden did not hand out the upstream's id");
  for (const { headers } of upstream.received.slice(1)) {
    assert.ok(upstream.sessions.has(String(headers['mcp-session-id'])));
    assert.notEqual(headers['mcp-session-id'], sessionId);
  }
});
