/**
 * One agent must not be able to lock another out of an upstream. From the attacker's side: an
 * agent with no grant on an upstream opens sessions or sends 2026-07-28 requests there to start
 * children; a low-privilege agent opens sessions (or fires stateless calls) in a loop to take a
 * stdio upstream's every child; it replays, forges or DELETEs other agents' session ids; it
 * varies its declared capabilities to pile up the bridge's idle children. The finance agent must
 * still get in, every refusal must be specific and on the record, and a refused request must
 * start no child process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/config/load.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { WardenError, type ErrorCode } from '../src/domain/errors.js';
import { SessionRegistry, type SessionEnd } from '../src/mcp/session-registry.js';
import { ChildSlots, type SlotHolder } from '../src/mcp/upstream/child-slots.js';
import type { UpstreamSession } from '../src/mcp/upstream/types.js';
import { decideUpstreamUse, indexUpstreamGrants } from '../src/policy/may-use-upstream.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startTestGateway, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import {
  modernRequest,
  answerIn,
  answeredWithResult,
  assertWardenError,
  initializeRequest,
  openSession,
  postMcp,
  sendRaw,
  type RawReply,
} from './support/raw-http.js';

const PID_SERVER = fileURLToPath(new URL('./fixtures/pid-server.ts', import.meta.url));
/** A stdio upstream running the pid server; `tag` marks its children so a test can count them. */
const pidServer = (tag: string, extra: Record<string, unknown> = {}) => ({
  command: [process.execPath, '--import', 'tsx', PID_SERVER, `--warden-test-upstream=${tag}`],
  ...extra,
});
/** Room for a loaded 2-core machine, where one stdio child takes 1–3 s to start. */
const GATEWAY_TEST = { timeout: 180_000 };

const scratch = mkdtempSync(join(tmpdir(), 'warden-fair-sessions-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** The live pid-server children this test process started for upstream `tag`. */
function childrenOf(tag: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) !== process.pid || state === 'Z') continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.includes(PID_SERVER) && argv.includes(`--warden-test-upstream=${tag}`)) {
        pids.push(Number(entry));
      }
    } catch {
      // The process ended while being read.
    }
  }
  return pids;
}

/** Polls until `probe` holds; fails after `withinMs` (a bound against "never", not a measure). */
async function waitUntil(what: string, probe: () => boolean | Promise<boolean>, withinMs = 15_000) {
  const deadline = Date.now() + withinMs;
  while (!(await probe())) {
    assert.ok(Date.now() < deadline, `${what} did not happen within ${withinMs} ms`);
    await sleep(50);
  }
}

let nextId = 1;

async function request(
  url: string,
  headers: Record<string, string>,
  sessionId: string,
  method: string,
  params: Record<string, unknown> = {},
): Promise<{ reply: RawReply; id: number }> {
  const id = nextId++;
  const reply = await postMcp(url, { jsonrpc: '2.0', id, method, params }, { sessionId, headers });
  return { reply, id };
}

/** The pid of the child behind a session, asked of the child itself. */
async function childPid(url: string, headers: Record<string, string>, sessionId: string) {
  const { reply, id } = await request(url, headers, sessionId, 'tools/call', {
    name: 'pid',
    arguments: {},
  });
  assert.equal(reply.status, 200, reply.text);
  const text = (answerIn(reply, id).result?.['content'] as { text: string }[] | undefined)?.[0]
    ?.text;
  return Number(text);
}

async function ping(url: string, headers: Record<string, string>, sessionId: string) {
  return (await request(url, headers, sessionId, 'ping')).reply;
}

/** One 2026-07-28 request: the envelope in `_meta` and the mirrored headers, no session. */
async function postModern(
  url: string,
  headers: Record<string, string>,
  method: string,
  params: Record<string, unknown> = {},
  clientName = 'fair-sessions',
): Promise<{ reply: RawReply; id: number }> {
  const id = nextId++;
  const request = modernRequest(id, method, params, { clientName });
  const reply = await postMcp(url, request.body, {
    headers: { ...headers, ...request.headers },
  });
  return { reply, id };
}

/** Opens the session's GET stream, as SDK clients do; resolves to what closes it again. */
function holdServerStream(
  url: string,
  headers: Record<string, string>,
  sessionId: string,
): Promise<() => void> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const stream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'GET',
        headers: { ...headers, accept: 'text/event-stream', 'mcp-session-id': sessionId },
        agent: false,
      },
      (response) => {
        response.resume();
        if (response.statusCode !== 200) {
          reject(new Error(`the GET stream was answered ${response.statusCode}`));
          return;
        }
        resolve(() => stream.destroy());
      },
    );
    stream.on('error', reject);
    stream.end();
  });
}

