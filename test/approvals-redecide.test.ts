// A held call is decided again when it is released. Each test holds a payment for approval, then
// changes something an attacker (or time) can change while a person is deciding — a policy state,
// a revocation, the policy itself, the budget — and approves: the call must be refused with
// WARDEN_APPROVAL_STALE, recorded with the reason, and never reach the upstream.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { tellCallStory } from '../src/audit/call-story.js';
import { parseConfig } from '../src/config/load.js';
import { createBusinessServer } from '../src/demo/business-server.js';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest, RevocationKind, Store } from '../src/store/types.js';
import { startTestGateway, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { messagesOf, openSession, postMcp, type WireMessage } from './support/raw-http.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-redecide-'));
const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
let upstream: McpHttpUpstream;
let gateway: TestGateway;
/** A second connection to the gateway's database, as the CLI or another replica would have. */
let store: Store;

const PAYMENT = { vendor: 'acme', amount: 900, currency: 'EUR', memo: 'INV-9' };
const AGENTS = ['finance-bot', 'finance-bot-2', 'finance-bot-3'] as const;

/** The whole configuration, with the payment cap as a parameter (a reload changes it). */
function rawConfig(maxAmount: number): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    store: storeUrl,
    auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
    log: { level: 'silent' },
    audit: { hash_key_file: join(dir, 'hash.key'), stream: 'redecide-gw' },
    upstreams: { payments: { url: upstream.url } },
    agents: {
      ...Object.fromEntries(AGENTS.map((agent) => [agent, { roles: ['finance_executor'] }])),
      'approver-console': { roles: ['warden_approver'] },
    },
    lists: { approved_vendors: ['acme', 'globex'] },
    scopes: {
      vendor_whitelist: { arg: 'vendor', in_list: 'approved_vendors' },
      capped: [
        { arg: 'amount', max: maxAmount },
        { arg: 'currency', in: ['EUR'] },
      ],
      not_frozen: { state: { payments_freeze: 'off' } },
    },
    policy_states: { payments_freeze: { default: 'off' } },
    roles: {
      finance_executor: {
        grants: [
          {
            tool: 'payments.issue_payment',
            scope: ['vendor_whitelist', 'capped', 'not_frozen'],
            requires_approval: true,
            approvers: ['finance_approver'],
            approval_timeout: '20s',
          },
        ],
      },
    },
    // Per user, so each test spends its own budget.
    quotas: [
      {
        name: 'daily_budget',
        per: 'user',
        tool: 'payments.issue_payment',
        sum: 'amount',
        limit: 1000,
        window: '1d',
      },
    ],
    approvals: {
      approvers: { 'carol@example.com': { roles: ['finance_approver'] } },
      // These tests hold the call open; approvals-delivery.test.ts covers `retry`.
      delivery: 'hold',
      poll_interval: '50ms',
      progress_interval: '100ms',
    },
  };
}

before(async () => {
  upstream = await startMcpHttpUpstream(() => createBusinessServer({ domains: ['payments'] }));
  gateway = await startTestGateway(rawConfig(1000));
  store = await openStore(storeUrl);
});

after(async () => {
  await gateway.close();
  await store.close();
  await upstream.close();
});

interface Caller {
  readonly agent: string;
  readonly user: string;
}

interface Reply {
  readonly status: number;
  readonly messages: WireMessage[];
  readonly requestId: string;
}

async function pay(caller: Caller, args: Record<string, unknown>, token?: string): Promise<Reply> {
  const headers = { authorization: `Bearer ${token ?? (await gateway.token(caller))}` };
  const url = gateway.endpoint('payments');
  const sessionId = await openSession(url, headers);
  const response = await postMcp(
    url,
    {
      jsonrpc: '2.0',
      id: 9,
      method: 'tools/call',
      params: { name: 'issue_payment', arguments: args },
    },
    { sessionId, headers },
  );
  return {
    status: response.status,
    messages: messagesOf(response),
    requestId: String(response.headers['x-request-id']),
  };
}

/** Starts a payment and waits until its approval request is pending. */
async function startHeldPayment(
  caller: Caller,
  args: Record<string, unknown> = PAYMENT,
  token?: string,
): Promise<{ reply: Promise<Reply>; approval: ApprovalRequest }> {
  const known = new Set((await store.approvals.list()).map((request) => request.id));
  const reply = pay(caller, args, token);
  let answered: Reply | undefined;
  void reply.then((r) => (answered = r));
  const deadline = Date.now() + 20_000;
  for (;;) {
    assert.equal(answered, undefined, `answered without being held: ${JSON.stringify(answered)}`);
    const fresh = (await store.approvals.list({ status: 'pending' })).find(
      (request) => !known.has(request.id),
    );
    if (fresh) return { reply, approval: fresh };
    assert.ok(Date.now() < deadline, 'no approval request appeared');
    await sleep(25);
  }
}

