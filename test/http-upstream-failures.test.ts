// An HTTP upstream that is down, silent, failing or forgetful: the client always gets a specific,
// bounded answer (never a hang, never internal detail), and trace context still flows upstream.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { findFreePort } from './support/processes.js';
import {
  answerIn,
  assertInBandError,
  assertWardenError,
  initializeRequest,
  openSession,
  postMcp,
  type RawReply,
} from './support/raw-http.js';
import {
  sendJson,
  startScriptedUpstream,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';

// The timeout covers every exchange with these upstreams, the initialize included: it must leave
// a loaded machine room to answer the calls that are meant to succeed.
const TIMEOUT_MS = 2000;
/** How late a timed-out exchange may be answered on a loaded machine: well short of a hang. */
const LATE_MS = 2000;
const TOOLS_LIST = { jsonrpc: '2.0', id: 5, method: 'tools/list' };

let upstream: ScriptedUpstream;
let gateway: TestGateway;
let endpoint: string;
let deadPort: number;
let auth: Record<string, string>;

before(async () => {
  deadPort = await findFreePort();
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    upstreams: {
      flaky: { url: upstream.url, timeout: TIMEOUT_MS },
      down: { url: `http://127.0.0.1:${deadPort}/mcp`, timeout: TIMEOUT_MS },
    },
  });
  endpoint = gateway.endpoint('flaky');
  auth = await gateway.authHeaders();
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.intercept = undefined;
  upstream.received.length = 0;
});

/**
 * Sends tools/list and asserts the gateway gave up on the upstream at its timeout: not before it,
 * and not long after (a loaded machine may be slow to deliver the answer, never by seconds more).
 */
async function postWithinTimeout(sessionId: string): Promise<RawReply> {
  const started = Date.now();
  const reply = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
  const elapsed = Date.now() - started;
  assert.ok(
    elapsed >= TIMEOUT_MS - 20 && elapsed < TIMEOUT_MS + LATE_MS,
    `answered after ${elapsed} ms`,
  );
  return reply;
}

test('an upstream that refuses connections gets 502 and -32002 with a reference, no detail', async () => {
  const reply = await postMcp(gateway.endpoint('down'), initializeRequest(), { headers: auth });
  const body = assertWardenError(reply, 'WARDEN_UPSTREAM_UNAVAILABLE', 'init');
  assert.equal(body.error?.data?.reference, reply.headers['x-request-id']);
  assert.doesNotMatch(reply.text, /ECONNREFUSED|127\.0\.0\.1|stack|undici/i);
  assert.equal(reply.headers['mcp-session-id'], undefined, 'no session is left behind');
});

test('an upstream that goes down mid-session gets 502 and -32002', async () => {
  const spare = await startScriptedUpstream();
  const own = await startTestGateway({ upstreams: { spare: { url: spare.url } } });
  try {
    const ownAuth = await own.authHeaders();
    const sessionId = await openSession(own.endpoint('spare'), ownAuth);
    await spare.close();
    const reply = await postMcp(own.endpoint('spare'), TOOLS_LIST, { sessionId, headers: ownAuth });
    assertWardenError(reply, 'WARDEN_UPSTREAM_UNAVAILABLE', 5);
  } finally {
    await own.close();
  }
});

test('an upstream that never answers times out with 504 and -32003 within the timeout', async () => {
  const sessionId = await openSession(endpoint, auth);
  upstream.intercept = (message) => message?.method === 'tools/list'; // holds the exchange open
  const reply = await postWithinTimeout(sessionId);
  assertWardenError(reply, 'WARDEN_UPSTREAM_TIMEOUT', 5);
});

test('an upstream that opens a stream and goes silent times out in-band with -32003', async () => {
  // Each chunk counts as progress: a stream that keeps talking is not cut; one that stops is.
  const sessionId = await openSession(endpoint, auth);
  upstream.intercept = (message, _request, response) => {
    if (message?.method !== 'tools/list') return false;
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write(': still thinking\n\n');
    return true;
  };
  const reply = await postWithinTimeout(sessionId);
  assertInBandError(answerIn(reply, 5), 'WARDEN_UPSTREAM_TIMEOUT');
});

test('a stream that keeps making progress outlives the timeout', async () => {
  const sessionId = await openSession(endpoint, auth);
  upstream.intercept = (message, _request, response) => {
    if (message?.method !== 'tools/list') return false;
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    // A beat every fifth of the timeout, so a loaded machine may hold one back for most of it;
    // the answer comes after seven beats, well past one whole timeout.
    let beats = 0;
    const timer = setInterval(() => {
      if ((beats += 1) < 7) return void response.write(': working\n\n');
      clearInterval(timer);
      const answer = { jsonrpc: '2.0', id: message.id, result: { tools: [] } };
      response.end(`event: message\ndata: ${JSON.stringify(answer)}\n\n`);
    }, TIMEOUT_MS / 5);
    return true;
  };
  const started = Date.now();
  const reply = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
  const elapsed = Date.now() - started;
  assert.deepEqual(answerIn(reply, 5).result, { tools: [] });
  assert.ok(elapsed > TIMEOUT_MS, `the exchange outlived the timeout: ${elapsed} ms`);
});

test("an upstream's 500 to a request fails the call with 502 and -32039, no upstream detail", async () => {
  const sessionId = await openSession(endpoint, auth);
  upstream.intercept = (message, _request, response) => {
    if (message?.method !== 'tools/list') return false;
    sendJson(response, 500, {
      jsonrpc: '2.0',
      id: message.id,
      error: { code: -32603, message: 'upstream exploded' },
    });
    return true;
  };
  const reply = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
  const body = assertWardenError(reply, 'WARDEN_UPSTREAM_FAILED', 5);
  assert.equal((body.error?.data as Record<string, unknown>)['upstreamStatus'], 500);
  assert.doesNotMatch(reply.text, /exploded/);
  upstream.intercept = undefined;
  const again = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
  assert.equal(again.status, 200, 'the session survives an upstream 500');
});

test('an upstream that forgets the session makes the client re-initialise with a 404', async () => {
  const sessionId = await openSession(endpoint, auth);
  upstream.sessions.clear(); // e.g. the upstream restarted
  const reply = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
  assertWardenError(reply, 'WARDEN_SESSION_NOT_FOUND', 5);
  const stale = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
  assertWardenError(stale, 'WARDEN_SESSION_NOT_FOUND', 5);
  const fresh = await openSession(endpoint, auth);
  assert.equal(
    (await postMcp(endpoint, TOOLS_LIST, { sessionId: fresh, headers: auth })).status,
    200,
  );
});

test("a client's W3C trace context reaches the upstream", async () => {
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const tracestate = 'congo=t61rcWkgMzE';
  const sessionId = await openSession(endpoint, auth);
  upstream.received.length = 0;
  const reply = await postMcp(endpoint, TOOLS_LIST, {
    sessionId,
    headers: { ...auth, traceparent, tracestate },
  });
  assert.equal(reply.status, 200);
  assert.equal(upstream.received[0]?.headers['traceparent'], traceparent);
  assert.equal(upstream.received[0]?.headers['tracestate'], tracestate);
});
