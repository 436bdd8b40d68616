/**
 * Safe failure, end to end. Whatever breaks (the upstream dies in the middle of a call, fails,
 * goes silent, or the store behind the audit log and the approvals goes away), the caller gets a
 * specific JSON-RPC error with a reference, nothing is forwarded that the log does not hold, the
 * log tells what happened under the same reference, and service resumes by itself once the fault
 * is gone: no restart, and the hash chain still verifies.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { repositoryVerifyInput, snapshotStreams } from '../src/audit/read-stream.js';
import { verifyAuditLog } from '../src/audit/verify.js';
import type { AuditEvent, AuditRecord } from '../src/domain/audit-record.js';
import {
  ERROR_CATALOGUE,
  httpStatusOf,
  WardenError,
  type ErrorCode,
} from '../src/domain/errors.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  answerIn,
  openSession,
  postMcp,
  type RawReply,
  type WireMessage,
} from './support/raw-http.js';
import {
  sendJson,
  startScriptedUpstream,
  type Intercept,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';
import {
  adminClient,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const PID_SERVER = fileURLToPath(new URL('./fixtures/pid-server.ts', import.meta.url));
// The timeout covers every exchange with the upstream, the session's initialize included: short
// enough to wait out, long enough that a loaded machine does not hit it on the calls that succeed.
const UPSTREAM_TIMEOUT_MS = 2000;
/** The stdio upstream's timeout: it also covers the start of a fresh child (node + tsx). */
const STDIO_TIMEOUT_MS = 10_000;
/**
 * Every test is bounded: a call left hanging fails its test instead of stalling the run. The bound
 * is for hangs, with room for a loaded machine (one test waits out a 5 s SQLite busy timeout).
 */
const BOUNDED = { timeout: 60_000 };

/** One client session on one upstream endpoint. */
interface Caller {
  readonly endpoint: string;
  readonly sessionId: string;
  readonly headers: Record<string, string>;
}

interface Call {
  readonly reply: RawReply;
  readonly answer: WireMessage;
}

let nextId = 1;

async function openCaller(
  gateway: TestGateway,
  upstream: string,
  headers?: Record<string, string>,
): Promise<Caller> {
  const endpoint = gateway.endpoint(upstream);
  const auth = headers ?? (await gateway.authHeaders());
  return { endpoint, sessionId: await openSession(endpoint, auth), headers: auth };
}

async function callTool(
  caller: Caller,
  name: string,
  args: Record<string, unknown> = {},
): Promise<Call> {
  const id = nextId++;
  const reply = await postMcp(
    caller.endpoint,
    { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } },
    { sessionId: caller.sessionId, headers: caller.headers },
  );
  return { reply, answer: answerIn(reply, id) };
}

/**
 * Asserts that the call was answered with the Warden error `code` (as JSON with its HTTP status,
 * or in-band on an event stream) and returns its reference: the request id the log files it under.
 */
function assertAnsweredWith(call: Call, code: ErrorCode): string {
  const { reply, answer } = call;
  const spec = ERROR_CATALOGUE[code];
  const told = `${reply.status} ${reply.text}`;
  assert.equal(answer.error?.code, spec.rpcCode, `expected ${code} (${spec.rpcCode}), got ${told}`);
  assert.equal(answer.error?.data?.code, code, told);
  if (String(reply.headers['content-type']).startsWith('application/json')) {
    // Decided about a request: answered in band (HTTP 200); else the code's own status.
    assert.equal(reply.status, httpStatusOf(new WardenError(code), answer.id ?? null), told);
  }
  const reference = answer.error?.data?.reference;
  assert.equal(typeof reference, 'string', `no data.reference: ${told}`);
  assert.equal(reference, reply.headers['x-request-id'], 'the reference is the exchange’s id');
  return reference as string;
}

/** Polls `probe` until it gives a value; fails after `ms`. No fixed sleeps. */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`${what} did not happen within ${ms} ms${cause}`);
    }
    await sleep(50);
  }
}