async function endSession(url: string, headers: Record<string, string>, sessionId: string) {
  return sendRaw(url, { method: 'DELETE', headers: { ...headers, 'mcp-session-id': sessionId } });
}

/** The audit records under a reference, once `events` of them are there. */
async function recordsOf(store: Store, reference: string, events: number): Promise<AuditRecord[]> {
  let records: AuditRecord[] = [];
  await waitUntil(`${events} audit record(s) under ${reference}`, async () => {
    records = await store.audit.query({ requestId: reference });
    return records.length >= events;
  });
  return records;
}

/** Asserts a refusal the gate decided: the code, and exactly one call.denied with its reasons. */
async function assertRefusedOnRecord(
  store: Store,
  reply: RawReply,
  code: ErrorCode,
  id: string | number,
): Promise<void> {
  const body = assertWardenError(reply, code, id);
  const data = body.error?.data as { reference: string; reasons?: string[] };
  const records = await recordsOf(store, data.reference, 1);
  assert.deepEqual(
    records.map((record) => record.event),
    ['call.denied'],
  );
  assert.equal(records[0]?.decision?.effect, 'deny');
  assert.deepEqual(records[0]?.decision?.reasons, data.reasons);
}

/** Asserts a refusal after the gate admitted the request: call.allowed, then call.error. */
async function assertAdmittedThenRefused(
  store: Store,
  reply: RawReply,
  code: ErrorCode,
  id: string | number,
): Promise<void> {
  const body = assertWardenError(reply, code, id);
  const records = await recordsOf(store, String(body.error?.data?.reference), 2);
  assert.deepEqual(
    records.map((record) => record.event),
    ['call.allowed', 'call.error'],
  );
  assert.equal(records[1]?.errorCode, code);
}

