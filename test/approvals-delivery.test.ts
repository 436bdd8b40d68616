/**
 * Approvals that outlive a client's timeout (`approvals.delivery`), with unmodified SDK 1.x and
 * 2.x clients at default options. `retry`: the call is answered at once with a pending result
 * (so the SDK's 60 s timeout never applies); the same call made again once a person approved
 * goes exactly once, and a refusal answers it. `hold`: a client that gives up (aborts, times
 * out) withdraws its request, and approving it afterwards forwards nothing — an agent told its
 * payment failed must never have paid.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { deliveryOf } from '../src/approvals/approval-delivery.js';
import { createApprovalService, type HeldCall } from '../src/approvals/approval-service.js';
import { parseConfig } from '../src/config/load.js';
import type { AuditEntry } from '../src/domain/audit-record.js';
import { ConfigError } from '../src/domain/errors.js';
import type { WardenError } from '../src/domain/errors.js';
import type { Identity } from '../src/domain/identity.js';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest, Store } from '../src/store/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { openTracked, POSTGRES_URL, testSchemas, uniqueName } from './support/store-databases.js';

const PAYER = { agent: 'pay-bot', user: 'alan@example.com' };
/** Bound on waiting for what the gateway does in the background. */
const BACKGROUND_MS = 10_000;

function policy(delivery: 'hold' | 'retry' | undefined) {
  return {
    log: { level: 'silent' },
    agents: {
      'pay-bot': { roles: ['payer'] },
      'approver-console': { roles: ['warden_approver'] },
    },
    roles: {
      payer: {
        grants: [
          {
            tool: 'bank.pay',
            requires_approval: true,
            approvers: ['finance_approver'],
            approval_timeout: '10m',
          },
          // Its own delivery, whatever approvals.delivery says.
          {
            tool: 'bank.refund',
            requires_approval: true,
            approvers: ['finance_approver'],
            approval_delivery: 'retry',
          },
        ],
      },
    },
    approvals: {
      approvers: { 'carol@example.com': { roles: ['finance_approver'] } },
      poll_interval: '50ms',
      ...(delivery !== undefined && { delivery }),
    },
  };
}

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  server.registerTool(
    'pay',
    { description: 'Pays a vendor.', inputSchema: { vendor: z.string(), amount: z.number() } },
    async ({ vendor, amount }) => ({
      content: [{ type: 'text', text: `paid ${amount} to ${vendor}` }],
    }),
  );
  server.registerTool(
    'refund',
    { description: 'Refunds a vendor.', inputSchema: { vendor: z.string(), amount: z.number() } },
    async ({ vendor, amount }) => ({
      content: [{ type: 'text', text: `refunded ${amount} to ${vendor}` }],
    }),
  );
  return server;
}

interface ToolResult {
  readonly isError?: boolean;
  readonly content?: readonly { type: string; text?: string }[];
  readonly _meta?: Record<string, unknown>;
}

type CallOptions = { signal?: AbortSignal; timeout?: number };

interface Caller {
  call(tool: string, args: Record<string, unknown>): Promise<ToolResult>;
  pay(args: Record<string, unknown>, options?: CallOptions): Promise<ToolResult>;
  close(): Promise<void>;
}

async function connectV1(gateway: TestGateway): Promise<Caller> {
  const client = new Client({ name: 'stock-v1', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gateway.endpoint('bank')), {
      requestInit: { headers: await gateway.authHeaders(PAYER) },
    }),
  );
  return {
    call: async (tool, args) =>
      (await client.callTool({ name: tool, arguments: args })) as ToolResult,
    pay: async (args, options) =>
      (await client.callTool({ name: 'pay', arguments: args }, undefined, options)) as ToolResult,
    close: () => client.close(),
  };
}

async function connectV2(gateway: TestGateway): Promise<Caller> {
  const client = new ClientV2({ name: 'stock-v2', version: '1.0.0' });
  await client.connect(
    new TransportV2(new URL(gateway.endpoint('bank')), {
      requestInit: { headers: await gateway.authHeaders(PAYER) },
    }),
  );
  return {
    call: async (tool, args) =>
      (await client.callTool({ name: tool, arguments: args })) as ToolResult,
    pay: async (args, options) =>
      (await client.callTool({ name: 'pay', arguments: args }, options)) as ToolResult,
    close: () => client.close(),
  };
}