/** The call's records once `last` is among them (outcomes are recorded when the call ends). */
function recordsUntil(store: Store, requestId: string, last: AuditEvent): Promise<AuditRecord[]> {
  return waitFor(`${last} in the log for ${requestId}`, async () => {
    const records = await store.audit.query({ requestId });
    return records.some((record) => record.event === last) ? records : undefined;
  });
}

/** Asserts the log tells the failed call as allowed, then failed with `code`. */
async function assertLoggedAsFailed(store: Store, requestId: string, code: ErrorCode) {
  const records = await recordsUntil(store, requestId, 'call.error');
  assert.deepEqual(
    records.map((record) => record.event),
    ['call.allowed', 'call.error'],
  );
  assert.equal(records[1]?.errorCode, code, 'the log names the error the caller was given');
}

/** The call is a success, not a Warden error: the service is back. */
function succeeded(call: Call): Call | undefined {
  return call.answer.result !== undefined ? call : undefined;
}

function toolCallsReceived(upstream: ScriptedUpstream): number {
  return upstream.received.filter((request) => request.message?.method === 'tools/call').length;
}

function alertedFor(gateway: TestGateway, requestId: string): boolean {
  return gateway.logs.some(
    (log) => log['alert'] === 'audit_unavailable' && log['requestId'] === requestId,
  );
}

/** Verifies every stream of the store with its audit key, as `warden audit verify` does. */
async function assertChainIntact(store: Store): Promise<void> {
  const key = await store.audit.signingKey();
  assert.ok(key, 'the gateway created the audit key');
  const report = await verifyAuditLog({
    streams: repositoryVerifyInput(store.audit, await snapshotStreams(store.audit)),
    publicKeyPem: key.publicKeyPem,
  });
  assert.ok(report.ok, `the chain is broken: ${JSON.stringify(report.streams)}`);
  assert.ok(report.recordsChecked > 0);
}

/** A gateway in front of a scripted upstream, and a second connection to its store (as the CLI). */
interface Rig {
  readonly upstream: ScriptedUpstream;
  readonly gateway: TestGateway;
  readonly store: Store;
  close(): Promise<void>;
}

async function startRig(
  storeUrl: string,
  configure: (upstream: ScriptedUpstream) => Record<string, unknown>,
  openReader: () => Promise<Store> = () => openStore(storeUrl),
): Promise<Rig> {
  const upstream = await startScriptedUpstream();
  const gateway = await startTestGateway({ store: storeUrl, ...configure(upstream) });
  const store = await openReader();
  return {
    upstream,
    gateway,
    store,
    async close() {
      await gateway.close();
      await store.close();
      await upstream.close();
    },
  };
}

/** The scripted upstream's faults, by tool name; other calls are answered normally. */
const misbehave: Intercept = (message, request, response) => {
  if (message?.method !== 'tools/call') return false;
  switch (message.params?.['name']) {
    case 'drop':
      request.socket.destroy();
      return true;
    case 'drop_stream': {
      // The answer has begun (a log message went out on the stream) when the socket dies.
      const note = { jsonrpc: '2.0', method: 'notifications/message', params: { data: 'hi' } };
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(`event: message\ndata: ${JSON.stringify(note)}\n\n`, () =>
        request.socket.destroy(),
      );
      return true;
    }
    case 'fail':
      sendJson(response, 500, { error: 'the ledger database is down' });
      return true;
    case 'hang':
      return true; // never answers
    default:
      return false;
  }
};