describe('the grant gate, the per-agent cap and the bridge, through a real gateway', () => {
  const storeUrl = `sqlite:${join(scratch, 'fair.db')}`;
  let gateway: TestGateway;
  let store: Store;
  let finance: Record<string, string>;
  let low: Record<string, string>;
  let stranger: Record<string, string>;
  let nobody: Record<string, string>;
  const payments = () => gateway.endpoint('payments');

  before(async () => {
    gateway = await startTestGateway({
      store: storeUrl,
      audit: { hash_key_file: join(scratch, 'fair-hash.key') },
      // Long enough that nothing here is idle enough to be ended to make room.
      limits: { max_sessions_per_agent: 2, reclaim_idle_after: '10m' },
      agents: {
        'finance-bot': { roles: ['finance'] },
        'low-bot': { roles: ['low'] },
        'stranger-bot': { roles: ['crm_reader'] },
        'nobody-bot': { roles: [] },
      },
      roles: {
        finance: { grants: [{ tool: 'payments.pid' }, { tool: 'payments.sleep' }] },
        low: {
          grants: [{ tool: 'payments.pid' }, { tool: 'payments.sleep' }, { tool: 'docs.pid' }],
        },
        crm_reader: { grants: [{ tool: 'crm.pid' }] },
      },
      upstreams: {
        payments: pidServer('payments', { max_sessions: 8 }),
        crm: pidServer('crm', { max_sessions: 4 }),
        docs: pidServer('docs', { max_sessions: 8 }),
      },
    });
    store = await openStore(storeUrl);
    finance = await gateway.authHeaders({ agent: 'finance-bot' });
    low = await gateway.authHeaders({ agent: 'low-bot' });
    stranger = await gateway.authHeaders({ agent: 'stranger-bot' });
    nobody = await gateway.authHeaders({ agent: 'nobody-bot' });
  });

  after(async () => {
    await store?.close();
    await gateway?.close();
  });

  test(
    'an agent with no grant on an upstream is refused at initialize, on the record, and starts no child',
    GATEWAY_TEST,
    async () => {
      const before = childrenOf('payments').length;
      for (const headers of [stranger, nobody]) {
        const reply = await postMcp(payments(), initializeRequest(), { headers });
        await assertRefusedOnRecord(store, reply, 'WARDEN_NO_GRANT_ON_UPSTREAM', 'init');
        assert.equal(reply.headers['mcp-session-id'], undefined, 'no session was opened');
        const body = JSON.parse(reply.text) as { error: { data: { reasons: string[] } } };
        assert.match(body.error.data.reasons[0] ?? '', /gives agent \S+ anything on upstream/);
      }
      // Hammering makes no difference: each attempt is refused before anything is started.
      const attempts = await Promise.all(
        Array.from({ length: 6 }, () =>
          postMcp(payments(), initializeRequest(), { headers: stranger }),
        ),
      );
      for (const reply of attempts) assertWardenError(reply, 'WARDEN_NO_GRANT_ON_UPSTREAM', 'init');
      await sleep(300);
      assert.equal(childrenOf('payments').length, before, 'no child was started');
    },
  );

  test(
    'an agent with no grant is refused 2026-07-28 requests there too, and starts no child',
    GATEWAY_TEST,
    async () => {
      const before = childrenOf('payments').length;
      for (const [method, params] of [
        ['server/discover', {}],
        ['tools/list', {}],
        ['tools/call', { name: 'pid', arguments: {} }],
      ] as const) {
        const { reply, id } = await postModern(payments(), stranger, method, params);
        await assertRefusedOnRecord(store, reply, 'WARDEN_NO_GRANT_ON_UPSTREAM', id);
      }
      await sleep(300);
      assert.equal(childrenOf('payments').length, before, 'no child was started');
      // The gate is per upstream: where the agent holds a grant, it is served.
      const listed = await postModern(gateway.endpoint('crm'), stranger, 'tools/list');
      assert.ok(answerIn(listed.reply, listed.id).result, listed.reply.text);
      const { reply, id } = await postModern(gateway.endpoint('crm'), stranger, 'tools/call', {
        name: 'pid',
        arguments: {},
      });
      assert.ok(answerIn(reply, id).result, reply.text);
    },
  );

  test(
    'a stolen, forged or cross-upstream session id opens nothing, and DELETE cannot end another agent’s session',
    GATEWAY_TEST,
    async () => {
      const own = await openSession(payments(), finance);
      const pid = await childPid(payments(), finance, own);
      const before = childrenOf('payments').length;
      // Another agent holding finance's session id is told it does not exist: granted or not.
      for (const thief of [low, stranger, nobody]) {
        assertWardenError(
          await ping(payments(), thief, own),
          'WARDEN_SESSION_NOT_FOUND',
          nextId - 1,
        );
        const stolen = await request(payments(), thief, own, 'tools/call', {
          name: 'pid',
          arguments: {},
        });
        assertWardenError(stolen.reply, 'WARDEN_SESSION_NOT_FOUND', stolen.id);
        const deleted = await endSession(payments(), thief, own);
        assert.equal(deleted.status, 404, deleted.text);
      }
      // A forged id, and a session of another upstream presented here, are unknown too.
      assertWardenError(
        await ping(payments(), low, 'A'.repeat(32)),
        'WARDEN_SESSION_NOT_FOUND',
        nextId - 1,
      );
      const crmSession = await openSession(gateway.endpoint('crm'), stranger);
      assertWardenError(
        await ping(payments(), stranger, crmSession),
        'WARDEN_SESSION_NOT_FOUND',
        nextId - 1,
      );
      // initialize cannot be pointed at an existing session either.
      const conflict = await postMcp(payments(), initializeRequest(), {
        headers: finance,
        sessionId: own,
      });
      assertWardenError(conflict, 'WARDEN_SESSION_CONFLICT', 'init');
      assert.equal(childrenOf('payments').length, before, 'no child was started');
      // Finance's session is untouched, on the same child.
      assert.equal(await childPid(payments(), finance, own), pid);
      assert.equal((await endSession(payments(), finance, own)).status, 200);
      assert.equal((await endSession(gateway.endpoint('crm'), stranger, crmSession)).status, 200);
    },
  );

  test(
    'a low-privilege agent opening sessions in a loop is held to its own cap, and the finance agent still gets in',
    GATEWAY_TEST,
    async () => {
      await waitUntil(
        'earlier sessions’ children exiting',
        () => childrenOf('payments').length === 0,
      );
      const before = childrenOf('payments').length;
      const held = [await openSession(payments(), low), await openSession(payments(), low)];
      // Its sessions are in use, as an SDK client's are: each holds its GET stream open.
      const streams = await Promise.all(
        held.map((sessionId) => holdServerStream(payments(), low, sessionId)),
      );
      for (let attempt = 0; attempt < 4; attempt += 1) {
        const reply = await postMcp(payments(), initializeRequest(), { headers: low });
        if (attempt === 0) {
          await assertAdmittedThenRefused(
            store,
            reply,
            'WARDEN_TOO_MANY_SESSIONS_FOR_AGENT',
            'init',
          );
          const body = JSON.parse(reply.text) as { error: { data: { limit: number } } };
          assert.equal(body.error.data.limit, 2);
        } else {
          assertWardenError(reply, 'WARDEN_TOO_MANY_SESSIONS_FOR_AGENT', 'init');
        }
      }
      // Its stateless requests draw on the same share.
      const flood = await postModern(payments(), low, 'tools/call', { name: 'pid', arguments: {} });
      await assertAdmittedThenRefused(
        store,
        flood.reply,
        'WARDEN_TOO_MANY_SESSIONS_FOR_AGENT',
        flood.id,
      );
      assert.equal(
        childrenOf('payments').length,
        before + 2,
        'only its two sessions have children',
      );

      const financeSession = await openSession(payments(), finance);
      assert.ok((await childPid(payments(), finance, financeSession)) > 0);
      const modern = await postModern(payments(), finance, 'tools/call', {
        name: 'pid',
        arguments: {},
      });
      assert.ok(answerIn(modern.reply, modern.id).result, modern.reply.text);
      // The cap refused the extra sessions; it never ended the agent's own.
      for (const sessionId of held) assert.ok((await childPid(payments(), low, sessionId)) > 0);

      for (const close of streams) close();
      for (const sessionId of held) await endSession(payments(), low, sessionId);
      await endSession(payments(), finance, financeSession);
    },
  );

  test(
    'a low-privilege agent flooding 2026-07-28 calls is held to its cap, and the finance agent’s calls still answer',
    GATEWAY_TEST,
    async () => {
      const flood = Array.from({ length: 5 }, () =>
        postModern(payments(), low, 'tools/call', { name: 'sleep', arguments: { ms: 5000 } }),
      );
      // Finance's call runs while the flood holds what the cap lets it hold.
      const modern = await postModern(payments(), finance, 'tools/call', {
        name: 'pid',
        arguments: {},
      });
      assert.ok(answerIn(modern.reply, modern.id).result, modern.reply.text);
      const financeSession = await openSession(payments(), finance);
      assert.ok((await childPid(payments(), finance, financeSession)) > 0);
      await endSession(payments(), finance, financeSession);

      const outcomes = await Promise.all(flood);
      const answered = outcomes.filter(({ reply, id }) => answeredWithResult(reply, id));
      const refused = outcomes.filter(({ reply, id }) => !answeredWithResult(reply, id));
      assert.equal(answered.length, 2, 'as many calls as its cap');
      for (const { reply, id } of answered) {
        assert.deepEqual(answerIn(reply, id).result?.['content'], [
          { type: 'text', text: 'slept 5000' },
        ]);
      }
      for (const { reply, id } of refused) {
        assertWardenError(reply, 'WARDEN_TOO_MANY_SESSIONS_FOR_AGENT', id);
      }
    },
  );

  test(
    'opening and closing sessions rapidly leaks no child and no share',
    GATEWAY_TEST,
    async () => {
      const before = childrenOf('payments').length;
      // Three times its cap, one after another and two at a time.
      for (let round = 0; round < 3; round += 1) {
        const sessionId = await openSession(payments(), low);
        assert.equal((await endSession(payments(), low, sessionId)).status, 200);
      }
      for (let round = 0; round < 2; round += 1) {
        const pair = await Promise.all([
          openSession(payments(), low),
          openSession(payments(), low),
        ]);
        await Promise.all(pair.map((sessionId) => endSession(payments(), low, sessionId)));
      }
      await waitUntil('every closed session’s child exiting', () => {
        return childrenOf('payments').length <= before;
      });
      // The share is whole again: two sessions still fit.
      const again = [await openSession(payments(), low), await openSession(payments(), low)];
      for (const sessionId of again) await endSession(payments(), low, sessionId);
    },
  );

  test(
    'an agent varying its declared client cannot pile up the bridge’s idle children',
    GATEWAY_TEST,
    async () => {
      const before = childrenOf('docs').length;
      // A tool is called only once the gateway has seen it listed.
      const listed = await postModern(
        gateway.endpoint('docs'),
        low,
        'tools/list',
        {},
        'disguise-0',
      );
      assert.ok(answerIn(listed.reply, listed.id).result, listed.reply.text);
      for (let variant = 0; variant < 6; variant += 1) {
        const { reply, id } = await postModern(
          gateway.endpoint('docs'),
          low,
          'tools/call',
          { name: 'pid', arguments: {} },
          `disguise-${variant}`,
        );
        assert.ok(answerIn(reply, id).result, reply.text);
      }
      // Each disguise needed its own upstream session; at most 4 are kept idle for one caller.
      await waitUntil('the idle children beyond 4 exiting', () => {
        return childrenOf('docs').length <= before + 4;
      });
    },
  );
});

