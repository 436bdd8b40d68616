// Approvals end to end: a payment that needs approval is held (with progress to the client),
// released exactly once with exactly the approved arguments when an approver decides through the
// admin API with their own token, refused on denial, expiry or self-approval, and withdrawn when
// the client goes away. Every step is on the audit log under the call's request id.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tellCallStory } from '../src/audit/call-story.js';
import { createBusinessServer } from '../src/demo/business-server.js';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest, Store } from '../src/store/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import {
  MCP_POST_HEADERS,
  messagesOf,
  openSession,
  postMcp,
  type WireMessage,
} from './support/raw-http.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-approvals-'));
const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
let upstream: McpHttpUpstream;
let gateway: TestGateway;
/** A second connection to the gateway's database, as the CLI or another replica would have. */
let store: Store;

const PAYMENT = { vendor: 'acme', amount: 420.5, currency: 'EUR', memo: 'INV-7' };
// Every held call races this clock: the tests that decide must get their decisions in first, on
// however loaded a machine, and the one that lets a call expire waits it out.
const APPROVAL_TIMEOUT = '6s';
/** Bound on waiting for what the gateway does in the background (holding a call, logging it). */
const BACKGROUND_MS = 10_000;

before(async () => {
  upstream = await startMcpHttpUpstream(() => createBusinessServer({ domains: ['payments'] }));
  gateway = await startTestGateway({
    store: storeUrl,
    log: { level: 'silent' },
    audit: { hash_key_file: join(dir, 'hash.key'), stream: 'approvals-gw' },
    upstreams: { payments: { url: upstream.url } },
    agents: {
      'finance-bot': { roles: ['finance_executor'] },
      'approver-console': { roles: ['warden_approver'] },
    },
    lists: { approved_vendors: ['acme', 'globex'] },
    scopes: {
      vendor_whitelist: { arg: 'vendor', in_list: 'approved_vendors' },
      max_amount_1000_eur: [
        { arg: 'amount', max: 1000 },
        { arg: 'currency', in: ['EUR'] },
      ],
    },
    roles: {
      finance_executor: {
        grants: [
          {
            tool: 'payments.issue_payment',
            scope: ['vendor_whitelist', 'max_amount_1000_eur'],
            requires_approval: true,
            approvers: ['finance_approver'],
            approval_timeout: APPROVAL_TIMEOUT,
          },
        ],
      },
    },
    approvals: {
      approvers: {
        'carol@example.com': { roles: ['finance_approver'] },
        'alan@example.com': { roles: ['finance_approver'] },
        'dave@example.com': { roles: ['auditor'] },
      },
      // These tests hold the call open; approvals-delivery.test.ts covers `retry`.
      delivery: 'hold',
      poll_interval: '50ms',
      progress_interval: '100ms',
    },
  });
  store = await openStore(storeUrl);
});

after(async () => {
  await gateway.close();
  await store.close();
  await upstream.close();
});

interface HeldCall {
  /** Resolves with the reply once the call is released or refused. */
  readonly reply: Promise<{ status: number; messages: WireMessage[]; requestId: string }>;
  readonly approval: ApprovalRequest;
  /** Resolves once the client has received a progress notification for the held call. */
  readonly progressed: Promise<void>;
}