describe('an upstream that fails in the middle of a call', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig(`sqlite:${join(tempRoot, 'upstreams.db')}`, (upstream) => {
      upstream.tools = ['echo', 'drop', 'drop_stream', 'fail', 'hang'];
      upstream.intercept = misbehave;
      return {
        audit: { stream: 'upstream-faults', hash_key_file: join(tempRoot, 'upstreams.key') },
        upstreams: {
          pids: {
            command: [process.execPath, '--import', 'tsx', PID_SERVER],
            timeout: STDIO_TIMEOUT_MS,
            restart_backoff: '100ms',
          },
          flaky: { url: upstream.url },
          sluggish: { url: upstream.url, timeout: UPSTREAM_TIMEOUT_MS },
        },
      };
    });
  });

  after(() => rig?.close());

  test(
    'a stdio upstream SIGKILLed mid-call: the caller gets -32002, the log call.error, the next call a new child',
    BOUNDED,
    async () => {
      const { gateway, store } = rig;
      const caller = await openCaller(gateway, 'pids');
      const pidOf = async (): Promise<number> => {
        const { answer } = await callTool(caller, 'pid');
        const text = (answer.result?.['content'] as { text?: string }[] | undefined)?.[0]?.text;
        const pid = Number(text);
        assert.ok(Number.isInteger(pid) && pid > 0, `no pid in ${JSON.stringify(answer)}`);
        return pid;
      };
      const victim = await pidOf();
      const inFlight = callTool(caller, 'sleep', { ms: 30_000 });
      await waitFor('the call reaching the child', async () =>
        gateway.logs.some((log) => String(log['stderr']).includes(`sleeping ${victim}`))
          ? true
          : undefined,
      );
      process.kill(victim, 'SIGKILL');
      // Left hanging, the call would at best be answered by the timeout, with another code.
      const call = await Promise.race([
        inFlight,
        sleep(STDIO_TIMEOUT_MS).then(() => assert.fail('the call in flight was left hanging')),
      ]);
      const reference = assertAnsweredWith(call, 'WARDEN_UPSTREAM_UNAVAILABLE');
      await waitFor('a new child answering the same session', async () =>
        (await pidOf()) === victim ? undefined : true,
      );
      await assertLoggedAsFailed(store, reference, 'WARDEN_UPSTREAM_UNAVAILABLE');
    },
  );

  const httpFaults = [
    {
      fault: 'drops the connection before answering',
      upstream: 'flaky',
      tool: 'drop',
      code: 'WARDEN_UPSTREAM_UNAVAILABLE',
    },
    {
      fault: 'drops the connection in the middle of its event stream',
      upstream: 'flaky',
      tool: 'drop_stream',
      code: 'WARDEN_UPSTREAM_UNAVAILABLE',
    },
    { fault: 'answers HTTP 500', upstream: 'flaky', tool: 'fail', code: 'WARDEN_UPSTREAM_FAILED' },
    {
      fault: `never answers (timeout ${UPSTREAM_TIMEOUT_MS} ms)`,
      upstream: 'sluggish',
      tool: 'hang',
      code: 'WARDEN_UPSTREAM_TIMEOUT',
    },
  ] as const;

  for (const { fault, upstream: name, tool, code } of httpFaults) {
    test(
      `an HTTP upstream that ${fault}: the caller gets ${code}, the log call.error, the session carries on`,
      BOUNDED,
      async () => {
        const { gateway, store } = rig;
        const caller = await openCaller(gateway, name);
        const started = Date.now();
        const call = await callTool(caller, tool);
        const reference = assertAnsweredWith(call, code);
        if (code === 'WARDEN_UPSTREAM_TIMEOUT') {
          // At the timeout, not before; later only by what a loaded machine takes to answer.
          const elapsed = Date.now() - started;
          assert.ok(
            elapsed >= UPSTREAM_TIMEOUT_MS - 20 && elapsed < UPSTREAM_TIMEOUT_MS + 2000,
            `answered after ${elapsed} ms`,
          );
        }
        await assertLoggedAsFailed(store, reference, code);
        assert.ok(succeeded(await callTool(caller, 'echo')), 'the next call in the session works');
      },
    );
  }
});

