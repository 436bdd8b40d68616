/**
 * Human approvals, from the attacker's side: a held call is released only by a real approver's
 * grant, once, for exactly the arguments approved; nobody approves their own call, votes twice, or
 * decides after the timeout; a refusal, a timeout, a cancelled client or an unavailable store all
 * keep the call from being forwarded, and every step lands in the audit log.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createApprovalsApi } from '../src/admin/approvals-api.js';
import { createApprovalNotifier } from '../src/approvals/approval-notifier.js';
import {
  bindingOf,
  createApprovalService,
  type ApprovalService,
  type HeldCall,
} from '../src/approvals/approval-service.js';
import { ApprovalError, type ApprovalErrorCode } from '../src/approvals/errors.js';
import { parseConfig } from '../src/config/load.js';
import type { AuditEntry } from '../src/domain/audit-record.js';
import { canonicalJson } from '../src/domain/canonical-json.js';
import type { Decision } from '../src/domain/decision.js';
import { ConfigError, toWireError, WardenError, type ErrorCode } from '../src/domain/errors.js';
import type { Identity } from '../src/domain/identity.js';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest, Store } from '../src/store/types.js';

const T0 = Date.UTC(2026, 2, 1, 9, 0, 0);
const TIMEOUT_MS = 60_000;
const CAROL = { user: 'carol@example.com', roles: ['finance_approver'] };
const DAVE = { user: 'dave@example.com', roles: ['finance_approver'] };
const ARGS = { vendor: 'ACME GmbH', amount: 950, currency: 'EUR', memo: 'invoice 4711' };

const IDENTITY: Identity = {
  user: 'bob@example.com',
  delegation: [],
  agent: 'finance-bot',
  roles: ['finance_executor'],
  environment: 'test',
  tenant: undefined,
  declaredModel: 'model-x',
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

function approvalDecision(approvalsRequired: 1 | 2 = 1): Decision {
  return {
    effect: 'approval_required',
    reasons: ['payments over 500 EUR need a finance approver'],
    policies: ['grant-issue-payment'],
    approval: {
      approverRoles: ['finance_approver'],
      approvalsRequired,
      timeoutMs: TIMEOUT_MS,
      grants: ['grant-issue-payment'],
      scopes: ['max_amount_1000_eur'],
    },
    policyVersion: 'policy-v1',
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Harness {
  readonly store: Store;
  readonly service: ApprovalService;
  readonly records: AuditEntry[];
  readonly clock: { now: number };
  readonly errors: string[];
  /** The next request announced by hold(). */
  nextAnnounced(): Promise<ApprovalRequest>;
}

async function harness(
  options: { store?: Store; pollIntervalMs?: number; progressEveryMs?: number } = {},
): Promise<Harness> {
  const store = options.store ?? (await openStore('sqlite::memory:'));
  if (options.store === undefined) cleanups.push(() => store.close());
  const records: AuditEntry[] = [];
  const clock = { now: T0 };
  const errors: string[] = [];
  const announced: ApprovalRequest[] = [];
  let waiting: ((request: ApprovalRequest) => void) | undefined;
  let ids = 0;
  const service = createApprovalService({
    store,
    config: { pollIntervalMs: options.pollIntervalMs ?? 20 },
    now: () => clock.now,
    newId: () => `ap-${++ids}`,
    record: async (entry) => {
      records.push(entry);
    },
    notify: (request) => {
      if (waiting) {
        waiting(request);
        waiting = undefined;
      } else announced.push(request);
    },
    onError: (_error, message) => errors.push(message),
    ...(options.progressEveryMs !== undefined && { progressEveryMs: options.progressEveryMs }),
    environment: 'test',
  });
  return {
    store,
    service,
    records,
    clock,
    errors,
    nextAnnounced: () => {
      const queued = announced.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve) => (waiting = resolve));
    },
  };
}

function heldCall(overrides: Partial<HeldCall> = {}): HeldCall & { controller: AbortController } {
  const controller = new AbortController();
  return {
    requestId: 'req-1',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    identity: IDENTITY,
    upstream: 'payments',
    tool: 'issue_payment',
    arguments: ARGS,
    argumentsHash: 'hash-of-args',
    decision: approvalDecision(),
    toolDefinitionHash: 'tooldef-1',
    signal: controller.signal,
    controller,
    // Decided again at release under unchanged rules: the same policy version and definition.
    recheck: () =>
      Promise.resolve({
        policyVersion: overrides.decision?.policyVersion ?? approvalDecision().policyVersion ?? '',
        toolDefinitionHash: overrides.toolDefinitionHash ?? 'tooldef-1',
      }),
    ...overrides,
  };
}

