// An upstream that keeps failing must not tie up every caller until it times out: after repeated
// failures its circuit opens and calls are refused at once, without touching the upstream, until
// one probe call shows it has recovered. Clients that leave, and refusals the upstream answers on
// purpose (4xx), say nothing about its health.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { ConfigError, WardenError, type ErrorCode } from '../src/domain/errors.js';
import {
  guardWithCircuitBreaker,
  type CircuitStateChange,
  type GuardedConnector,
} from '../src/mcp/upstream/circuit-breaker.js';
import {
  backgroundContext,
  type ForwardContext,
  type UpstreamConnector,
  type UpstreamReply,
  type UpstreamSession,
} from '../src/mcp/upstream/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { assertWardenError, openSession, postMcp } from './support/raw-http.js';
import {
  sendJson,
  startScriptedUpstream,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';

const PING = { jsonrpc: '2.0', id: 1, method: 'ping' } as const;
const OK: UpstreamReply = { kind: 'accepted' };
const OPEN_FOR_MS = 30_000;

/** What the fake upstream does with the next call: answer, or throw. */
type Behaviour = () => Promise<UpstreamReply>;

interface Harness {
  readonly connector: GuardedConnector;
  readonly session: UpstreamSession;
  readonly changes: CircuitStateChange[];
  /** Calls that reached the upstream. */
  calls: number;
  behaviour: Behaviour;
  clock: number;
}

function createHarness(failures = 3): Harness {
  const harness: Harness = {
    connector: undefined as unknown as GuardedConnector,
    session: undefined as unknown as UpstreamSession,
    changes: [],
    calls: 0,
    behaviour: () => Promise.resolve(OK),
    clock: 1_000_000,
  };
  const upstream: UpstreamConnector = {
    name: 'payments',
    kind: 'http',
    openSession: () => ({
      onEnded: undefined,
      send: () => {
        harness.calls += 1;
        return harness.behaviour();
      },
      openServerStream: () => {
        harness.calls += 1;
        return harness.behaviour();
      },
      terminate: () => Promise.resolve(),
    }),
    close: () => Promise.resolve(),
  };
  const connector = guardWithCircuitBreaker(upstream, {
    failures,
    openForMs: OPEN_FOR_MS,
    now: () => harness.clock,
    onStateChange: (change) => harness.changes.push(change),
  });
  return Object.assign(harness, { connector, session: connector.openSession() });
}

const failWith =
  (code: ErrorCode): Behaviour =>
  () =>
    Promise.reject(new WardenError(code));
const answerStatus =
  (status: number): Behaviour =>
  () =>
    Promise.resolve({ kind: 'status', status, body: '', contentType: undefined });

function send(harness: Harness, context: ForwardContext = backgroundContext('t')) {
  return harness.session.send(PING, context);
}

async function failTimes(harness: Harness, times: number): Promise<void> {
  harness.behaviour = failWith('WARDEN_UPSTREAM_UNAVAILABLE');
  for (let i = 0; i < times; i++) {
    await assert.rejects(send(harness), { code: 'WARDEN_UPSTREAM_UNAVAILABLE' });
  }
}

async function assertRefused(harness: Harness, retryAfterMs: number): Promise<void> {
  const before = harness.calls;
  await assert.rejects(send(harness), (error: unknown) => {
    assert.ok(error instanceof WardenError);
    assert.equal(error.code, 'WARDEN_UPSTREAM_CIRCUIT_OPEN');
    assert.deepEqual(error.details, { upstream: 'payments', retryAfterMs });
    return true;
  });
  assert.equal(harness.calls, before, 'a refused call never reaches the upstream');
}

test('a failing upstream opens the circuit after N failures in a row, then is not called', async () => {
  const harness = createHarness(3);
  await failTimes(harness, 2);
  assert.equal(harness.connector.state(), 'closed');
  await failTimes(harness, 1);
  assert.equal(harness.connector.state(), 'open');
  assert.deepEqual(harness.changes, [{ upstream: 'payments', from: 'closed', to: 'open' }]);
  assert.equal(harness.calls, 3);
  harness.clock += 10_000;
  await assertRefused(harness, OPEN_FOR_MS - 10_000);
  await assert.rejects(harness.session.openServerStream(backgroundContext('t')), {
    code: 'WARDEN_UPSTREAM_CIRCUIT_OPEN',
  });
  assert.equal(harness.calls, 3);
});

test('a success between failures resets the count: only failures in a row open it', async () => {
  const harness = createHarness(3);
  await failTimes(harness, 2);
  harness.behaviour = () => Promise.resolve(OK);
  await send(harness);
  await failTimes(harness, 2);
  assert.equal(harness.connector.state(), 'closed');
});

test('timeouts, 5xx failures and 5xx status replies all count as failures', async () => {
  const harness = createHarness(3);
  harness.behaviour = failWith('WARDEN_UPSTREAM_TIMEOUT');
  await assert.rejects(send(harness));
  harness.behaviour = failWith('WARDEN_UPSTREAM_FAILED');
  await assert.rejects(send(harness));
  harness.behaviour = answerStatus(503);
  assert.equal((await send(harness)).kind, 'status', 'a status reply is still relayed');
  assert.equal(harness.connector.state(), 'open');
});

test('4xx answers and protocol errors do not open the circuit: the upstream is alive', async () => {
  const harness = createHarness(2);
  for (const status of [404, 405, 429, 400]) {
    harness.behaviour = answerStatus(status);
    await send(harness);
  }
  harness.behaviour = failWith('WARDEN_SESSION_NOT_FOUND');
  await assert.rejects(send(harness));
  harness.behaviour = failWith('WARDEN_UPSTREAM_PROTOCOL_ERROR');
  await assert.rejects(send(harness));
  assert.equal(harness.connector.state(), 'closed');
  assert.equal(harness.calls, 6);
});

test('a client that hangs up cannot trip the circuit for everyone else', async () => {
  const harness = createHarness(2);
  harness.behaviour = failWith('WARDEN_UPSTREAM_UNAVAILABLE');
  const gone = { ...backgroundContext('t'), signal: AbortSignal.abort() };
  for (let i = 0; i < 5; i++) await assert.rejects(send(harness, gone));
  assert.equal(harness.connector.state(), 'closed');
});

test('after open_for the circuit is half-open and lets exactly one probe through', async () => {
  const harness = createHarness(2);
  await failTimes(harness, 2);
  harness.clock += OPEN_FOR_MS;
  assert.equal(harness.connector.state(), 'half_open');
  let answer: (reply: UpstreamReply) => void = () => undefined;
  harness.behaviour = () => new Promise((resolve) => (answer = resolve));
  const probe = send(harness);
  assert.equal(harness.calls, 3);
  await assertRefused(harness, OPEN_FOR_MS);
  await assertRefused(harness, OPEN_FOR_MS);
  answer(OK);
  await probe;
  assert.equal(harness.calls, 3, 'only the probe reached the upstream');
});

test('a successful probe closes the circuit', async () => {
  const harness = createHarness(2);
  await failTimes(harness, 2);
  harness.clock += OPEN_FOR_MS;
  harness.behaviour = () => Promise.resolve(OK);
  await send(harness);
  assert.equal(harness.connector.state(), 'closed');
  await send(harness);
  await send(harness);
  assert.equal(harness.calls, 5);
  assert.deepEqual(
    harness.changes.map(({ from, to }) => `${from}>${to}`),
    ['closed>open', 'open>half_open', 'half_open>closed'],
  );
});

test('a failed probe reopens the circuit for another full open_for', async () => {
  const harness = createHarness(2);
  await failTimes(harness, 2);
  harness.clock += OPEN_FOR_MS + 5_000;
  await failTimes(harness, 1);
  assert.equal(harness.connector.state(), 'open');
  await assertRefused(harness, OPEN_FOR_MS);
  harness.clock += OPEN_FOR_MS - 1;
  await assertRefused(harness, 1);
  assert.deepEqual(
    harness.changes.map(({ from, to }) => `${from}>${to}`),
    ['closed>open', 'open>half_open', 'half_open>open'],
  );
});

test('a probe the client abandons frees the slot for the next probe', async () => {
  const harness = createHarness(1);
  await failTimes(harness, 1);
  harness.clock += OPEN_FOR_MS;
  harness.behaviour = failWith('WARDEN_UPSTREAM_UNAVAILABLE');
  const gone = { ...backgroundContext('t'), signal: AbortSignal.abort() };
  await assert.rejects(send(harness, gone), { code: 'WARDEN_UPSTREAM_UNAVAILABLE' });
  assert.equal(harness.connector.state(), 'half_open');
  harness.behaviour = () => Promise.resolve(OK);
  await send(harness);
  assert.equal(harness.connector.state(), 'closed');
});

test('calls that were in flight when the circuit opened do not sway it afterwards', async () => {
  const harness = createHarness(1);
  let answerLate: (reply: UpstreamReply) => void = () => undefined;
  harness.behaviour = () => new Promise((resolve) => (answerLate = resolve));
  const late = send(harness);
  await failTimes(harness, 1);
  answerLate(OK);
  await late;
  assert.equal(harness.connector.state(), 'open', 'a stale success does not close it');
});

test('sessions share one circuit per upstream, and onEnded reaches the real session', async () => {
  const harness = createHarness(1);
  await failTimes(harness, 1);
  const other = harness.connector.openSession();
  await assert.rejects(other.send(PING, backgroundContext('t')), {
    code: 'WARDEN_UPSTREAM_CIRCUIT_OPEN',
  });
  const listener = (): void => undefined;
  other.onEnded = listener;
  assert.equal(other.onEnded, listener);
});

function parseUpstream(upstream: Record<string, unknown>) {
  const config = parseConfig(
    {
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { bot: { roles: ['r'] } },
      roles: { r: {} },
      upstreams: { a: upstream },
    },
    'test',
  );
  return config.upstreams.get('a');
}

test('circuit_breaker defaults to 5 failures and 30 s, for http and stdio upstreams', () => {
  const defaults = { failures: 5, openForMs: 30_000 };
  assert.deepEqual(parseUpstream({ url: 'http://127.0.0.1:1/mcp' })?.circuitBreaker, defaults);
  assert.deepEqual(parseUpstream({ command: ['node'] })?.circuitBreaker, defaults);
  assert.deepEqual(
    parseUpstream({ command: ['node'], circuit_breaker: { failures: 2, open_for: '2m' } })
      ?.circuitBreaker,
    { failures: 2, openForMs: 120_000 },
  );
});

test('a circuit breaker that could never open, or never close, does not load', () => {
  for (const circuit_breaker of [{ failures: 0 }, { open_for: 0 }, { failure: 3 }]) {
    assert.throws(
      () => parseUpstream({ url: 'http://127.0.0.1:1/mcp', circuit_breaker }),
      (e) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.issues.join('\n'), /circuit_breaker/);
        return true;
      },
    );
  }
});