const clients = [
  ['SDK 1.x', connectV1],
  ['SDK 2.x', connectV2],
] as const;

/** The pending approval a result announces, checked against what the text tells a model. */
function pendingOf(result: ToolResult): { id: string; expiresAt: string } {
  assert.equal(result.isError, true, `not a pending answer: ${JSON.stringify(result)}`);
  const meta = result._meta?.['warden/approval'] as Record<string, unknown> | undefined;
  assert.ok(meta, `no warden/approval in _meta: ${JSON.stringify(result)}`);
  assert.equal(meta['status'], 'pending');
  const id = String(meta['id']);
  const expiresAt = String(meta['expiresAt']);
  const text = result.content?.[0]?.text ?? '';
  assert.equal(
    text,
    `Held for approval ${id}; a person must approve it. Call again with the same arguments once approved (until ${expiresAt}).`,
  );
  return { id, expiresAt };
}

/** The Warden error code of an MCP error a call raised, whichever SDK raised it. */
async function refusalCodeOf(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (error) {
    return ((error as { data?: Record<string, unknown> }).data ?? {})['code'];
  }
  assert.fail('the call was not refused');
}

async function decide(
  gateway: TestGateway,
  id: string,
  verdict: 'approve' | 'deny',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = await gateway.token({ agent: 'approver-console', user: 'carol@example.com' });
  const response = await fetch(`${gateway.url}/admin/approvals/${id}/${verdict}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'checked the invoice' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitForApproval(
  store: Store,
  found: (request: ApprovalRequest) => boolean,
): Promise<ApprovalRequest> {
  const deadline = Date.now() + BACKGROUND_MS;
  for (;;) {
    const request = (await store.approvals.list()).find(found);
    if (request) return request;
    assert.ok(Date.now() < deadline, 'the approval request never reached the expected state');
    await sleep(25);
  }
}

describe('approvals.delivery: retry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-delivery-'));
  const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  let upstream: McpHttpUpstream;
  let gateway: TestGateway;
  let store: Store;
  let amount = 100;
  /** Arguments no other test uses, so each test has its own approvals. */
  const freshPayment = () => ({ vendor: 'acme', amount: (amount += 1) });

  before(async () => {
    upstream = await startMcpHttpUpstream(bankServer);
    gateway = await startTestGateway({
      ...policy(undefined), // the default, auto: retry for every client
      store: storeUrl,
      audit: { hash_key_file: join(dir, 'hash.key'), stream: 'delivery-gw' },
      upstreams: { bank: { url: upstream.url } },
    });
    store = await openStore(storeUrl);
  });
  after(async () => {
    await gateway?.close();
    await store?.close();
    await upstream?.close();
  });

  for (const [sdk, connect] of clients) {
    test(`${sdk}: the pending answer comes at once; once approved the same call goes exactly once`, async () => {
      const caller = await connect(gateway);
      try {
        const payment = freshPayment();
        const before = upstream.callsTo('pay').length;
        const first = pendingOf(await caller.pay(payment));
        // Answered while nobody has decided: no client timeout can apply to the wait.
        const asked = await store.approvals.get(first.id);
        assert.equal(asked?.status, 'pending');
        assert.deepEqual(JSON.parse(asked?.arguments ?? 'null'), payment);
        assert.equal(new Date(asked?.expiresAt ?? 0).toISOString(), first.expiresAt);

        const again = pendingOf(await caller.pay(payment));
        assert.equal(again.id, first.id, 'a retry while pending asks nobody a second time');
        const forThisCall = (await store.approvals.list()).filter(
          (request) => request.argumentsHash === asked?.argumentsHash,
        );
        assert.equal(forThisCall.length, 1);
        assert.equal(upstream.callsTo('pay').length, before, 'nothing forwarded while pending');

        const decided = await decide(gateway, first.id, 'approve');
        assert.equal(decided.status, 200, JSON.stringify(decided.body));
        const released = await caller.pay(payment);
        assert.notEqual(released.isError, true, JSON.stringify(released));
        assert.equal(released.content?.[0]?.text, `paid ${payment.amount} to acme`);
        const calls = upstream.callsTo('pay').slice(before);
        assert.equal(calls.length, 1, 'forwarded exactly once');
        assert.deepEqual(calls[0]?.params?.['arguments'], payment);
        assert.ok((await store.approvals.get(first.id))?.consumedAt !== undefined);

        // Used: the same call again needs a new approval, and is not forwarded.
        const third = pendingOf(await caller.pay(payment));
        assert.notEqual(third.id, first.id);
        const changed = pendingOf(await caller.pay({ ...payment, amount: payment.amount + 0.5 }));
        assert.notEqual(changed.id, first.id);
        assert.notEqual(changed.id, third.id);
        assert.equal(upstream.callsTo('pay').length, before + 1, 'still forwarded exactly once');
      } finally {
        await caller.close();
      }
    });

    test(`${sdk}: a retry after a refusal is answered WARDEN_APPROVAL_REFUSED, never forwarded`, async () => {
      const caller = await connect(gateway);
      try {
        const payment = freshPayment();
        const before = upstream.callsTo('pay').length;
        const { id } = pendingOf(await caller.pay(payment));
        assert.equal((await decide(gateway, id, 'deny')).status, 200);
        assert.equal(await refusalCodeOf(caller.pay(payment)), 'WARDEN_APPROVAL_REFUSED');
        assert.equal(await refusalCodeOf(caller.pay(payment)), 'WARDEN_APPROVAL_REFUSED');
        assert.equal(upstream.callsTo('pay').length, before);
      } finally {
        await caller.close();
      }
    });
  }

  test('retries racing after the approval: exactly one is forwarded', async () => {
    const callers = await Promise.all([connectV1(gateway), connectV2(gateway), connectV1(gateway)]);
    try {
      const payment = freshPayment();
      const before = upstream.callsTo('pay').length;
      const [first] = callers;
      const { id } = pendingOf(await first!.pay(payment));
      assert.equal((await decide(gateway, id, 'approve')).status, 200);
      const outcomes = await Promise.all(
        [...callers, ...callers].map((caller) =>
          caller.pay(payment).then(
            (result) => (result.isError === true ? 'pending' : 'paid'),
            (error: unknown) => String((error as { data?: { code?: string } }).data?.code),
          ),
        ),
      );
      assert.equal(outcomes.filter((outcome) => outcome === 'paid').length, 1, outcomes.join());
      assert.equal(upstream.callsTo('pay').length, before + 1, 'the upstream saw one call');
      for (const outcome of outcomes.filter((o) => o !== 'paid')) {
        assert.ok(['pending', 'WARDEN_APPROVAL_REFUSED'].includes(outcome), outcome);
      }
    } finally {
      await Promise.all(callers.map((caller) => caller.close()));
    }
  });

  test("the released retry's decision record names the approval and the request that asked", async () => {
    const caller = await connectV2(gateway);
    try {
      const payment = freshPayment();
      const { id } = pendingOf(await caller.pay(payment));
      const asked = await store.approvals.get(id);
      await decide(gateway, id, 'approve');
      await caller.pay(payment);
      const deadline = Date.now() + BACKGROUND_MS;
      for (;;) {
        const allowed = (await store.audit.query({ event: 'call.allowed' })).find((record) =>
          record.decision?.reasons.some((reason) => reason.includes(id)),
        );
        if (allowed) {
          assert.match(
            allowed.decision?.reasons.join() ?? '',
            new RegExp(
              `approved by carol@example\\.com \\(approval ${id}, asked for in request ${asked?.requestId}\\)`,
            ),
          );
          assert.notEqual(allowed.requestId, asked?.requestId);
          assert.equal(allowed.argumentsHash, asked?.argumentsHash);
          break;
        }
        assert.ok(Date.now() < deadline, 'no call.allowed record names the approval');
        await sleep(25);
      }
      const requested = await store.audit.query({ requestId: asked?.requestId ?? '' });
      assert.ok(requested.some((record) => record.event === 'approval.requested'));
    } finally {
      await caller.close();
    }
  });
});

describe('approvals.delivery: hold', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-delivery-hold-'));
  const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  let upstream: McpHttpUpstream;
  let gateway: TestGateway;
  let store: Store;
  let amount = 500;

  before(async () => {
    upstream = await startMcpHttpUpstream(bankServer);
    gateway = await startTestGateway({
      ...policy('hold'),
      store: storeUrl,
      audit: { hash_key_file: join(dir, 'hash.key'), stream: 'delivery-hold-gw' },
      upstreams: { bank: { url: upstream.url } },
    });
    store = await openStore(storeUrl);
  });
  after(async () => {
    await gateway?.close();
    await store?.close();
    await upstream?.close();
  });

  /**
   * Starts a held payment the client gives up on (`giveUp`), and checks what an approver then
   * sees and does: the request reads withdrawn, approving it is refused, and nothing is sent.
   */
  async function assertGivingUpWithdraws(
    connect: (gateway: TestGateway) => Promise<Caller>,
    giveUp: (
      caller: Caller,
      payment: Record<string, unknown>,
    ) => { call: Promise<unknown>; abort: () => void },
  ): Promise<void> {
    const caller = await connect(gateway);
    try {
      const payment = { vendor: 'acme', amount: (amount += 1) };
      const before = upstream.callsTo('pay').length;
      const known = new Set((await store.approvals.list()).map((request) => request.id));
      const { call, abort } = giveUp(caller, payment);
      const failed = call.then(
        () => assert.fail('the client was answered, though it gave up'),
        () => undefined,
      );
      const held = await waitForApproval(store, (r) => !known.has(r.id));
      abort();
      await failed;
      const withdrawn = await waitForApproval(
        store,
        (r) => r.id === held.id && r.status === 'withdrawn',
      );
      assert.equal(withdrawn.consumedAt, undefined);
      const late = await decide(gateway, held.id, 'approve');
      assert.equal(late.status, 409, JSON.stringify(late.body));
      assert.match(JSON.stringify(late.body), /withdrawn/);
      const records = await store.audit.query({ requestId: held.requestId });
      assert.ok(
        records.some(
          (record) => record.event === 'approval.refused' && record.details?.['withdrawn'] === true,
        ),
        'the log tells the withdrawal',
      );
      assert.ok(!records.some((record) => record.event === 'call.allowed'));
      assert.equal(upstream.callsTo('pay').length, before, 'nothing was ever forwarded');
    } finally {
      await caller.close();
    }
  }

  for (const [sdk, connect] of clients) {
    test(`${sdk}: a call the client aborts (notifications/cancelled) is withdrawn; approving it later forwards nothing`, async () => {
      await assertGivingUpWithdraws(connect, (caller, payment) => {
        const controller = new AbortController();
        return {
          call: caller.pay(payment, { signal: controller.signal }),
          abort: () => controller.abort(new Error('the agent gave up')),
        };
      });
    });
  }

  test('a grant with approval_delivery: retry is answered pending at once, though the gateway holds', async () => {
    const caller = await connectV1(gateway);
    try {
      const { id } = pendingOf(await caller.call('refund', { vendor: 'acme', amount: 3 }));
      assert.equal((await store.approvals.get(id))?.status, 'pending');
    } finally {
      await caller.close();
    }
  });

  for (const [sdk, connect] of clients) {
    test(`${sdk}: a call the client times out on is withdrawn; approving it later forwards nothing`, async () => {
      // The SDK's own timeout, shortened from 60 s: when it fires, the SDK sends
      // notifications/cancelled, as it would after a minute.
      await assertGivingUpWithdraws(connect, (caller, payment) => ({
        call: caller.pay(payment, { timeout: 1000 }),
        abort: () => undefined,
      }));
    });
  }
});

test("a grant's approval_delivery overrides approvals.delivery; grants that disagree leave it", () => {
  const grants = [
    { id: 'refunds', approvalDelivery: 'retry' as const },
    { id: 'payments', approvalDelivery: 'hold' as const },
    { id: 'plain', approvalDelivery: undefined },
  ];
  assert.equal(deliveryOf(['refunds'], grants, 'hold'), 'retry');
  assert.equal(deliveryOf(['payments'], grants, 'auto'), 'hold');
  assert.equal(deliveryOf(['plain'], grants, 'hold'), 'hold');
  assert.equal(deliveryOf(['refunds', 'payments'], grants, 'hold'), 'hold');
  // auto is task: a task for a client that asks for one, retry for any other (approve-call.ts).
  assert.equal(deliveryOf(['plain'], grants, 'auto'), 'task');
  assert.equal(deliveryOf(['plain'], grants, 'task'), 'task');
  assert.equal(deliveryOf(['refunds'], grants, 'task'), 'retry');
});

/**
 * The retry rules at the service, on both stores: the newest request for the same call decides,
 * and a grant is consumed in one store transaction, so retries that all passed the recheck still
 * release one call.
 */
const backends = [
  ['SQLite', () => openTracked('sqlite::memory:')],
  [
    'PostgreSQL',
    () => {
      const schema = uniqueName('warden_delivery');
      testSchemas.push(schema);
      return openTracked(POSTGRES_URL, { schema });
    },
  ],
] as const;

const T0 = Date.UTC(2026, 10, 27, 10, 0, 0);
const IDENTITY: Identity = {
  user: 'alan@example.com',
  delegation: [],
  agent: 'pay-bot',
  roles: ['payer'],
  environment: 'test',
  tenant: undefined,
  declaredModel: undefined,
  credential: {
    kind: 'jwt',
    issuer: 'https://warden.example.com',
    tokenId: 'jti-1',
    issuedAt: T0,
    expiresAt: T0 + 900_000,
    scopes: [],
    boundCertificate: undefined,
  },
};

function retryService(store: Store) {
  const clock = { now: T0 };
  const records: AuditEntry[] = [];
  const service = createApprovalService({
    store,
    config: { pollIntervalMs: 20 },
    now: () => clock.now,
    record: async (entry) => {
      records.push(entry);
    },
    notify: () => undefined,
    environment: 'test',
  });
  return { service, clock, records };
}

function attempt(overrides: Partial<HeldCall> = {}): HeldCall {
  return {
    requestId: `req-${Math.random().toString(36).slice(2)}`,
    identity: IDENTITY,
    upstream: 'bank',
    tool: 'pay',
    arguments: { vendor: 'acme', amount: 9 },
    argumentsHash: 'hash-9',
    decision: {
      effect: 'approval_required',
      reasons: ['payments need a finance approver'],
      policies: ['grant-pay'],
      approval: {
        approverRoles: ['finance_approver'],
        approvalsRequired: 1,
        timeoutMs: 60_000,
        grants: ['grant-pay'],
        scopes: [],
      },
      policyVersion: 'policy-v1',
    },
    toolDefinitionHash: 'tooldef-1',
    signal: new AbortController().signal,
    recheck: () => Promise.resolve({ policyVersion: 'policy-v1', toolDefinitionHash: 'tooldef-1' }),
    ...overrides,
  };
}

const CAROL = { user: 'carol@example.com', roles: ['finance_approver'] };

for (const [name, open] of backends) {
  describe(`retry delivery on ${name}`, () => {
    test('retries that all passed the recheck at once: one is released, the others refused', async () => {
      const { service } = retryService(await open());
      const asked = await service.answerRetry(attempt());
      assert.equal(asked.status, 'pending');
      await service.decide(asked.approval.id, CAROL, 'approve', 'ok');
      // Every retry is decided again before any of them consumes: they race at the store.
      let rechecked = 0;
      let allRechecked: () => void = () => undefined;
      const barrier = new Promise<void>((resolve) => (allRechecked = resolve));
      const recheck = async () => {
        if (++rechecked === 4) allRechecked();
        await barrier;
        return { policyVersion: 'policy-v1', toolDefinitionHash: 'tooldef-1' };
      };
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, () =>
          service.answerRetry(attempt({ recheck })).then(
            (answer) => answer.status,
            (error: unknown) => (error as WardenError).code,
          ),
        ),
      );
      assert.deepEqual(outcomes.sort(), [
        'WARDEN_APPROVAL_REFUSED',
        'WARDEN_APPROVAL_REFUSED',
        'WARDEN_APPROVAL_REFUSED',
        'released',
      ]);
      const used = await service.get(asked.approval.id);
      assert.ok(used?.consumedAt !== undefined);
    });

    test('another user, or other arguments, is another call: it asks anew', async () => {
      const { service } = retryService(await open());
      const first = await service.answerRetry(attempt());
      const otherUser = await service.answerRetry(
        attempt({ identity: { ...IDENTITY, user: 'eve@example.com' } }),
      );
      const actingAlone = await service.answerRetry(
        attempt({ identity: { ...IDENTITY, user: undefined } }),
      );
      const otherArgs = await service.answerRetry(attempt({ argumentsHash: 'hash-10' }));
      const again = await service.answerRetry(attempt());
      const ids = [first, otherUser, actingAlone, otherArgs].map((answer) =>
        answer.status === 'pending' ? answer.approval.id : 'released',
      );
      assert.equal(new Set(ids).size, 4);
      assert.equal(again.status === 'pending' && again.approval.id, ids[0]);
      const alone = await service.answerRetry(
        attempt({ identity: { ...IDENTITY, user: undefined } }),
      );
      assert.equal(alone.status === 'pending' && alone.approval.id, ids[2]);
    });

    test('a retry after the timeout is told WARDEN_APPROVAL_EXPIRED once, recorded; the next asks anew', async () => {
      const { service, clock, records } = retryService(await open());
      const asked = await service.answerRetry(attempt());
      assert.equal(asked.status, 'pending');
      clock.now += 60_000;
      await assert.rejects(service.answerRetry(attempt()), { code: 'WARDEN_APPROVAL_EXPIRED' });
      assert.equal((await service.get(asked.approval.id))?.status, 'expired');
      assert.ok(records.some((record) => record.event === 'approval.expired'));
      const anew = await service.answerRetry(attempt());
      assert.ok(anew.status === 'pending' && anew.approval.id !== asked.approval.id);
    });

    test('a grant not used before the timeout: WARDEN_APPROVAL_EXPIRED once, then a new request', async () => {
      const { service, clock, records } = retryService(await open());
      const asked = await service.answerRetry(attempt());
      assert.equal(asked.status, 'pending');
      await service.decide(asked.approval.id, CAROL, 'approve', 'ok');
      clock.now += 60_000;
      await assert.rejects(service.answerRetry(attempt()), { code: 'WARDEN_APPROVAL_EXPIRED' });
      const expired = await service.get(asked.approval.id);
      assert.equal(expired?.status, 'expired');
      assert.equal(expired?.consumedAt, undefined, 'never used');
      assert.ok(records.some((record) => record.event === 'approval.expired'));
      const anew = await service.answerRetry(attempt());
      assert.ok(anew.status === 'pending' && anew.approval.id !== asked.approval.id);
    });

    test('a retry after the rules changed is told WARDEN_APPROVAL_STALE, and nothing is used', async () => {
      const { service } = retryService(await open());
      const asked = await service.answerRetry(attempt());
      await service.invalidatePending(() => true, 'the policy changed');
      await assert.rejects(service.answerRetry(attempt()), { code: 'WARDEN_APPROVAL_STALE' });
      const granted = await service.answerRetry(attempt({ argumentsHash: 'hash-11' }));
      assert.equal(granted.status, 'pending');
      await service.decide(granted.approval.id, CAROL, 'approve', 'ok');
      await assert.rejects(
        service.answerRetry(
          attempt({
            argumentsHash: 'hash-11',
            recheck: () =>
              Promise.resolve({ policyVersion: 'policy-v2', toolDefinitionHash: 'tooldef-1' }),
          }),
        ),
        { code: 'WARDEN_APPROVAL_STALE' },
      );
      assert.equal((await service.get(granted.approval.id))?.status, 'invalidated');
      assert.equal((await service.get(asked.approval.id))?.consumedAt, undefined);
    });
  });
}

test('approvals.delivery and a grant’s approval_delivery are checked', () => {
  const base = {
    auth: { resource: 'https://warden.example.com/mcp', issuers: [{ builtin: {} }] },
    agents: { bot: { roles: ['payer'] } },
    roles: { payer: { grants: [{ tool: 'bank.pay' }] } },
    upstreams: { bank: { url: 'http://127.0.0.1:9/mcp' } },
  };
  const problems = (raw: Record<string, unknown>): string => {
    try {
      parseConfig({ ...base, ...raw }, 'test');
      return '';
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.issues.join('\n');
    }
  };
  assert.equal(parseConfig(base, 'test').approvals.delivery, 'auto');
  assert.equal(
    parseConfig({ ...base, approvals: { delivery: 'hold' } }, 'test').approvals.delivery,
    'hold',
  );
  assert.equal(
    parseConfig({ ...base, approvals: { delivery: 'task' } }, 'test').approvals.delivery,
    'task',
  );
  assert.match(problems({ approvals: { delivery: 'tasks' } }), /approvals\.delivery/);
  const grant = { tool: 'bank.pay', requires_approval: true, approval_delivery: 'retry' };
  const roles = (g: Record<string, unknown>) => ({ roles: { payer: { grants: [g] } } });
  const parsed = parseConfig({ ...base, ...roles(grant) }, 'test');
  assert.equal(parsed.policy.grants[0]?.approvalDelivery, 'retry');
  assert.match(
    problems(roles({ tool: 'bank.pay', approval_delivery: 'hold' })),
    /grants\.0\.approval_delivery: set requires_approval: true as well/,
  );
});