async function decide(id: string, verdict: 'approve' | 'deny' = 'approve') {
  const token = await gateway.token({ agent: 'approver-console', user: 'carol@example.com' });
  const response = await fetch(`${gateway.url}/admin/approvals/${id}/${verdict}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'looks fine' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function answerOf(reply: Reply): WireMessage | undefined {
  return reply.messages.find((message) => message.id === 9);
}

async function eventsOf(requestId: string): Promise<string[]> {
  return (await store.audit.query({ requestId })).map((record) => record.event);
}

/** Approves a held call and asserts it is refused as stale, recorded, and never forwarded. */
async function approveAndExpectStale(
  held: { reply: Promise<Reply>; approval: ApprovalRequest },
  reasonPattern: RegExp,
): Promise<Reply> {
  const forwardedBefore = upstream.callsTo('issue_payment').length;
  const decided = await decide(held.approval.id);
  assert.equal(decided.status, 200, JSON.stringify(decided.body));
  const reply = await held.reply;
  const answer = answerOf(reply);
  assert.equal(answer?.error?.data?.code, 'WARDEN_APPROVAL_STALE', JSON.stringify(answer));
  assert.match(
    String((answer?.error?.data as Record<string, unknown> | undefined)?.['reason']),
    reasonPattern,
  );
  assert.equal(
    upstream.callsTo('issue_payment').length,
    forwardedBefore,
    'nothing reached the upstream',
  );
  assert.equal((await store.approvals.get(held.approval.id))?.status, 'invalidated');
  const events = await eventsOf(reply.requestId);
  assert.deepEqual(events, [
    'approval.requested',
    'approval.granted',
    'approval.invalidated',
    'call.denied',
  ]);
  const records = await store.audit.query({ requestId: reply.requestId });
  const denied = records.find((record) => record.event === 'call.denied');
  assert.match(denied?.decision?.reasons.join(' ') ?? '', reasonPattern, 'the log says why');
  assert.match(tellCallStory(records), /invalidated/);
  return reply;
}

test('a payment held before payments were frozen is refused when approved after the freeze', async () => {
  const caller = { agent: 'finance-bot', user: 'u-freeze@example.com' };
  const held = await startHeldPayment(caller);
  // As `warden policy state set payments_freeze on` does: straight into the store.
  await store.policyStates.set({
    name: 'payments_freeze',
    on: true,
    changedAt: Date.now(),
    changedBy: 'ops',
    reason: 'incident',
  });
  try {
    // The held call is refused though a person approved it: release re-reads the states from
    // the store rather than trusting the last poll...
    await approveAndExpectStale(held, /payments_freeze/);
    // ...and a fresh call is refused too.
    const fresh = answerOf(await pay(caller, { ...PAYMENT, amount: 5 }));
    assert.equal(fresh?.error?.data?.code, 'WARDEN_POLICY_DENIED');
  } finally {
    await store.policyStates.set({
      name: 'payments_freeze',
      on: false,
      changedAt: Date.now(),
      changedBy: 'ops',
      reason: 'incident over',
    });
    // A reload re-reads the states at once, rather than waiting for the next poll.
    assert.equal((await gateway.reloadPolicy(parseConfig(rawConfig(1000), 'reload'))).ok, true);
  }
});

for (const kind of ['token', 'agent', 'user'] as const satisfies readonly RevocationKind[]) {
  test(`a held payment whose ${kind} is revoked while it waits is never released`, async () => {
    // Each revocation gets its own agent or user, so it cannot spill into the other tests.
    const caller =
      kind === 'agent'
        ? { agent: 'finance-bot-3', user: 'u-agent@example.com' }
        : { agent: 'finance-bot-2', user: `u-${kind}@example.com` };
    const token = await gateway.token(caller);
    const held = await startHeldPayment(caller, PAYMENT, token);
    const claims = decodeJwt(token);
    const subject =
      kind === 'token' ? String(claims.jti) : kind === 'agent' ? caller.agent : caller.user;
    const at = Date.now();
    await gateway.revoke({
      kind,
      subject,
      revokedAt: at,
      expiresAt: at + 3_600_000,
      reason: 'stolen',
      revokedBy: 'ops',
    });
    const fresh = await pay(caller, { ...PAYMENT, amount: 5 }, token).catch(() => undefined);
    assert.equal(fresh?.status ?? 401, 401, 'the revoked credential is refused on a new call');
    await approveAndExpectStale(held, new RegExp(`the ${kind} was revoked`));
  });
}

test('a token revoked through the store (as the CLI does) just before the approval stops the held call', async () => {
  const caller = { agent: 'finance-bot-2', user: 'u-cli-revoke@example.com' };
  const token = await gateway.token(caller);
  const held = await startHeldPayment(caller, PAYMENT, token);
  const at = Date.now();
  // Straight into the database from another connection, then approved at once: no poll between.
  await store.revocations.add({
    kind: 'token',
    subject: String(decodeJwt(token).jti),
    revokedAt: at,
    expiresAt: at + 3_600_000,
    reason: 'leaked',
    revokedBy: 'ops',
  });
  await approveAndExpectStale(held, /the token was revoked/);
});

test('a reload that lowers the cap invalidates the pending approval at once, and the approver is told', async () => {
  const caller = { agent: 'finance-bot', user: 'u-reload@example.com' };
  const held = await startHeldPayment(caller);
  const forwardedBefore = upstream.callsTo('issue_payment').length;
  const reload = await gateway.reloadPolicy(parseConfig(rawConfig(500), 'reload'));
  assert.equal(reload.ok, true);
  try {
    const reply = await held.reply; // refused without waiting for anyone
    const answer = answerOf(reply);
    assert.equal(answer?.error?.data?.code, 'WARDEN_APPROVAL_STALE', JSON.stringify(answer));
    assert.equal((await store.approvals.get(held.approval.id))?.status, 'invalidated');
    // The approver who comes to it now learns it can no longer be decided.
    const late = await decide(held.approval.id);
    assert.equal(late.status, 409, JSON.stringify(late.body));
    assert.match(JSON.stringify(late.body), /invalidated/);
    assert.equal(upstream.callsTo('issue_payment').length, forwardedBefore);
    const records = await store.audit.query({ requestId: reply.requestId });
    const invalidated = records.find((record) => record.event === 'approval.invalidated');
    assert.match(String(invalidated?.details?.['reason']), /policy was reloaded/);
    // Under the new cap a fresh 900 EUR call is refused outright.
    const fresh = answerOf(await pay(caller, PAYMENT));
    assert.equal(fresh?.error?.data?.code, 'WARDEN_POLICY_DENIED');
  } finally {
    assert.equal((await gateway.reloadPolicy(parseConfig(rawConfig(1000), 'reload'))).ok, true);
  }
});

test('a payment the budget would refuse is refused before anyone is asked to approve it', async () => {
  const caller = { agent: 'finance-bot', user: 'u-budget@example.com' };
  const first = await startHeldPayment(caller, { ...PAYMENT, amount: 800 });
  assert.equal((await decide(first.approval.id)).status, 200);
  assert.ok(answerOf(await first.reply)?.result, 'the first payment went through');
  const pendingBefore = (await store.approvals.list({ status: 'pending' })).length;
  const totalBefore = (await store.approvals.list()).length;
  const over = await pay(caller, { ...PAYMENT, amount: 300 });
  assert.equal(answerOf(over)?.error?.data?.code, 'WARDEN_QUOTA_EXCEEDED');
  assert.equal((await store.approvals.list()).length, totalBefore, 'no approver was asked');
  assert.equal((await store.approvals.list({ status: 'pending' })).length, pendingBefore);
  assert.deepEqual(await eventsOf(over.requestId), ['call.denied']);
  // What still fits is asked for as usual.
  const fits = await startHeldPayment(caller, { ...PAYMENT, amount: 200 });
  assert.equal((await decide(fits.approval.id)).status, 200);
  assert.ok(answerOf(await fits.reply)?.result, 'a payment within the budget still goes');
});

test('two held payments that each fit the budget but not together: the second is refused at release', async () => {
  const caller = { agent: 'finance-bot', user: 'u-twice@example.com' };
  const a = await startHeldPayment(caller, { ...PAYMENT, amount: 600, memo: 'A' });
  const b = await startHeldPayment(caller, { ...PAYMENT, amount: 600, memo: 'B' });
  assert.equal((await decide(a.approval.id)).status, 200);
  assert.ok(answerOf(await a.reply)?.result, 'the first one is paid and charged');
  await approveAndExpectStale(b, /quota daily_budget exceeded/);
});