describe('reclaiming idle sessions, through a real gateway', () => {
  const storeUrl = `sqlite:${join(scratch, 'reclaim.db')}`;
  const RECLAIM_MS = 1000;
  let gateway: TestGateway;
  let store: Store;
  let finance: Record<string, string>;
  let low: Record<string, string>;
  let ops: Record<string, string>;
  const payments = () => gateway.endpoint('payments');
  /** Sessions the tests below hand on to each other. */
  const open: { low: string[]; finance?: string; ops?: string } = { low: [] };

  before(async () => {
    gateway = await startTestGateway({
      store: storeUrl,
      audit: { hash_key_file: join(scratch, 'reclaim-hash.key') },
      limits: { max_sessions_per_agent: 2, reclaim_idle_after: `${RECLAIM_MS}ms` },
      agents: {
        'finance-bot': { roles: ['payer'] },
        'low-bot': { roles: ['payer'] },
        'ops-bot': { roles: ['payer'] },
      },
      roles: { payer: { grants: [{ tool: 'payments.pid' }, { tool: 'payments.sleep' }] } },
      upstreams: { payments: pidServer('reclaim', { max_sessions: 3 }) },
    });
    store = await openStore(storeUrl);
    finance = await gateway.authHeaders({ agent: 'finance-bot' });
    low = await gateway.authHeaders({ agent: 'low-bot' });
    ops = await gateway.authHeaders({ agent: 'ops-bot' });
  });

  after(async () => {
    await store?.close();
    await gateway?.close();
  });

  test(
    'at its cap, an agent’s new session ends its own least recently used idle session, never another agent’s',
    GATEWAY_TEST,
    async () => {
      const first = await openSession(payments(), low);
      const second = await openSession(payments(), low);
      open.finance = await openSession(payments(), finance);
      // Its first session is now the one it used least recently; none has a stream or a call open.
      assert.equal((await ping(payments(), low, second)).status, 200);
      const third = await openSession(payments(), low);
      assertWardenError(await ping(payments(), low, first), 'WARDEN_SESSION_NOT_FOUND', nextId - 1);
      assert.equal((await ping(payments(), low, second)).status, 200);
      assert.equal((await ping(payments(), low, third)).status, 200);
      // Finance's session is as idle as any, and untouched: it is not low's to end.
      assert.equal((await ping(payments(), finance, open.finance)).status, 200);
      open.low = [second, third];
    },
  );

  test(
    'a full stdio upstream gives its longest-idle session’s child to a newcomer, and that client is told 404',
    GATEWAY_TEST,
    async () => {
      const victim = open.finance ?? assert.fail('the previous test opened no finance session');
      await waitUntil('three children', () => childrenOf('reclaim').length === 3);
      await sleep(RECLAIM_MS + 500);
      // Low's sessions are in use again; finance's is the only one idle past the threshold.
      for (const sessionId of open.low) {
        assert.equal((await ping(payments(), low, sessionId)).status, 200);
      }
      open.ops = await openSession(payments(), ops);
      assert.ok((await childPid(payments(), ops, open.ops)) > 0);
      assertWardenError(
        await ping(payments(), finance, victim),
        'WARDEN_SESSION_NOT_FOUND',
        nextId - 1,
      );
      for (const sessionId of open.low) {
        assert.equal((await ping(payments(), low, sessionId)).status, 200);
      }
      await waitUntil('the reclaimed child exiting', () => childrenOf('reclaim').length === 3);
    },
  );

  test(
    'a full stdio upstream whose sessions are all busy refuses a newcomer (503) and ends none',
    GATEWAY_TEST,
    async () => {
      const busy = [
        ...open.low.map((sessionId) => ({ headers: low, sessionId })),
        { headers: ops, sessionId: open.ops ?? assert.fail('the previous test opened no session') },
      ];
      const sleepsBefore = gateway.logs.filter((log) =>
        String(log['stderr']).includes('sleeping'),
      ).length;
      const calls = busy.map(({ headers, sessionId }) =>
        request(payments(), headers, sessionId, 'tools/call', {
          name: 'sleep',
          arguments: { ms: 6000 },
        }),
      );
      await waitUntil(
        'every session busy with a call',
        () =>
          gateway.logs.filter((log) => String(log['stderr']).includes('sleeping')).length >=
          sleepsBefore + busy.length,
      );
      const refused = await postMcp(payments(), initializeRequest(), { headers: finance });
      await assertAdmittedThenRefused(store, refused, 'WARDEN_TOO_MANY_SESSIONS', 'init');
      for (const { reply, id } of await Promise.all(calls)) {
        assert.ok(answerIn(reply, id).result, reply.text);
      }
      for (const { headers, sessionId } of busy) {
        assert.equal((await endSession(payments(), headers, sessionId)).status, 200);
      }
    },
  );

  test(
    'an idle session the 2026-07-28 bridge holds gives up its child, and gets a new one when next used',
    GATEWAY_TEST,
    async () => {
      const askPid = async () => {
        const { reply, id } = await postModern(payments(), finance, 'tools/call', {
          name: 'pid',
          arguments: {},
        });
        const answer = answerIn(reply, id);
        assert.ok(answer.result, reply.text);
        return Number((answer.result['content'] as { text: string }[])[0]?.text);
      };
      const first = await askPid();
      await sleep(RECLAIM_MS + 500);
      // Three sessions fill the upstream; the bridge's idle session is the one idle longest.
      const sessions = [
        { headers: low, sessionId: await openSession(payments(), low) },
        { headers: low, sessionId: await openSession(payments(), low) },
        { headers: ops, sessionId: await openSession(payments(), ops) },
      ];
      await waitUntil('the bridge’s child exiting', () => !childrenOf('reclaim').includes(first));
      const [freed, ...kept] = sessions;
      assert.ok(freed);
      assert.equal((await endSession(payments(), freed.headers, freed.sessionId)).status, 200);
      // The stateless client never notices: its next call is answered, by a new child.
      const second = await askPid();
      assert.ok(second > 0 && second !== first, `${first} then ${second}`);
      for (const { headers, sessionId } of kept) await endSession(payments(), headers, sessionId);
    },
  );
});