/** A pending request stored directly, as another replica's hold() would have left it. */
function pendingRequest(id: string, overrides: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id,
    requestId: `req-${id}`,
    status: 'pending',
    createdAt: T0,
    expiresAt: T0 + TIMEOUT_MS,
    decidedAt: undefined,
    consumedAt: undefined,
    user: 'bob@example.com',
    agent: 'finance-bot',
    roles: ['finance_executor'],
    model: undefined,
    upstream: 'payments',
    tool: 'issue_payment',
    arguments: canonicalJson(ARGS),
    argumentsHash: 'hash-of-args',
    toolDefinitionHash: 'tooldef-1',
    policyVersion: 'policy-v1',
    grants: ['grant-issue-payment'],
    scopes: ['max_amount_1000_eur'],
    approverRoles: ['finance_approver'],
    approvalsRequired: 1,
    votes: [],
    ...overrides,
  };
}

/** The error `promise` rejects with, checked to be of `type` with `code`. */
async function failure<E extends WardenError | ApprovalError>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => E,
  code: E['code'],
): Promise<E> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (reason: unknown) => reason,
  );
  assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

const rejectsWith = (promise: Promise<unknown>, code: ErrorCode) =>
  failure(promise, WardenError, code);
const refusedBy = (promise: Promise<unknown>, code: ApprovalErrorCode) =>
  failure(promise, ApprovalError, code);

const events = (records: readonly AuditEntry[]) => records.map((record) => record.event);