/** Starts a payment as finance-bot acting for alan, and waits until its approval is pending. */
async function startPayment(args: Record<string, unknown> = PAYMENT): Promise<HeldCall> {
  const headers = await gateway.authHeaders({ agent: 'finance-bot', user: 'alan@example.com' });
  const url = gateway.endpoint('payments');
  const sessionId = await openSession(url, headers);
  const known = new Set((await store.approvals.list()).map((request) => request.id));
  let progressed: () => void = () => undefined;
  const progress = new Promise<void>((resolve) => (progressed = resolve));
  const reply = (async () => {
    // Read as it arrives, so the test can tell when the client has been told of progress.
    const response = await fetch(url, {
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, ...headers, 'mcp-session-id': sessionId },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: { name: 'issue_payment', arguments: args, _meta: { progressToken: 'pay-1' } },
      }),
    });
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of response.body ?? []) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes('"notifications/progress"')) progressed();
    }
    text += decoder.decode();
    const contentType = response.headers.get('content-type') ?? '';
    return {
      status: response.status,
      messages: messagesOf({
        status: response.status,
        headers: { 'content-type': contentType },
        text,
      }),
      requestId: String(response.headers.get('x-request-id')),
    };
  })();
  const deadline = Date.now() + BACKGROUND_MS;
  for (;;) {
    const fresh = (await store.approvals.list({ status: 'pending' })).find(
      (request) => !known.has(request.id),
    );
    if (fresh) return { reply, approval: fresh, progressed: progress };
    assert.ok(Date.now() < deadline, 'no approval request appeared');
    await sleep(25);
  }
}