describe('the SQLite audit store cannot take a record', () => {
  const dbPath = join(tempRoot, 'locked.db');
  let rig: Rig;

  before(async () => {
    rig = await startRig(`sqlite:${dbPath}`, (upstream) => ({
      // A checkpoint with every batch: the chain's signed head must survive the outage too.
      audit: { stream: 'sqlite-gw', checkpoint_every: 1, hash_key_file: join(tempRoot, 'l.key') },
      upstreams: { ledger: { url: upstream.url } },
    }));
  });

  after(() => rig?.close());

  test(
    'while another process holds the write lock, calls are refused with -32005 and never forwarded; they resume by themselves',
    BOUNDED,
    async () => {
      const { gateway, upstream, store } = rig;
      const caller = await openCaller(gateway, 'ledger');
      // Pins the tool definition and starts the audit writer thread, so the outage below hits the
      // audit append and nothing else; its result record is in before the lock is taken, or the
      // refused call's record would queue behind that append's own 5 s wait.
      const baseline = succeeded(await callTool(caller, 'echo'));
      assert.ok(baseline);
      await recordsUntil(store, String(baseline.reply.headers['x-request-id']), 'call.result');
      const forwarded = toolCallsReceived(upstream);

      // How the store is made unwritable. chmod does not do it: the gateway's connections keep
      // their open descriptors (and root ignores mode bits anyway). A second connection holding
      // the write lock (as a backup tool or a stray `sqlite3` shell would) makes the append fail
      // for real: the writer waits its busy timeout (BUSY_TIMEOUT_MS, 5 s) and gets SQLITE_BUSY.
      // That costs this test 5 s; a faster fault (a trigger, a renamed table) would be staged.
      const locker = new Database(dbPath);
      let reference: string;
      try {
        locker.exec('BEGIN IMMEDIATE');
        const refused = await callTool(caller, 'echo', { note: 'during the outage' });
        reference = assertAnsweredWith(refused, 'WARDEN_AUDIT_UNAVAILABLE');
        assert.equal(toolCallsReceived(upstream), forwarded, 'the upstream never received it');
        assert.ok(alertedFor(gateway, reference), 'operators are alerted');
      } finally {
        if (locker.inTransaction) locker.exec('ROLLBACK');
        locker.close();
      }

      const resumed = await waitFor('calls succeeding again', async () =>
        succeeded(await callTool(caller, 'echo', { note: 'after the outage' })),
      );
      assert.equal(toolCallsReceived(upstream), forwarded + 1);
      const resumedRef = String(resumed.reply.headers['x-request-id']);
      await recordsUntil(store, resumedRef, 'call.result');
      assert.deepEqual(
        await store.audit.query({ requestId: reference }),
        [],
        'nothing half-written',
      );
      await assertChainIntact(store);
    },
  );
});