describe('may an agent use an upstream at all', () => {
  const cedarFile = join(scratch, 'extra.cedar');
  writeFileSync(
    cedarFile,
    [
      '@id("auditors-on-payments")',
      'permit (principal in Warden::Role::"auditor", action == Warden::Action::"call_tool", resource in Warden::Upstream::"payments") when { context.now > 0 };',
      '@id("export-for-special-bot")',
      'permit (principal == Warden::Agent::"special-bot", action, resource == Warden::Tool::"crm.export");',
      '@id("nobody-on-research")',
      'forbid (principal, action, resource in Warden::Upstream::"research");',
      '',
    ].join('\n'),
  );
  const config = parseConfig(
    {
      auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
      agents: { bot: { roles: [] } },
      upstreams: {
        payments: { url: 'http://127.0.0.1:9/mcp' },
        crm: { url: 'http://127.0.0.1:9/mcp' },
        research: { url: 'http://127.0.0.1:9/mcp' },
      },
      roles: {
        finance: { grants: [{ tool: 'payments.issue_payment' }] },
        platform: { trusted: true, grants: [{ tool: '*' }] },
        temp: { grants: [{ tool: 'crm.search_customers', expires: '2026-01-01' }] },
        reader: { grants: [{ resource: 'research:docs/*' }] },
        auditor: {},
        pilot: { mode: 'monitor' },
      },
      policy: { files: [cedarFile] },
    },
    'test',
  );
  const index = indexUpstreamGrants(config.policy);
  const NOW = Date.parse('2026-06-01T12:00:00Z');
  const decide = (
    roles: string[],
    upstream: string,
    options: { agent?: string; now?: number; breakglass?: Map<string, string> } = {},
  ) =>
    decideUpstreamUse(index, {
      identity: { agent: options.agent ?? 'some-bot', roles },
      upstream,
      now: options.now ?? NOW,
      breakglass: options.breakglass ?? new Map(),
    });

  test('a grant on one tool opens its upstream, and no other', () => {
    const allowed = decide(['finance'], 'payments');
    assert.equal(allowed.effect, 'allow');
    assert.deepEqual(allowed.policies, [config.policy.grants[0]?.id]);
    const denied = decide(['finance'], 'crm');
    assert.equal(denied.effect, 'deny');
    assert.match(denied.reasons[0] ?? '', /no grant of role\(s\) finance/);
    assert.equal(decide(['reader'], 'research').effect, 'allow', 'resource grants count');
  });

  test('a trusted wildcard role may use every upstream; no roles, or unknown ones, none', () => {
    for (const upstream of ['payments', 'crm', 'research']) {
      assert.equal(decide(['platform'], upstream).effect, 'allow');
      assert.equal(decide([], upstream).effect, 'deny');
      assert.equal(decide(['root'], upstream).effect, 'deny');
    }
  });

  test('an expired grant gives nothing from its first second past expires', () => {
    const expiry = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(decide(['temp'], 'crm', { now: expiry - 1 }).effect, 'allow');
    assert.equal(decide(['temp'], 'crm', { now: expiry }).effect, 'deny');
  });

  test('a break-glass grant in force opens its upstream, and only that one', () => {
    const breakglass = new Map([['crm.update_record', 'bg-1']]);
    const allowed = decide([], 'crm', { breakglass });
    assert.equal(allowed.effect, 'allow');
    assert.deepEqual(allowed.policies, ['warden.breakglass']);
    assert.equal(decide([], 'payments', { breakglass }).effect, 'deny');
    // Not a prefix match on the name: "crm" does not open "crm-archive".
    assert.equal(
      decide([], 'crm', { breakglass: new Map([['crm-archive.get', 'bg-2']]) }).effect,
      'deny',
    );
  });

  test('a hand-written permit counts by its scope; a forbid opens nothing', () => {
    assert.equal(decide(['auditor'], 'payments').effect, 'allow');
    assert.equal(decide(['auditor'], 'crm').effect, 'deny');
    assert.equal(decide([], 'crm', { agent: 'special-bot' }).effect, 'allow');
    assert.equal(decide([], 'payments', { agent: 'special-bot' }).effect, 'deny');
    assert.equal(decide([], 'research').effect, 'deny');
  });

  test('roles all in monitor mode are let through, as their calls would be', () => {
    const monitored = decide(['pilot'], 'payments');
    assert.equal(monitored.effect, 'allow');
    assert.equal(monitored.monitored?.effect, 'deny');
    assert.equal(decide(['pilot', 'auditor'], 'crm').effect, 'deny', 'one enforcing role enforces');
  });
});