test('a granted call is released once, for the approver who granted it, with every step recorded', async () => {
  const h = await harness();
  const call = heldCall();
  const held = h.service.hold(call);
  const announced = await h.nextAnnounced();
  assert.equal(announced.status, 'pending');
  assert.equal(announced.expiresAt, T0 + TIMEOUT_MS);
  assert.deepEqual(JSON.parse(announced.arguments), ARGS, 'approvers see the full arguments');

  const decided = await h.service.decide(announced.id, CAROL, 'approve', 'invoice checked');
  assert.equal(decided.status, 'granted');
  const released = await held;
  assert.deepEqual(released.approvers, ['carol@example.com']);
  assert.equal(released.approval.status, 'granted');
  assert.equal(released.approval.consumedAt, T0);

  assert.deepEqual(events(h.records), ['approval.requested', 'approval.granted']);
  const [requested, granted] = h.records;
  assert.equal(requested?.requestId, 'req-1');
  assert.equal(requested?.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(requested?.user, 'bob@example.com');
  assert.equal(requested?.agent, 'finance-bot');
  assert.equal(requested?.model, 'model-x');
  assert.equal(requested?.decision?.effect, 'approval_required');
  assert.deepEqual(requested?.approval, {
    id: 'ap-1',
    approvers: ['finance_approver'],
    argumentsHash: 'hash-of-args',
  });
  assert.equal(granted?.requestId, 'req-1', 'the grant joins the call story');
  assert.deepEqual(granted?.approval, {
    id: 'ap-1',
    approvers: ['carol@example.com'],
    decidedAt: new Date(T0).toISOString(),
    argumentsHash: 'hash-of-args',
  });
  assert.deepEqual(granted?.details, {
    votes: 1,
    required: 1,
    final: true,
    reason: 'invoice checked',
  });

  // Replaying the same approval for a second call is refused: it was used.
  const replay = await rejectsWith(
    h.service.consume(announced.id, {
      upstream: 'payments',
      tool: 'issue_payment',
      arguments: canonicalJson(ARGS),
      argumentsHash: 'hash-of-args',
      toolDefinitionHash: 'tooldef-1',
      policyVersion: 'policy-v1',
    }),
    'WARDEN_APPROVAL_REFUSED',
  );
  assert.match(String(replay.details?.['reason']), /already used/);
});

test('a grant cannot be spent on other arguments, another tool definition or policy version', async () => {
  const h = await harness();
  await h.store.approvals.create(pendingRequest('ap-x'));
  await h.service.decide('ap-x', CAROL, 'approve', '');
  const binding = {
    upstream: 'payments',
    tool: 'issue_payment',
    arguments: canonicalJson(ARGS),
    argumentsHash: 'hash-of-args',
    toolDefinitionHash: 'tooldef-1',
    policyVersion: 'policy-v1',
  };
  const tampered = canonicalJson({ ...ARGS, amount: 95_000 });
  for (const [change, what] of [
    [{ arguments: tampered, argumentsHash: 'hash-of-other-args' }, 'set of arguments'],
    [{ arguments: tampered }, 'set of arguments'],
    [{ tool: 'delete_vendor' }, 'tool'],
  ] as const) {
    const error = await rejectsWith(
      h.service.consume('ap-x', { ...binding, ...change }),
      'WARDEN_APPROVAL_REFUSED',
    );
    assert.match(error.message, new RegExp(`different ${what}`));
  }
  // A definition or policy that changed since the approval was asked for makes it stale.
  for (const [change, what] of [
    [{ toolDefinitionHash: 'tooldef-2' }, 'tool definition'],
    [{ policyVersion: 'policy-v2' }, 'policy version'],
  ] as const) {
    const error = await rejectsWith(
      h.service.consume('ap-x', { ...binding, ...change }),
      'WARDEN_APPROVAL_STALE',
    );
    assert.match(error.message, new RegExp(`${what} changed`));
  }
  assert.equal((await h.store.approvals.get('ap-x'))?.consumedAt, undefined, 'still unused');
  assert.equal((await h.service.consume('ap-x', binding)).consumedAt, T0);
  await rejectsWith(h.service.consume('ap-x', binding), 'WARDEN_APPROVAL_REFUSED');
});

test('a denied call is refused with the approver’s reason and never released', async () => {
  const h = await harness();
  const held = h.service.hold(heldCall());
  const { id } = await h.nextAnnounced();
  await h.service.decide(id, DAVE, 'deny', 'vendor not on the contract list');
  const error = await rejectsWith(held, 'WARDEN_APPROVAL_REFUSED');
  assert.deepEqual(error.details, { approvalId: id, reason: 'vendor not on the contract list' });
  const stored = await h.store.approvals.get(id);
  assert.equal(stored?.status, 'refused');
  assert.equal(stored?.consumedAt, undefined);
  const refused = h.records.find((record) => record.event === 'approval.refused');
  assert.deepEqual(refused?.approval?.approvers, ['dave@example.com']);
  assert.equal(refused?.requestId, 'req-1');
  assert.deepEqual(refused?.details, { reason: 'vendor not on the contract list' });
});

test('no decision before the timeout: the call expires (judged by the injected clock)', async () => {
  const h = await harness();
  const held = h.service.hold(heldCall());
  const { id } = await h.nextAnnounced();
  h.clock.now = T0 + TIMEOUT_MS - 1;
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal((await h.store.approvals.get(id))?.status, 'pending', 'not a millisecond early');
  h.clock.now = T0 + TIMEOUT_MS;
  const error = await rejectsWith(held, 'WARDEN_APPROVAL_EXPIRED');
  assert.deepEqual(error.details, { approvalId: id });
  const stored = await h.store.approvals.get(id);
  assert.equal(stored?.status, 'expired');
  assert.equal(stored?.decidedAt, T0 + TIMEOUT_MS);
  assert.deepEqual(events(h.records), ['approval.requested', 'approval.expired']);
  assert.equal(h.records[1]?.requestId, 'req-1');

  // A late approver cannot resurrect it.
  await refusedBy(h.service.decide(id, CAROL, 'approve', ''), 'APPROVAL_ALREADY_DECIDED');
});

test('a decision arriving after the timeout marks the request expired instead', async () => {
  const h = await harness();
  await h.store.approvals.create(pendingRequest('ap-late'));
  h.clock.now = T0 + TIMEOUT_MS + 5;
  const error = await refusedBy(
    h.service.decide('ap-late', CAROL, 'approve', 'sorry, was at lunch'),
    'APPROVAL_EXPIRED',
  );
  assert.match(error.message, /expired/);
  const stored = await h.store.approvals.get('ap-late');
  assert.equal(stored?.status, 'expired');
  assert.deepEqual(stored?.votes, [], 'the late vote is not counted');
  assert.deepEqual(events(h.records), ['approval.expired']);
});

test('refuses self-approval: the requesting user (in any letter case) or the requesting agent', async () => {
  const h = await harness();
  await h.store.approvals.create(pendingRequest('ap-self'));
  const approverRoles = ['finance_approver'];
  for (const approver of [
    { user: 'bob@example.com', roles: approverRoles },
    { user: ' Bob@Example.COM', roles: approverRoles },
    { user: 'finance-bot', roles: approverRoles },
    { user: 'carol@example.com', roles: approverRoles, via: ['finance-bot'] },
  ]) {
    await refusedBy(h.service.decide('ap-self', approver, 'approve', ''), 'APPROVAL_SELF_APPROVAL');
  }
  const stored = await h.store.approvals.get('ap-self');
  assert.equal(stored?.status, 'pending');
  assert.deepEqual(stored?.votes, []);
  assert.deepEqual(h.records, [], 'a refused attempt changes nothing');
});

test('refuses an approver who holds none of the request’s approver roles', async () => {
  const h = await harness();
  await h.store.approvals.create(pendingRequest('ap-role'));
  const error = await refusedBy(
    h.service.decide(
      'ap-role',
      { user: 'erin@example.com', roles: ['it_approver'] },
      'approve',
      '',
    ),
    'APPROVAL_NOT_AN_APPROVER',
  );
  assert.match(error.message, /finance_approver/);
  await refusedBy(
    h.service.decide('ap-role', { user: 'erin@example.com', roles: [] }, 'deny', 'no'),
    'APPROVAL_NOT_AN_APPROVER',
  );
  assert.equal((await h.store.approvals.get('ap-role'))?.status, 'pending');
  await refusedBy(h.service.decide('ap-none', CAROL, 'approve', ''), 'APPROVAL_NOT_FOUND');
});

test('two-person rule: one approval keeps the call held, the same approver twice is refused, a second person releases it', async () => {
  const h = await harness();
  const held = h.service.hold(heldCall({ decision: approvalDecision(2) }));
  let released = false;
  void held.then(() => (released = true));
  const { id } = await h.nextAnnounced();

  const first = await h.service.decide(id, CAROL, 'approve', 'looks right');
  assert.equal(first.status, 'pending');
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(released, false, 'one approval is not enough');

  await refusedBy(h.service.decide(id, CAROL, 'approve', 'again'), 'APPROVAL_ALREADY_VOTED');
  await refusedBy(
    h.service.decide(id, { ...CAROL, user: 'CAROL@example.com' }, 'approve', ''),
    'APPROVAL_ALREADY_VOTED',
  );

  const second = await h.service.decide(id, DAVE, 'approve', 'confirmed by phone');
  assert.equal(second.status, 'granted');
  const { approvers } = await held;
  assert.deepEqual(approvers, ['carol@example.com', 'dave@example.com']);

  const grants = h.records.filter((record) => record.event === 'approval.granted');
  assert.deepEqual(
    grants.map((record) => [record.approval?.approvers, record.details?.['final']]),
    [
      [['carol@example.com'], false],
      [['carol@example.com', 'dave@example.com'], true],
    ],
  );
});

test('two approvers deciding at the same moment: exactly one wins, the other is told it is decided', async () => {
  const h = await harness();
  await h.store.approvals.create(pendingRequest('ap-race'));
  const outcomes = await Promise.allSettled([
    h.service.decide('ap-race', CAROL, 'approve', ''),
    h.service.decide('ap-race', DAVE, 'deny', 'no'),
  ]);
  const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
  const lost = outcomes.filter((outcome) => outcome.status === 'rejected');
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  const reason = (lost[0] as PromiseRejectedResult).reason as ApprovalError;
  assert.equal(reason.code, 'APPROVAL_ALREADY_DECIDED');
  assert.match(reason.message, /already (granted|refused) since 2026-03-01T09:00:00.000Z/);
  const stored = await h.store.approvals.get('ap-race');
  assert.equal(stored?.votes.length, 1, 'only the winner’s vote is stored');
  assert.equal(h.records.length, 1);
});

test('a client that goes away withdraws its request; nobody can approve it afterwards', async () => {
  const h = await harness();
  const call = heldCall();
  const held = h.service.hold(call);
  const { id } = await h.nextAnnounced();
  const reason = new Error('client disconnected');
  call.controller.abort(reason);
  await assert.rejects(held, (error) => error === reason);
  const stored = await h.store.approvals.get(id);
  assert.equal(stored?.status, 'withdrawn');
  const withdrawn = h.records.at(-1);
  assert.equal(withdrawn?.event, 'approval.refused');
  assert.deepEqual(withdrawn?.details, { withdrawn: true, by: 'client' });
  await refusedBy(h.service.decide(id, CAROL, 'approve', ''), 'APPROVAL_ALREADY_DECIDED');
});

test('a granted call that the rules now refuse is invalidated at release, never consumed', async () => {
  const h = await harness();
  let rechecks = 0;
  const call = heldCall({
    recheck: () => {
      rechecks++;
      return Promise.reject(
        new WardenError('WARDEN_APPROVAL_STALE', undefined, {
          details: { reason: 'the call is now refused: policy state payments_freeze is on' },
        }),
      );
    },
  });
  const held = h.service.hold(call);
  const { id } = await h.nextAnnounced();
  await h.service.decide(id, CAROL, 'approve', '');
  const error = await rejectsWith(held, 'WARDEN_APPROVAL_STALE');
  assert.match(String(error.details?.['reason']), /payments_freeze/);
  assert.equal(rechecks, 1, 'decided again exactly once, after the grant');
  const stored = await h.store.approvals.get(id);
  assert.equal(stored?.status, 'invalidated');
  assert.equal(stored?.consumedAt, undefined, 'the approval was never used');
  assert.deepEqual(events(h.records), [
    'approval.requested',
    'approval.granted',
    'approval.invalidated',
  ]);
  assert.match(String(h.records.at(-1)?.details?.['reason']), /payments_freeze/);
  await rejectsWith(
    h.service.consume(id, bindingOf(stored ?? assert.fail('stored'))),
    'WARDEN_APPROVAL_REFUSED',
  );
});

test('a granted call whose policy version changed before release is stale, even if the rules still allow it', async () => {
  const h = await harness();
  const call = heldCall({
    recheck: () => Promise.resolve({ policyVersion: 'policy-v2', toolDefinitionHash: 'tooldef-1' }),
  });
  const held = h.service.hold(call);
  const { id } = await h.nextAnnounced();
  await h.service.decide(id, CAROL, 'approve', '');
  const error = await rejectsWith(held, 'WARDEN_APPROVAL_STALE');
  assert.match(error.message, /policy version changed/);
  assert.equal((await h.store.approvals.get(id))?.status, 'invalidated');
});

test('invalidating pending requests refuses their held calls at once, tells approvers, and spares the others', async () => {
  const invalidated: [string, string][] = [];
  const h = await harness();
  const service = createApprovalService({
    store: h.store,
    config: { pollIntervalMs: 60_000 }, // only the in-process wake can release the holder in time
    now: () => h.clock.now,
    record: (entry) => {
      h.records.push(entry);
      return Promise.resolve();
    },
    notify: () => undefined,
    notifyInvalidated: (request, reason) => invalidated.push([request.id, reason]),
  });
  const stale = heldCall({ requestId: 'req-stale' });
  const held = service.hold(stale);
  await h.store.approvals.create(pendingRequest('ap-other', { policyVersion: 'policy-v2' }));
  let pending: ApprovalRequest[] = [];
  while (pending.length < 2) pending = await h.store.approvals.list({ status: 'pending' });
  const ids = await service.invalidatePending(
    (request) => request.policyVersion !== 'policy-v2',
    'the policy was reloaded while the request waited',
  );
  assert.equal(ids.length, 1);
  const error = await rejectsWith(held, 'WARDEN_APPROVAL_STALE');
  assert.equal(error.details?.['approvalId'], ids[0]);
  assert.deepEqual(invalidated, [[ids[0], 'the policy was reloaded while the request waited']]);
  assert.equal((await h.store.approvals.get('ap-other'))?.status, 'pending', 'others untouched');
  const record = h.records.find((entry) => entry.event === 'approval.invalidated');
  assert.equal(record?.requestId, 'req-stale');
  // The approver who comes to it later is told it can no longer be decided.
  const refusal = await refusedBy(
    service.decide(ids[0] ?? '', CAROL, 'approve', ''),
    'APPROVAL_ALREADY_DECIDED',
  );
  assert.match(refusal.message, /invalidated/);
});

test('a decision made in this process releases the holder at once, without waiting for a poll', async () => {
  const pollIntervalMs = 60_000;
  const h = await harness({ pollIntervalMs });
  const held = h.service.hold(heldCall());
  const { id } = await h.nextAnnounced();
  const started = performance.now();
  await h.service.decide(id, CAROL, 'approve', '');
  await held;
  // Its next poll is a minute away: released long before, however loaded the machine.
  const elapsed = performance.now() - started;
  assert.ok(elapsed < pollIntervalMs / 6, `released after ${Math.round(elapsed)} ms`);
});

test('a decision the audit log cannot record is reported as WARDEN_AUDIT_UNAVAILABLE, not as success', async () => {
  const store = await openStore('sqlite::memory:');
  cleanups.push(() => store.close());
  await store.approvals.create(pendingRequest('ap-unlogged'));
  const service = createApprovalService({
    store,
    config: { pollIntervalMs: 20 },
    now: () => T0,
    record: async () => {
      throw new Error('audit store down');
    },
    notify: () => undefined,
  });
  const error = await rejectsWith(
    service.decide('ap-unlogged', CAROL, 'approve', ''),
    'WARDEN_AUDIT_UNAVAILABLE',
  );
  assert.deepEqual(error.details, { approvalId: 'ap-unlogged' });
});

test('a decision made through another store on the same SQLite file (the CLI) releases the holder at a poll', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-approvals-'));
  const url = `sqlite:${join(dir, 'warden.db')}`;
  const gatewayStore = await openStore(url);
  const cliStore = await openStore(url);
  cleanups.push(async () => {
    await gatewayStore.close();
    await cliStore.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const pollIntervalMs = 250;
  const gateway = await harness({ store: gatewayStore, pollIntervalMs });
  const cli = await harness({ store: cliStore });
  const held = gateway.service.hold(heldCall());
  const { id } = await gateway.nextAnnounced();

  const started = performance.now();
  await cli.service.decide(id, CAROL, 'approve', 'via the CLI');
  const released = await held;
  // Only a poll can see it: within a few intervals, with room for a loaded machine.
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 20 * pollIntervalMs, `released after ${Math.round(elapsed)} ms`);
  assert.deepEqual(released.approvers, ['carol@example.com']);
  assert.deepEqual(events(cli.records), ['approval.granted']);
});

test('fails closed when the approval store is unavailable: WARDEN_APPROVAL_UNAVAILABLE, nothing held', async () => {
  const store = await openStore('sqlite::memory:');
  const h = await harness({ store });
  await store.close();
  const call = heldCall();
  await rejectsWith(h.service.hold(call), 'WARDEN_APPROVAL_UNAVAILABLE');
  assert.deepEqual(h.records, []);
});

test('fails closed when approval.requested cannot be recorded, and takes the request off the list', async () => {
  const store = await openStore('sqlite::memory:');
  cleanups.push(() => store.close());
  const announced: ApprovalRequest[] = [];
  const service = createApprovalService({
    store,
    config: { pollIntervalMs: 20 },
    now: () => T0,
    newId: () => 'ap-unrecorded',
    record: async () => {
      throw new Error('audit store down');
    },
    notify: (request) => announced.push(request),
  });
  const error = await rejectsWith(service.hold(heldCall()), 'WARDEN_APPROVAL_UNAVAILABLE');
  assert.doesNotMatch(error.message, /audit store down/, 'no internal detail on the wire');
  assert.deepEqual(announced, [], 'approvers are not asked about a refused call');
  assert.equal((await store.approvals.get('ap-unrecorded'))?.status, 'withdrawn');
});

test('the holder hears about progress while it waits', async () => {
  const h = await harness({ progressEveryMs: 20 });
  const seen: { approvalId: string; elapsedMs: number }[] = [];
  const held = h.service.hold(heldCall({ onWaiting: (info) => seen.push(info) }));
  const { id } = await h.nextAnnounced();
  h.clock.now = T0 + 1500;
  // Told again and again while it waits, each time how long by the injected clock.
  const deadline = Date.now() + 10_000;
  while (seen.filter(({ elapsedMs }) => elapsedMs === 1500).length < 2) {
    assert.ok(Date.now() < deadline, `${seen.length} progress calls: ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await h.service.decide(id, CAROL, 'approve', '');
  await held;
  assert.deepEqual(seen.at(-1), { approvalId: id, elapsedMs: 1500 });
});

/** A loopback receiver that keeps every delivery. */
async function startReceiver(
  answer = 200,
): Promise<{ url: string; deliveries: { headers: IncomingMessage['headers']; body: string }[] }> {
  const deliveries: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      deliveries.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/approvals`, deliveries };
}

test('webhook: approvers receive the full arguments, signed with the shared key over timestamp and body', async () => {
  const receiver = await startReceiver();
  const errors: string[] = [];
  const notifier = createApprovalNotifier({
    webhooks: [{ url: receiver.url, format: 'json', secretEnv: 'APPROVALS_HMAC', timeoutMs: 2000 }],
    env: { APPROVALS_HMAC: 'a shared webhook key of some length' },
    now: () => T0,
    onError: (_error, message) => errors.push(message),
  });
  notifier.notify(pendingRequest('ap-hook', { model: 'model-x' }));
  await notifier.idle();
  assert.deepEqual(errors, []);
  assert.equal(receiver.deliveries.length, 1);
  const [delivery] = receiver.deliveries;
  const body = delivery?.body ?? '';
  const payload = JSON.parse(body) as Record<string, unknown>;
  assert.equal(payload['type'], 'approval.requested');
  assert.equal(payload['id'], 'ap-hook');
  assert.equal(payload['requestId'], 'req-ap-hook');
  assert.deepEqual(payload['arguments'], ARGS);
  assert.equal(payload['user'], 'bob@example.com');
  assert.equal(payload['model'], 'model-x');
  assert.deepEqual(payload['approverRoles'], ['finance_approver']);
  assert.equal(payload['expiresAt'], new Date(T0 + TIMEOUT_MS).toISOString());
  assert.match(String(payload['approve']), /^warden approvals approve ap-hook --as /);
  assert.match(String(payload['deny']), /^warden approvals deny ap-hook .*--reason/);

  const timestamp = String(delivery?.headers['x-warden-timestamp']);
  assert.equal(timestamp, String(T0 / 1000));
  const expected = `sha256=${createHmac('sha256', 'a shared webhook key of some length')
    .update(`${timestamp}.${body}`)
    .digest('hex')}`;
  const signature = String(delivery?.headers['x-warden-signature']);
  assert.equal(signature.length, expected.length);
  assert.ok(timingSafeEqual(Buffer.from(signature), Buffer.from(expected)), 'valid signature');
});

test('webhook: the Slack format has text and blocks, and an agent cannot ping the channel through it', async () => {
  const receiver = await startReceiver();
  const notifier = createApprovalNotifier({
    webhooks: [{ url: receiver.url, format: 'slack', secretEnv: undefined, timeoutMs: 2000 }],
    onError: (error) => assert.fail(String(error)),
  });
  const hostile = canonicalJson({
    ...ARGS,
    memo: '<!channel> pay now ``` <https://evil.example|bank>',
  });
  notifier.notify(pendingRequest('ap-slack', { arguments: hostile }));
  await notifier.idle();
  const delivery = receiver.deliveries[0];
  assert.equal(delivery?.headers['x-warden-signature'], undefined, 'unsigned without secret_env');
  const message = JSON.parse(delivery?.body ?? '{}') as { text: string; blocks: unknown[] };
  assert.match(message.text, /Approval needed: finance-bot wants to call payments\.issue_payment/);
  const blocks = JSON.stringify(message.blocks);
  assert.match(blocks, /"type":"section"/);
  assert.match(blocks, /"type":"mrkdwn"/);
  assert.match(blocks, /ACME GmbH/);
  assert.match(blocks, /warden approvals approve ap-slack/);
  assert.doesNotMatch(blocks, /<!channel>|<https:/, 'mrkdwn control characters are escaped');
  assert.match(blocks, /&lt;!channel&gt;/);
});

test('webhook: a failing or unreachable receiver is reported, never thrown; no URL path leaks', async () => {
  const receiver = await startReceiver(500);
  const errors: { error: unknown; message: string }[] = [];
  const notifier = createApprovalNotifier({
    webhooks: [
      {
        url: `${receiver.url}/T000/secret-path`,
        format: 'json',
        secretEnv: undefined,
        timeoutMs: 2000,
      },
      {
        url: 'http://127.0.0.1:9/unreachable',
        format: 'json',
        secretEnv: undefined,
        timeoutMs: 2000,
      },
    ],
    onError: (error, message) => errors.push({ error, message }),
  });
  notifier.notify(pendingRequest('ap-fail'));
  await notifier.idle();
  assert.equal(errors.length, 2);
  for (const { error, message } of errors) {
    assert.doesNotMatch(`${message} ${String(error)}`, /secret-path/);
  }
  assert.ok(errors.some(({ error }) => /HTTP 500/.test(String(error))));
});

test('webhook: a secret_env that is not set stops the start instead of sending unsigned', () => {
  assert.throws(
    () =>
      createApprovalNotifier({
        webhooks: [
          { url: 'https://hooks.example/a', format: 'json', secretEnv: 'NOPE', timeoutMs: 1000 },
        ],
        env: {},
        onError: () => undefined,
      }),
    (error) => error instanceof ConfigError && /secret_env.*NOPE/.test(error.message),
  );
});

const BASE_CONFIG = {
  auth: { resource: 'https://warden.example.com/mcp', issuers: [{ builtin: {} }] },
  agents: { 'finance-bot': { roles: ['finance_executor'] } },
  roles: { finance_executor: {} },
  upstreams: { payments: { url: 'http://127.0.0.1:9/mcp' } },
};

test('config: approvers, webhooks and poll interval load; nothing configured means no approvers', () => {
  const empty = parseConfig(BASE_CONFIG, 'warden.yaml');
  assert.equal(empty.approvals.approvers.size, 0);
  assert.deepEqual(empty.approvals.webhooks, []);
  assert.equal(empty.approvals.pollIntervalMs, 250);

  const config = parseConfig(
    {
      ...BASE_CONFIG,
      approvals: {
        approvers: { 'carol@example.com': { roles: ['finance_approver'] } },
        webhooks: [
          {
            url: 'https://hooks.example/approvals',
            format: 'slack',
            secret_env: 'HOOK_KEY',
            timeout: '2s',
          },
          { url: 'https://hooks.example/json' },
        ],
        poll_interval: '100ms',
      },
    },
    'warden.yaml',
  );
  assert.deepEqual(config.approvals.approvers.get('carol@example.com'), {
    user: 'carol@example.com',
    roles: ['finance_approver'],
  });
  assert.deepEqual(config.approvals.webhooks, [
    {
      url: 'https://hooks.example/approvals',
      format: 'slack',
      secretEnv: 'HOOK_KEY',
      timeoutMs: 2000,
    },
    { url: 'https://hooks.example/json', format: 'json', secretEnv: undefined, timeoutMs: 5000 },
  ]);
  assert.equal(config.approvals.pollIntervalMs, 100);
  assert.throws(() => (config.approvals.approvers as Map<string, unknown>).set('x', {}), TypeError);
});

test('config: a typo or a bad value in approvals stops the load, naming the key', () => {
  for (const [approvals, pattern] of [
    [{ approver: {} }, /approvals: unknown key "approver"/],
    [{ approvers: { carol: { roles: [] } } }, /approvals\.approvers\.carol\.roles/],
    [{ approvers: { carol: { roles: ['x'], role: 'y' } } }, /unknown key "role"/],
    [{ webhooks: [{ url: 'ftp://hooks.example' }] }, /approvals\.webhooks\.0\.url/],
    [{ webhooks: [{ url: 'https://h.example', secret_env: 'not a name' }] }, /secret_env/],
    [{ poll_interval: '0ms' }, /approvals\.poll_interval/],
  ] as const) {
    assert.throws(
      () => parseConfig({ ...BASE_CONFIG, approvals }, 'warden.yaml'),
      (error) => error instanceof ConfigError && pattern.test(error.message),
      JSON.stringify(approvals),
    );
  }
});

/** The admin handler behind a loopback server, with a stand-in authenticator (token → identity). */
async function startAdminApi(service: ApprovalService): Promise<string> {
  const identities: Record<string, Identity> = {
    'console-carol': {
      ...IDENTITY,
      user: 'carol@example.com',
      agent: 'approvals-console',
      roles: ['warden_approver'],
    },
    'bot-carol': {
      ...IDENTITY,
      user: 'carol@example.com',
      agent: 'finance-bot',
      roles: ['warden_approver'],
    },
    'plain-carol': { ...IDENTITY, user: 'carol@example.com', agent: 'ops-bot', roles: ['ops'] },
    'console-erin': {
      ...IDENTITY,
      user: 'erin@example.com',
      agent: 'approvals-console',
      roles: ['warden_approver'],
    },
  };
  const api = createApprovalsApi({
    authenticate: async (request) => {
      const identity = identities[String(request.headers['authorization'])];
      if (identity === undefined) throw new WardenError('WARDEN_UNAUTHENTICATED');
      return identity;
    },
    approvals: service,
    approvers: new Map([
      ['carol@example.com', CAROL],
      ['dave@example.com', DAVE],
    ]),
  });
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    api(request, response).catch((error: unknown) => {
      const wire = toWireError(error, 'ref');
      response
        .writeHead(wire.status, { 'content-type': 'application/json' })
        .end(JSON.stringify({ message: wire.message, data: wire.data }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/approvals`;
}

test('admin API: the approver is the token’s user with the registry’s roles; a body naming someone else changes nothing', async () => {
  const h = await harness();
  await h.store.approvals.create(pendingRequest('ap-api'));
  const base = await startAdminApi(h.service);
  const post = (token: string, path: string, body: unknown) =>
    fetch(`${base}/${path}`, {
      method: 'POST',
      headers: { authorization: token, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  const listed = await fetch(`${base}?status=pending`, {
    headers: { authorization: 'console-carol' },
  });
  assert.equal(listed.status, 200);
  const { approvals } = (await listed.json()) as {
    approvals: { id: string; arguments: unknown }[];
  };
  assert.deepEqual(
    approvals.map(({ id }) => id),
    ['ap-api'],
  );
  assert.deepEqual(approvals[0]?.arguments, ARGS);

  const plain = await post('plain-carol', 'ap-api/approve', { reason: 'ok' });
  assert.equal(plain.status, 403, 'an ordinary agent with a user token is no approvals client');
  const agentSelf = await post('bot-carol', 'ap-api/approve', { reason: 'ok' });
  assert.equal(agentSelf.status, 403, 'the requesting agent cannot approve with a user’s token');
  const erin = await post('console-erin', 'ap-api/approve', { user: 'carol@example.com' });
  assert.equal(erin.status, 403, 'not in the approver registry, whatever the body says');
  const denyWithoutReason = await post('console-carol', 'ap-api/deny', {});
  assert.equal(denyWithoutReason.status, 400);

  const approved = await post('console-carol', 'ap-api/approve', { reason: 'ok', approver: 'x' });
  assert.equal(approved.status, 200);
  const { approval } = (await approved.json()) as {
    approval: { status: string; votes: { approver: string }[] };
  };
  assert.equal(approval.status, 'granted');
  assert.deepEqual(
    approval.votes.map((vote) => vote.approver),
    ['carol@example.com'],
  );

  const again = await post('console-carol', 'ap-api/deny', { reason: 'changed my mind' });
  assert.equal(again.status, 409);
  const body = (await again.json()) as { data: { code: string } };
  assert.equal(body.data.code, 'WARDEN_APPROVAL_ALREADY_DECIDED');
  const missing = await fetch(`${base}/ap-nope`, { headers: { authorization: 'console-carol' } });
  assert.equal(missing.status, 404);
  const wrongMethod = await fetch(`${base}/ap-api/approve`, {
    headers: { authorization: 'console-carol' },
  });
  assert.equal(wrongMethod.status, 405);
});
