/**
 * The policy operations every shell calls (`warden grant`, `warden policy state set`,
 * `warden tools approve`): each checks the request against the config, writes its change to the
 * store, and writes exactly one audit record with the fields the CLI always wrote; a refused
 * request stores and records nothing.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/config.js';
import { OperationError, type OperationErrorCode } from '../src/domain/errors.js';
import { approveToolDefinition } from '../src/policy/approve-tool-definition.js';
import { grantBreakGlass, type GrantBreakGlassRequest } from '../src/policy/grant-break-glass.js';
import { listToolDefinitions } from '../src/policy/list-tool-definitions.js';
import { readPolicyStates } from '../src/policy/read-policy-states.js';
import { revokeBreakGlass } from '../src/policy/revoke-break-glass.js';
import { setPolicyState } from '../src/policy/set-policy-state.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { recordingContext } from './support/operation-context.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const HOUR = 3_600_000;

let store: Store;
let config: Config;

before(async () => {
  store = await openStore('sqlite::memory:');
  config = parseConfig(
    {
      environment: 'production',
      store: 'sqlite::memory:',
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { 'research-bot': { roles: ['research'] } },
      roles: { research: {} },
      upstreams: { payments: { url: 'http://127.0.0.1:9/mcp' } },
      policy_states: { payments_freeze: { default: 'off' } },
      policy: { breakglass_max_ttl: '2h' },
    },
    'warden.yaml',
  );
});

after(async () => {
  await store?.close();
});

const context = (now = NOW) => recordingContext(now);

function refusedWith(code: OperationErrorCode, message: RegExp) {
  return (error: unknown) =>
    error instanceof OperationError && error.code === code && message.test(error.message);
}

test('grantBreakGlass stores one grant and writes exactly one grant.changed record', async () => {
  const operation = context();
  const grant = await grantBreakGlass(
    { ...operation, config, breakGlass: store.breakGlass, newId: () => 'bg-1' },
    {
      agent: 'research-bot',
      tool: 'payments.issue_payment',
      ttlMs: HOUR,
      reason: 'outage',
      by: 'alice',
    },
  );
  assert.deepEqual(grant, {
    id: 'bg-1',
    agent: 'research-bot',
    tool: 'payments.issue_payment',
    reason: 'outage',
    createdBy: 'alice',
    createdAt: NOW,
    expiresAt: NOW + HOUR,
    revokedAt: undefined,
  });
  assert.deepEqual(
    (await store.breakGlass.listActive(NOW)).map((entry) => entry.id),
    ['bg-1'],
  );
  assert.deepEqual(operation.records, [
    {
      event: 'grant.changed',
      time: '2026-03-01T12:00:00.000Z',
      environment: 'production',
      agent: 'research-bot',
      upstream: 'payments',
      tool: 'issue_payment',
      details: {
        kind: 'breakglass',
        id: 'bg-1',
        agent: 'research-bot',
        tool: 'payments.issue_payment',
        expiresAt: '2026-03-01T13:00:00.000Z',
        reason: 'outage',
        by: 'alice',
      },
    },
  ]);
});

test('grantBreakGlass refuses a long, wildcard, unexplained or unknown grant', async () => {
  const base: GrantBreakGlassRequest = {
    agent: 'research-bot',
    tool: 'payments.issue_payment',
    ttlMs: HOUR,
    reason: 'outage',
    by: 'alice',
  };
  const refusals: [Partial<GrantBreakGlassRequest>, RegExp][] = [
    [{ ttlMs: 3 * HOUR }, /longer than policy\.breakglass_max_ttl \(2h\)/],
    [{ ttlMs: 0 }, /positive lifetime/],
    [{ tool: 'payments.*' }, /never a wildcard/],
    [{ tool: 'billing.issue_payment' }, /no upstream named "billing"/],
    [{ agent: 'mallory-bot' }, /agent "mallory-bot" is not in the agent registry of warden\.yaml/],
    [{ reason: '  ' }, /must say why/],
  ];
  for (const [change, message] of refusals) {
    const operation = context(NOW + 1);
    await assert.rejects(
      grantBreakGlass(
        { ...operation, config, breakGlass: store.breakGlass },
        { ...base, ...change },
      ),
      refusedWith('OPERATION_INVALID', message),
    );
    assert.deepEqual(operation.records, [], `nothing recorded for ${JSON.stringify(change)}`);
  }
  assert.equal((await store.breakGlass.listActive(NOW + 1)).length, 1, 'nothing stored');
});

test('revokeBreakGlass ends a grant once and writes one grant.changed record', async () => {
  await grantBreakGlass(
    { ...context(), config, breakGlass: store.breakGlass, newId: () => 'bg-2' },
    { agent: 'research-bot', tool: 'payments.refund', ttlMs: HOUR, reason: 'fix', by: 'alice' },
  );
  const operation = context(NOW + 60_000);
  const revoked = await revokeBreakGlass(
    { ...operation, breakGlass: store.breakGlass },
    { id: 'bg-2', reason: 'fixed', by: 'bob' },
  );
  assert.equal(revoked.revokedAt, NOW + 60_000);
  assert.deepEqual(operation.records, [
    {
      event: 'grant.changed',
      time: '2026-03-01T12:01:00.000Z',
      environment: 'production',
      agent: 'research-bot',
      upstream: 'payments',
      tool: 'refund',
      details: {
        kind: 'breakglass',
        id: 'bg-2',
        agent: 'research-bot',
        tool: 'payments.refund',
        revoked: true,
        reason: 'fixed',
        by: 'bob',
      },
    },
  ]);
  const again = context(NOW + 120_000);
  await assert.rejects(
    revokeBreakGlass({ ...again, breakGlass: store.breakGlass }, { id: 'bg-2', by: 'bob' }),
    refusedWith('OPERATION_NOT_FOUND', /no break-glass grant bg-2 is in force/),
  );
  assert.deepEqual(again.records, []);
});

test('setPolicyState switches a configured state and writes one grant.changed record', async () => {
  const operation = context();
  const { before } = await setPolicyState(
    { ...operation, config, policyStates: store.policyStates },
    { name: 'payments_freeze', on: true, reason: 'INC-42', by: 'someone' },
  );
  assert.equal(before.on, false);
  assert.equal(before.change, undefined, 'it was at its configured default');
  assert.deepEqual(operation.records, [
    {
      event: 'grant.changed',
      time: '2026-03-01T12:00:00.000Z',
      environment: 'production',
      details: {
        kind: 'policy_state',
        name: 'payments_freeze',
        on: true,
        reason: 'INC-42',
        by: 'someone',
      },
    },
  ]);
  const states = await readPolicyStates({ config, policyStates: store.policyStates });
  assert.deepEqual(states.get('payments_freeze'), {
    name: 'payments_freeze',
    on: true,
    defaultOn: false,
    change: { at: NOW, by: 'someone', reason: 'INC-42' },
  });
});

test('setPolicyState refuses a state the config does not declare, recording nothing', async () => {
  const operation = context();
  await assert.rejects(
    setPolicyState(
      { ...operation, config, policyStates: store.policyStates },
      { name: 'payment_freeze', on: true, reason: 'typo', by: 'someone' },
    ),
    refusedWith('OPERATION_INVALID', /no policy state "payment_freeze" is configured/),
  );
  assert.deepEqual(operation.records, []);
});

test('approveToolDefinition approves the pending version and writes one tool.approved record', async () => {
  const dependencies = { config, toolDefinitions: store.toolDefinitions };
  const nothing = context();
  await assert.rejects(
    approveToolDefinition({ ...nothing, ...dependencies }, { tool: 'payments.pay', by: 'carol' }),
    refusedWith('OPERATION_NOT_FOUND', /nothing to approve for payments\.pay: no definition/),
  );
  assert.deepEqual(nothing.records, []);

  const observe = (hash: string, at: number) =>
    store.toolDefinitions.observe({
      upstream: 'payments',
      tool: 'pay',
      hash,
      definition: `{"name":"pay","description":"${hash}"}`,
      firstSeenAt: at,
    });
  await observe('aa11', NOW - 60_000);
  await store.toolDefinitions.approve('payments', 'pay', 'aa11', 'bob', NOW - 50_000);
  await observe('aa22', NOW - 1000);

  const ambiguous = context();
  await assert.rejects(
    approveToolDefinition(
      { ...ambiguous, ...dependencies },
      { tool: 'payments.pay', hash: 'aa', by: 'carol' },
    ),
    refusedWith('OPERATION_INVALID', /matches 2 versions/),
  );

  const operation = context();
  const approval = await approveToolDefinition(
    { ...operation, ...dependencies },
    { tool: 'payments.pay', by: 'carol' },
  );
  assert.equal(approval.approved.hash, 'aa22');
  assert.equal(approval.previous?.hash, 'aa11');
  assert.deepEqual(operation.records, [
    {
      event: 'tool.approved',
      time: '2026-03-01T12:00:00.000Z',
      environment: 'production',
      upstream: 'payments',
      tool: 'pay',
      details: { hash: 'aa22', approvedBy: 'carol' },
    },
  ]);
  assert.deepEqual(
    (await listToolDefinitions(dependencies, 'payments')).map((v) => [v.hash, v.status]),
    [
      ['aa11', 'approved earlier'],
      ['aa22', 'in force'],
    ],
  );
});