describe('the PostgreSQL store becomes unreachable', () => {
  const schema = uniqueName('warden_safe');
  testSchemas.push(schema);
  let proxy: TcpProxy;
  let rig: Rig;

  before(async () => {
    const real = new URL(POSTGRES_URL);
    proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const viaProxy = new URL(POSTGRES_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    viaProxy.searchParams.set('schema', schema);
    rig = await startRig(
      viaProxy.toString(),
      (upstream) => {
        upstream.tools = ['echo', 'pay'];
        return {
          audit: { stream: 'pg-gw', checkpoint_every: 1, hash_key_file: join(tempRoot, 'pg.key') },
          upstreams: { ledger: { url: upstream.url } },
          agents: {
            'test-agent': { roles: ['tester'] },
            'pay-bot': { roles: ['payer'] },
          },
          roles: {
            tester: { trusted: true, grants: [{ tool: 'ledger.echo' }] },
            payer: {
              grants: [
                {
                  tool: 'ledger.pay',
                  requires_approval: true,
                  approvers: ['treasurer'],
                  approval_timeout: '500ms',
                },
              ],
            },
          },
          approvals: {
            approvers: { 'tess@example.com': { roles: ['treasurer'] } },
            poll_interval: '50ms',
            delivery: 'hold',
          },
        };
      },
      () => openStore(POSTGRES_URL, { schema }),
    );
  });

  after(async () => {
    proxy?.restore(); // a failed test must not leave the gateway's final checkpoint hanging
    await rig?.close();
    await proxy?.close();
  });

  /** A pay-bot session that has listed the tools (pinning them) while the store was up. */
  async function openPayer(): Promise<Caller> {
    const caller = await openCaller(
      rig.gateway,
      'ledger',
      await rig.gateway.authHeaders({ agent: 'pay-bot', user: 'pat@example.com' }),
    );
    const id = nextId++;
    const listed = await postMcp(
      caller.endpoint,
      { jsonrpc: '2.0', id, method: 'tools/list' },
      { sessionId: caller.sessionId, headers: caller.headers },
    );
    assert.ok(answerIn(listed, id).result, listed.text);
    return caller;
  }

  test(
    'while the database is unreachable, calls are refused with -32005 and never forwarded; they resume by themselves and the chain verifies',
    BOUNDED,
    async () => {
      const { gateway, upstream, store } = rig;
      const caller = await openCaller(gateway, 'ledger');
      assert.ok(succeeded(await callTool(caller, 'echo')));
      const forwarded = toolCallsReceived(upstream);

      proxy.cut();
      let reference: string;
      try {
        const refused = await callTool(caller, 'echo', { note: 'during the outage' });
        reference = assertAnsweredWith(refused, 'WARDEN_AUDIT_UNAVAILABLE');
        assert.equal(toolCallsReceived(upstream), forwarded, 'the upstream never received it');
        assert.ok(alertedFor(gateway, reference), 'operators are alerted');
      } finally {
        proxy.restore();
      }
      const connections = proxy.forwarded;

      const resumed = await waitFor('calls succeeding again', async () =>
        succeeded(await callTool(caller, 'echo', { note: 'after the outage' })),
      );
      assert.ok(proxy.forwarded > connections, 'the pool reconnected by itself');
      assert.equal(toolCallsReceived(upstream), forwarded + 1);
      await recordsUntil(store, String(resumed.reply.headers['x-request-id']), 'call.result');
      assert.deepEqual(
        await store.audit.query({ requestId: reference }),
        [],
        'nothing half-written',
      );
      await assertChainIntact(store);
    },
  );

  test(
    'when only the approval store fails, approval-gated calls are refused with -32037, logged as denied, never forwarded',
    BOUNDED,
    async () => {
      const { upstream, store } = rig;
      const payer = await openPayer();
      const forwarded = toolCallsReceived(upstream);
      const admin = await adminClient();
      await admin.query(
        `ALTER TABLE "${schema}".approval_requests RENAME TO approval_requests_away`,
      );
      let reference: string;
      try {
        reference = assertAnsweredWith(
          await callTool(payer, 'pay', { amount: 10 }),
          'WARDEN_APPROVAL_UNAVAILABLE',
        );
      } finally {
        await admin.query(
          `ALTER TABLE "${schema}".approval_requests_away RENAME TO approval_requests`,
        );
      }
      assert.equal(toolCallsReceived(upstream), forwarded, 'the upstream never received it');
      const records = await recordsUntil(store, reference, 'call.denied');
      assert.deepEqual(
        records.map((record) => record.event),
        ['call.denied'],
      );
      assert.match(String(records[0]?.decision?.reasons), /approval service is unavailable/);
    },
  );

  test(
    'while the whole store is unreachable, approval-gated calls are refused with -32037 and never forwarded; once it is back they are held again',
    BOUNDED,
    async () => {
      const { upstream, store } = rig;
      const payer = await openPayer();
      const forwarded = toolCallsReceived(upstream);

      proxy.cut();
      let refused: Call;
      try {
        refused = await callTool(payer, 'pay', { amount: 20 });
        assert.ok(refused.answer.error, `refused: ${refused.reply.text}`);
        assert.equal(toolCallsReceived(upstream), forwarded, 'the upstream never received it');
      } finally {
        proxy.restore();
      }

      // Held again: the call waits for an approver (none comes), so it expires at approval_timeout.
      const held = await waitFor('an approval-gated call being held again', async () => {
        const call = await callTool(payer, 'pay', { amount: 30 });
        return call.answer.error?.data?.code === 'WARDEN_APPROVAL_EXPIRED' ? call : undefined;
      });
      const reference = assertAnsweredWith(held, 'WARDEN_APPROVAL_EXPIRED');
      const records = await recordsUntil(store, reference, 'approval.expired');
      assert.deepEqual(
        records.map((record) => record.event),
        ['approval.requested', 'approval.expired'],
      );
      assert.equal(toolCallsReceived(upstream), forwarded, 'nothing was forwarded unapproved');
      // Checked last, so that the recovery above is exercised whatever this says.
      assertAnsweredWith(refused, 'WARDEN_APPROVAL_UNAVAILABLE');
    },
  );
});