// End to end: a real gateway in front of a node:http upstream that answers 500.

const TOOLS_LIST = { jsonrpc: '2.0', id: 7, method: 'tools/list' };

let upstream: ScriptedUpstream;
let gateway: TestGateway;
let auth: Record<string, string>;

before(async () => {
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    upstreams: { shaky: { url: upstream.url, circuit_breaker: { failures: 2, open_for: '1h' } } },
  });
  auth = await gateway.authHeaders();
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.intercept = undefined;
});

test('through the gateway: 500s fail the call, then the open circuit spares the upstream', async () => {
  const endpoint = gateway.endpoint('shaky');
  const sessionId = await openSession(endpoint, auth);
  upstream.intercept = (message, _request, response) => {
    if (message?.method !== 'tools/list') return false;
    sendJson(response, 500, { error: 'exploded' });
    return true;
  };
  for (let i = 0; i < 2; i++) {
    const reply = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
    const body = assertWardenError(reply, 'WARDEN_UPSTREAM_FAILED', 7);
    assert.equal(body.error?.code, -32039);
    assert.equal((body.error?.data as Record<string, unknown>)['upstreamStatus'], 500);
    assert.doesNotMatch(reply.text, /exploded/, "the upstream's error body is not relayed");
  }
  const seen = upstream.received.length;
  const refused = await postMcp(endpoint, TOOLS_LIST, { sessionId, headers: auth });
  const body = assertWardenError(refused, 'WARDEN_UPSTREAM_CIRCUIT_OPEN', 7);
  assert.equal(body.error?.code, -32038);
  const data = body.error?.data as Record<string, unknown>;
  assert.equal(data['upstream'], 'shaky');
  assert.ok(typeof data['retryAfterMs'] === 'number' && data['retryAfterMs'] > 0);
  assert.equal(upstream.received.length, seen, 'the upstream saw no more requests');
  const warning = gateway.logs.find((line) => line['event'] === 'upstream.circuit');
  assert.equal(warning?.['level'], 40);
  assert.equal(warning?.['upstream'], 'shaky');
  assert.equal(warning?.['to'], 'open');
});
