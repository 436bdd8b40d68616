/**
 * Sessions are a resource an attacker can exhaust: they are capped, idle ones expire, and a
 * session id works only on the upstream that issued it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

let fixture: Awaited<ReturnType<typeof startConformanceHttpServer>>;
let gateway: TestGateway;
let auth: Record<string, string>;

before(async () => {
  fixture = await startConformanceHttpServer();
  gateway = await startTestGateway({
    log: { level: 'silent' },
    limits: { max_sessions: 2, session_idle_timeout: '300ms' },
    upstreams: { fixture: { url: fixture.url } },
  });
  auth = await gateway.authHeaders();
});

after(async () => {
  await gateway?.close();
  await fixture?.close();
});

const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

async function initialize(
  endpoint = gateway.endpoint('fixture'),
  headers: Record<string, string> = auth,
): Promise<Response> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { ...HEADERS, ...headers },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      },
    }),
  });
  await response.body?.cancel();
  return response;
}

async function ping(sessionId: string): Promise<number> {
  const response = await fetch(gateway.endpoint('fixture'), {
    method: 'POST',
    headers: {
      ...HEADERS,
      ...auth,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  });
  await response.body?.cancel();
  return response.status;
}

test('a client cannot open more sessions than limits.max_sessions; idle ones expire and free room', async () => {
  const first = await initialize();
  const second = await initialize();
  assert.equal(first.status, 200);
  assert.equal(second.status, 200);
  const third = await initialize();
  assert.equal(third.status, 503);

  const id = first.headers.get('mcp-session-id') ?? '';
  assert.equal(await ping(id), 200, 'a live session works');
  // The idle timeout is 300 ms and the sweeper runs as often; 1.5 s is a generous bound.
  const deadline = Date.now() + 1500;
  let status = 200;
  while (Date.now() < deadline && status === 200) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    status = await ping(id);
    if (status === 200) await new Promise((resolve) => setTimeout(resolve, 400));
  }
  assert.equal(status, 404, 'an idle session ends');
  assert.equal((await initialize()).status, 200, 'expired sessions free their slots');
});

test('an anonymous client cannot use up session slots: it is refused before a session exists', async () => {
  const small = await startTestGateway({
    log: { level: 'silent' },
    limits: { max_sessions: 1 },
    upstreams: { fixture: { url: fixture.url } },
  });
  try {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const anonymous = await initialize(small.endpoint('fixture'), {});
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.headers.get('mcp-session-id'), null);
    }
    const genuine = await initialize(small.endpoint('fixture'), await small.authHeaders());
    assert.equal(genuine.status, 200, 'the one slot is still free');
  } finally {
    await small.close();
  }
});
