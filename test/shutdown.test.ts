// Graceful shutdown, as a client and a load balancer see it: calls already running finish within
// the grace period; new work is refused with 503 WARDEN_SHUTTING_DOWN so clients retry elsewhere;
// /readyz turns 503 at once so the balancer stops sending, while /healthz still answers.
// Probes need no token: a load balancer has none.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  answerIn,
  assertInBandError,
  assertWardenError,
  initializeRequest,
  openSession,
  postMcp,
  sendRaw,
  type RawReply,
} from './support/raw-http.js';
import {
  sendJson,
  startScriptedUpstream,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';

// Long enough that a close() waiting out the grace is told from one that returned once its
// calls were done, however loaded the machine.
const GRACE_MS = 15_000;
/** A call that would outlast every grace period below. */
const HUNG_CALL_MS = 30_000;
const SLOW_CALL = {
  jsonrpc: '2.0',
  id: 'slow',
  method: 'tools/call',
  params: { name: 'echo', arguments: {} },
};

let upstream: ScriptedUpstream | undefined;
let gateway: TestGateway | undefined;
/** Lets the upstream answer the tools/call it holds, for a gateway started with 'until released'. */
let releaseCall: () => void = () => undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
});

/**
 * A gateway whose upstream answers tools/call after `callMs`, or only once the test calls
 * releaseCall(), as JSON or on an SSE stream.
 */
async function startSlowGateway(
  callMs: number | 'until released',
  graceMs: number,
  framing: 'json' | 'stream' = 'json',
): Promise<TestGateway> {
  upstream = await startScriptedUpstream();
  upstream.intercept = (message, _request, response) => {
    if (message?.method !== 'tools/call') return false;
    const answer = { jsonrpc: '2.0', id: message.id, result: { content: [] } };
    let send = () => sendJson(response, 200, answer);
    if (framing === 'stream') {
      response.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();
      send = () => response.end(`data: ${JSON.stringify(answer)}\n\n`);
    }
    if (callMs === 'until released') releaseCall = send;
    else setTimeout(send, callMs).unref();
    return true;
  };
  gateway = await startTestGateway({
    limits: { shutdown_grace: graceMs },
    upstreams: { tools: { url: upstream.url } },
  });
  return gateway;
}

async function waitForCallUpstream(): Promise<void> {
  while (!upstream?.received.some(({ message }) => message?.method === 'tools/call')) {
    await sleep(5);
  }
}

function probe(running: TestGateway, path: '/healthz' | '/readyz'): Promise<RawReply> {
  return sendRaw(`${running.url}${path}`);
}

test('health probes answer while serving', async () => {
  const running = await startSlowGateway('until released', GRACE_MS);
  // No Authorization header: a load balancer's probe carries no credentials.
  const health = await probe(running, '/healthz');
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.text), { status: 'ok' });
  const ready = await probe(running, '/readyz');
  assert.equal(ready.status, 200);
  const readiness = JSON.parse(ready.text) as { status: string; cluster: { replicas: unknown[] } };
  assert.equal(readiness.status, 'ready');
  assert.equal(readiness.cluster.replicas.length, 1, 'this replica, alone on its store');
});

test('an in-flight call finishes while new requests are refused with 503', async () => {
  // The call runs until the test has seen every refusal below: on a loaded machine a call on a
  // timer could finish, and the listener close, before the test got to ask.
  const running = await startSlowGateway('until released', GRACE_MS);
  const endpoint = running.endpoint('tools');
  const auth = await running.authHeaders();
  const sessionId = await openSession(endpoint, auth);
  const inFlight = postMcp(endpoint, SLOW_CALL, { sessionId, headers: auth });
  await waitForCallUpstream();

  const started = Date.now();
  const closing = running.close();
  await sleep(20);

  assertWardenError(
    await postMcp(endpoint, initializeRequest(), { headers: auth }),
    'WARDEN_SHUTTING_DOWN',
  );
  const other = await postMcp(
    endpoint,
    { jsonrpc: '2.0', id: 3, method: 'ping' },
    { sessionId, headers: auth },
  );
  assertWardenError(other, 'WARDEN_SHUTTING_DOWN');
  // Unauthenticated callers are told the same: retry elsewhere, not "get a token".
  assertWardenError(await postMcp(endpoint, initializeRequest()), 'WARDEN_SHUTTING_DOWN');
  const ready = await probe(running, '/readyz');
  assert.equal(ready.status, 503, 'the balancer is told to stop sending');
  assert.equal((await probe(running, '/healthz')).status, 200, 'the process is alive');

  releaseCall();
  const reply = await inFlight;
  assert.equal(reply.status, 200);
  assert.ok(answerIn(reply, 'slow').result, reply.text);
  await closing;
  assert.ok(Date.now() - started < GRACE_MS, 'close() returned as soon as the call was done');
  await assert.rejects(probe(running, '/healthz'), 'the listener is closed after the drain');
});

test('a call still running when the grace ends is answered 503 with its id, not dropped', async () => {
  const running = await startSlowGateway(HUNG_CALL_MS, 300);
  const endpoint = running.endpoint('tools');
  const auth = await running.authHeaders();
  const sessionId = await openSession(endpoint, auth);
  const inFlight = postMcp(endpoint, SLOW_CALL, { sessionId, headers: auth });
  await waitForCallUpstream();
  const started = Date.now();
  await running.close();
  // It waited out the grace, and no longer than it takes a loaded machine to cut the call: far
  // from waiting for the call itself.
  const took = Date.now() - started;
  assert.ok(took >= 300 && took < HUNG_CALL_MS / 3, `close() took ${took} ms`);
  assertWardenError(await inFlight, 'WARDEN_SHUTTING_DOWN', 'slow');
});

test('a streamed call still running when the grace ends gets its 503 in-band', async () => {
  const running = await startSlowGateway(HUNG_CALL_MS, 300, 'stream');
  const endpoint = running.endpoint('tools');
  const auth = await running.authHeaders();
  const sessionId = await openSession(endpoint, auth);
  const inFlight = postMcp(endpoint, SLOW_CALL, { sessionId, headers: auth });
  await waitForCallUpstream();
  await running.close();
  const reply = await inFlight;
  assert.equal(reply.status, 200, 'the stream had already started');
  assertInBandError(answerIn(reply, 'slow'), 'WARDEN_SHUTTING_DOWN');
});