async function decide(
  id: string,
  verdict: 'approve' | 'deny',
  user: string,
  reason = 'checked the invoice',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = await gateway.token({ agent: 'approver-console', user });
  const response = await fetch(`${gateway.url}/admin/approvals/${id}/${verdict}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function recordsOf(requestId: string) {
  return store.audit.query({ requestId });
}

test('an approved payment is forwarded once, with exactly the approved arguments, after progress', async () => {
  const before = upstream.callsTo('issue_payment').length;
  const held = await startPayment();
  assert.equal(held.approval.agent, 'finance-bot');
  assert.equal(held.approval.user, 'alan@example.com');
  assert.deepEqual(
    JSON.parse(held.approval.arguments),
    PAYMENT,
    'the approver sees the full arguments',
  );
  assert.deepEqual(held.approval.approverRoles, ['finance_approver']);
  // Decided only once the held client has heard of progress: no guess at how long that takes.
  await Promise.race([
    held.progressed,
    held.reply.then(() => assert.fail('the call was answered before any progress')),
  ]);
  assert.equal(upstream.callsTo('issue_payment').length, before, 'nothing forwarded while held');
  const decided = await decide(held.approval.id, 'approve', 'carol@example.com');
  assert.equal(decided.status, 200, JSON.stringify(decided.body));
  const { status, messages, requestId } = await held.reply;
  assert.equal(status, 200);
  const progress = messages.filter((m) => m.method === 'notifications/progress');
  assert.ok(progress.length >= 1, 'the held client received progress notifications');
  assert.equal(progress[0]?.params?.['progressToken'], 'pay-1');
  const answer = messages.find((m) => m.id === 9);
  assert.ok(answer?.result, `the call was answered: ${JSON.stringify(answer)}`);
  const calls = upstream.callsTo('issue_payment').slice(before);
  assert.equal(calls.length, 1, 'forwarded exactly once');
  assert.deepEqual(calls[0]?.params?.['arguments'], PAYMENT, 'with exactly the approved arguments');

  const deadline = Date.now() + BACKGROUND_MS;
  let events: string[] = [];
  while (Date.now() < deadline) {
    events = (await recordsOf(requestId)).map((record) => record.event);
    if (events.includes('call.result')) break;
    await sleep(25);
  }
  assert.deepEqual(events, [
    'approval.requested',
    'approval.granted',
    'call.allowed',
    'call.result',
  ]);
  const story = tellCallStory(await recordsOf(requestId));
  assert.match(story, /approval requested/);
  assert.match(story, /carol@example\.com/);
  assert.match(story, /approved by carol@example\.com/);
});

test('a consumed approval cannot be decided again or reused', async () => {
  const [granted] = await store.approvals.list({ status: 'granted' });
  assert.ok(granted?.consumedAt !== undefined, 'the approval was used');
  const again = await decide(granted.id, 'approve', 'alan@example.com');
  assert.equal(again.status, 409);
});

test('a denied payment is refused with the approver’s reason and never forwarded', async () => {
  const before = upstream.callsTo('issue_payment').length;
  const held = await startPayment({ ...PAYMENT, amount: 999 });
  const decided = await decide(held.approval.id, 'deny', 'carol@example.com', 'duplicate invoice');
  assert.equal(decided.status, 200);
  const { messages, requestId } = await held.reply;
  const answer = messages.find((m) => m.id === 9);
  assert.equal(answer?.error?.data?.code, 'WARDEN_APPROVAL_REFUSED');
  assert.equal(answer?.error?.code, -32035);
  assert.equal(upstream.callsTo('issue_payment').length, before);
  const events = (await recordsOf(requestId)).map((record) => record.event);
  assert.deepEqual(events, ['approval.requested', 'approval.refused']);
});

test('the requesting user cannot approve their own payment; an approver without the role cannot either', async () => {
  const held = await startPayment({ ...PAYMENT, amount: 12 });
  const self = await decide(held.approval.id, 'approve', 'alan@example.com');
  assert.equal(self.status, 403, JSON.stringify(self.body));
  const outsider = await decide(held.approval.id, 'approve', 'dave@example.com');
  assert.equal(outsider.status, 403, JSON.stringify(outsider.body));
  const stranger = await decide(held.approval.id, 'approve', 'mallory@example.com');
  assert.equal(stranger.status, 403, JSON.stringify(stranger.body));
  // Nobody eligible decides: the call expires (at APPROVAL_TIMEOUT) and is refused.
  const { messages, requestId } = await held.reply;
  const answer = messages.find((m) => m.id === 9);
  assert.equal(answer?.error?.data?.code, 'WARDEN_APPROVAL_EXPIRED');
  const events = (await recordsOf(requestId)).map((record) => record.event);
  assert.deepEqual(events, ['approval.requested', 'approval.expired']);
});

test('a decision made through another connection to the store (the CLI) releases the call', async () => {
  const { createApprovalService } = await import('../src/approvals/approval-service.js');
  const cli = createApprovalService({
    store,
    config: { pollIntervalMs: 50 },
    now: Date.now,
    record: async () => {},
    notify: () => {},
  });
  const held = await startPayment({ ...PAYMENT, amount: 77 });
  await cli.decide(
    held.approval.id,
    { user: 'carol@example.com', roles: ['finance_approver'] },
    'approve',
    'ok',
  );
  const { messages } = await held.reply;
  assert.ok(messages.find((m) => m.id === 9)?.result, 'released by a decision made elsewhere');
});

test('a client that goes away withdraws its approval request; nothing is forwarded', async () => {
  const before = upstream.callsTo('issue_payment').length;
  const headers = await gateway.authHeaders({ agent: 'finance-bot', user: 'alan@example.com' });
  const url = gateway.endpoint('payments');
  const sessionId = await openSession(url, headers);
  const known = new Set((await store.approvals.list()).map((request) => request.id));
  const controller = new AbortController();
  const call = fetch(url, {
    method: 'POST',
    signal: controller.signal,
    headers: {
      ...headers,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'issue_payment', arguments: { ...PAYMENT, amount: 5 } },
    }),
  }).catch(() => undefined);
  let pending: ApprovalRequest | undefined;
  for (
    let deadline = Date.now() + BACKGROUND_MS;
    !pending && Date.now() < deadline;
    await sleep(25)
  ) {
    pending = (await store.approvals.list({ status: 'pending' })).find((r) => !known.has(r.id));
  }
  assert.ok(pending, 'the call is held');
  controller.abort();
  await call;
  let status = pending.status;
  for (let deadline = Date.now() + BACKGROUND_MS; status === 'pending' && Date.now() < deadline;) {
    await sleep(25);
    status = (await store.approvals.get(pending.id))?.status ?? status;
  }
  assert.equal(status, 'withdrawn');
  const late = await decide(pending.id, 'approve', 'carol@example.com');
  assert.equal(late.status, 409, 'a withdrawn request cannot be approved afterwards');
  assert.equal(upstream.callsTo('issue_payment').length, before);
});

test('a payment outside the grant is denied before approval, and its story says why', async () => {
  const before = upstream.callsTo('issue_payment').length;
  const headers = await gateway.authHeaders({ agent: 'finance-bot', user: 'alan@example.com' });
  const url = gateway.endpoint('payments');
  const sessionId = await openSession(url, headers);
  const pending = (await store.approvals.list({ status: 'pending' })).length;
  const reply = await postMcp(
    url,
    {
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: { name: 'issue_payment', arguments: { ...PAYMENT, vendor: 'Evil Corp' } },
    },
    { sessionId, headers },
  );
  const answer = messagesOf(reply).find((m) => m.id === 4);
  assert.equal(answer?.error?.data?.code, 'WARDEN_POLICY_DENIED');
  assert.equal(
    (await store.approvals.list({ status: 'pending' })).length,
    pending,
    'no approval asked',
  );
  assert.equal(upstream.callsTo('issue_payment').length, before);
  const reference = String(answer?.error?.data?.reference);
  const records = await recordsOf(reference);
  assert.deepEqual(
    records.map((record) => record.event),
    ['call.denied'],
  );
  const story = tellCallStory(records);
  assert.match(story, /vendor must be on the list approved_vendors/);
  assert.match(story, /denied; the call never reached the upstream/);
});

test('notifications/cancelled for a held call withdraws its approval request', async () => {
  const headers = await gateway.authHeaders({ agent: 'finance-bot', user: 'alan@example.com' });
  const url = gateway.endpoint('payments');
  const sessionId = await openSession(url, headers);
  const known = new Set((await store.approvals.list()).map((request) => request.id));
  const call = postMcp(
    url,
    {
      jsonrpc: '2.0',
      id: 'held-1',
      method: 'tools/call',
      params: { name: 'issue_payment', arguments: { ...PAYMENT, amount: 6 } },
    },
    { sessionId, headers },
  );
  let pending: ApprovalRequest | undefined;
  for (
    let deadline = Date.now() + BACKGROUND_MS;
    !pending && Date.now() < deadline;
    await sleep(25)
  ) {
    pending = (await store.approvals.list({ status: 'pending' })).find((r) => !known.has(r.id));
  }
  assert.ok(pending, 'the call is held');
  // Another session of the same agent cannot cancel it: cancellation is per session.
  const otherSession = await openSession(url, headers);
  await postMcp(
    url,
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'held-1' } },
    { sessionId: otherSession, headers },
  );
  await sleep(200);
  assert.equal((await store.approvals.get(pending.id))?.status, 'pending');
  const cancelled = await postMcp(
    url,
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'held-1' } },
    { sessionId, headers },
  );
  assert.equal(cancelled.status, 202);
  await call;
  assert.equal((await store.approvals.get(pending.id))?.status, 'withdrawn');
});

test('an approval covers only the arguments it was given: other arguments need a new approval', async () => {
  const first = await startPayment({ ...PAYMENT, amount: 100 });
  assert.equal((await decide(first.approval.id, 'approve', 'carol@example.com')).status, 200);
  await first.reply;
  const second = await startPayment({ ...PAYMENT, amount: 900 });
  assert.notEqual(second.approval.id, first.approval.id, 'a new request, not the old approval');
  assert.equal(JSON.parse(second.approval.arguments).amount, 900);
  assert.notEqual(second.approval.argumentsHash, first.approval.argumentsHash);
  assert.equal(
    (await decide(second.approval.id, 'deny', 'carol@example.com', 'too much')).status,
    200,
  );
  const answer = (await second.reply).messages.find((m) => m.id === 9);
  assert.equal(answer?.error?.data?.code, 'WARDEN_APPROVAL_REFUSED');
});