test('each agent may hold 8 sessions on an upstream by default, well below a stdio upstream’s 32', () => {
  const raw = {
    auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
    agents: { bot: { roles: [] } },
    upstreams: { files: { command: ['true'] } },
  };
  const config = parseConfig(raw, 'test');
  assert.equal(config.limits.maxSessionsPerAgent, 8);
  assert.equal(config.limits.reclaimIdleAfterMs, 60_000);
  const files = config.upstreams.get('files');
  assert.ok(files?.kind === 'stdio' && files.maxSessions > config.limits.maxSessionsPerAgent);
  assert.throws(
    () => parseConfig({ ...raw, limits: { max_sessions_per_agent: 0 } }, 'test'),
    /limits\.max_sessions_per_agent/,
  );
});

describe('the session registry: each agent’s share of an upstream', () => {
  interface FakeUpstream extends UpstreamSession {
    terminated: boolean;
  }
  const fakeUpstream = (): FakeUpstream => ({
    terminated: false,
    onEnded: undefined,
    send: () => Promise.resolve({ kind: 'accepted' }),
    openServerStream: () => Promise.resolve({ kind: 'accepted' }),
    terminate() {
      this.terminated = true;
      return Promise.resolve();
    },
  });

  function registry(maxPerAgent = 2, maxSessions = 100) {
    const clock = { now: 0 };
    const ended: Array<{ id: string; reason: SessionEnd }> = [];
    let opened = 0;
    const sessions = new SessionRegistry(
      { maxSessions, maxPerAgent, idleTimeoutMs: 3_600_000 },
      (session, reason) => ended.push({ id: session.id, reason }),
      () => clock.now,
    );
    const open = (agent: string, owner = agent, upstreamName = 'payments') =>
      sessions.create({
        upstreamName,
        owner,
        agent,
        protocolVersion: undefined,
        open: () => {
          opened += 1;
          return fakeUpstream();
        },
      });
    return { sessions, clock, ended, open, opened: () => opened };
  }

  const refusedWith = (code: ErrorCode) => (error: unknown) =>
    error instanceof WardenError && error.code === code;

  test('an agent at its cap whose sessions are all in use is refused; other agents are not', (t) => {
    const { sessions, open, opened, ended } = registry();
    t.after(() => sessions.close());
    // A GET stream open, or a request in flight.
    open('low-bot').activeExchanges = 1;
    open('low-bot').activeExchanges = 1;
    assert.throws(() => open('low-bot'), refusedWith('WARDEN_TOO_MANY_SESSIONS_FOR_AGENT'));
    assert.equal(opened(), 2, 'a refused session never opens its upstream half');
    open('finance-bot');
    open('low-bot', 'low-bot', 'crm');
    assert.deepEqual(ended, []);
  });

  test('at its cap, an agent’s new session ends its own least recently used idle one, never another agent’s', (t) => {
    const { sessions, open, clock, ended } = registry(3);
    t.after(() => sessions.close());
    // One agent acting for two users: the cap counts the agent, and so does eviction.
    const finance = open('finance-bot');
    clock.now = 10;
    const alice = open('low-bot', 'low-bot/alice');
    clock.now = 20;
    const bob = open('low-bot', 'low-bot/bob');
    clock.now = 30;
    const bob2 = open('low-bot', 'low-bot/bob');
    clock.now = 40;
    assert.equal(sessions.find(alice.id, 'payments', 'low-bot/alice'), alice, 'alice is back');
    const bob3 = open('low-bot', 'low-bot/bob');
    assert.deepEqual(ended, [{ id: bob.id, reason: 'evicted' }], 'its least recently used one');
    // Low's sessions are all in use now; finance's is idle, and the oldest, but not low's to end.
    for (const session of [alice, bob2, bob3]) session.activeExchanges = 1;
    clock.now = 60_000;
    assert.throws(
      () => open('low-bot', 'low-bot/alice'),
      refusedWith('WARDEN_TOO_MANY_SESSIONS_FOR_AGENT'),
    );
    assert.throws(
      () => sessions.holdExchange('payments', 'low-bot'),
      refusedWith('WARDEN_TOO_MANY_SESSIONS_FOR_AGENT'),
    );
    assert.equal(ended.length, 1);
    assert.equal(sessions.find(finance.id, 'payments', 'finance-bot'), finance);
  });

  test('a 2026-07-28 request in flight counts against the share until it ends', (t) => {
    const { sessions, open } = registry();
    t.after(() => sessions.close());
    const release = sessions.holdExchange('payments', 'low-bot');
    open('low-bot').activeExchanges = 1;
    assert.throws(
      () => sessions.holdExchange('payments', 'low-bot'),
      refusedWith('WARDEN_TOO_MANY_SESSIONS_FOR_AGENT'),
    );
    release();
    release();
    open('low-bot').activeExchanges = 1;
    // Released twice, counted once: both sessions in use fill the share.
    assert.throws(() => open('low-bot'), refusedWith('WARDEN_TOO_MANY_SESSIONS_FOR_AGENT'));
  });

  test('the gateway-wide limit still holds, and a session its upstream ends frees its room', (t) => {
    const { sessions, open, ended } = registry(2, 3);
    t.after(() => sessions.close());
    const first = open('a');
    open('b');
    open('c');
    assert.throws(() => open('d'), refusedWith('WARDEN_TOO_MANY_SESSIONS'));
    // While a call is under way (held for approval, say) the session goes on; else it ends.
    first.callsInFlight = 1;
    first.upstream.onEnded?.();
    assert.deepEqual(ended, []);
    first.callsInFlight = 0;
    first.upstream.onEnded?.();
    assert.deepEqual(ended, [{ id: first.id, reason: 'upstream_ended' }]);
    open('d');
  });
});

