/**
 * Sessions are a resource an attacker can exhaust: they are capped, idle ones expire, and a
 * session id works only on the upstream that issued it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

// Long enough that a loaded machine cannot leave a session idle this long between two steps of
// the test that still use it; the sweeper runs as often.
const IDLE_TIMEOUT_MS = 2000;

let fixture: Awaited<ReturnType<typeof startConformanceHttpServer>>;
let gateway: TestGateway;
let auth: Record<string, string>;

before(async () => {
  fixture = await startConformanceHttpServer();
  gateway = await startTestGateway({
    log: { level: 'silent' },
    limits: { max_sessions: 2, session_idle_timeout: IDLE_TIMEOUT_MS },
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
  // A request on a session keeps it alive, so its expiry is watched through the room it frees
  // instead. The first session was used after the second: when a slot has opened twice (to two
  // new sessions, newer than both), both idle sessions have been swept.
  assert.equal(await initializeOnceThereIsRoom(), 200, 'expired sessions free their slots');
  assert.equal(await initializeOnceThereIsRoom(), 200, 'expired sessions free their slots');
  assert.equal(await ping(id), 404, 'an idle session ends');
});

/** Retries initialize while the gateway is full (503); the status of the last try. */
async function initializeOnceThereIsRoom(): Promise<number> {
  // Expiry takes the idle timeout plus up to one sweep; the rest is room for a loaded machine.
  const deadline = Date.now() + 2 * IDLE_TIMEOUT_MS + 10_000;
  for (;;) {
    const { status } = await initialize();
    if (status !== 503 || Date.now() > deadline) return status;
    await sleep(100);
  }
}

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