describe('child slots of a stdio upstream', () => {
  interface FakeHolder extends SlotHolder {
    readonly name: string;
    idle: number | undefined;
    reclaimed: boolean;
  }
  const holder = (name: string, idle: number | undefined): FakeHolder => ({
    name,
    idle,
    reclaimed: false,
    idleSince() {
      return this.idle;
    },
    reclaim() {
      this.reclaimed = true;
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
  });

  test('a full upstream reclaims the longest-idle child past the threshold, never a busy or recent one', async () => {
    const clock = { now: 10_000 };
    const slots = new ChildSlots<FakeHolder>({
      limit: 2,
      reclaimIdleAfterMs: 1000,
      now: () => clock.now,
    });
    const older = holder('older', 8000);
    const recent = holder('recent', 9500);
    await slots.claim(older);
    await slots.claim(recent);
    const busy = holder('busy', undefined);
    await slots.claim(busy);
    assert.equal(older.reclaimed, true);
    assert.equal(recent.reclaimed, false);
    // Left: recent (idle 500 ms) and busy: neither may be taken.
    await assert.rejects(
      slots.claim(holder('late', 10_000)),
      (error: unknown) => error instanceof WardenError && error.code === 'WARDEN_TOO_MANY_SESSIONS',
    );
    clock.now = 11_000;
    await slots.claim(holder('later', 11_000));
    assert.equal(recent.reclaimed, true);
    assert.equal(busy.reclaimed, false);
    assert.equal(slots.size, 2);
    await slots.close();
    await assert.rejects(
      slots.claim(holder('after-close', 11_000)),
      (error: unknown) => error instanceof WardenError && error.code === 'WARDEN_SHUTTING_DOWN',
    );
  });
});
