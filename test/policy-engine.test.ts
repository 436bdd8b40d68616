// The policy engine from the attacker's side: an agent (or a model steered by injected text)
// cannot pay a vendor off the list, exceed a limit by a cent or by a digit Cedar cannot compare,
// smuggle a number in as text, reach a tool its role was never granted, outlive its grant, or
// slip past a hand-written forbid. A policy that does not load stops the gateway instead of
// loading half of it; a config whose grants are too wide does not load at all.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import type { PolicyConfig } from '../src/config/policy-config.js';
import type { Decision } from '../src/domain/decision.js';
import { ConfigError } from '../src/domain/errors.js';
import { PolicyLoadError } from '../src/policy/policy-load-error.js';
import {
  createPolicyEngine,
  type PolicyEngine,
  type PolicyRequest,
} from '../src/policy/policy-engine.js';

/** Wednesday 3 June 2026, 10:00 UTC. */
const WEDNESDAY_10 = Date.parse('2026-06-03T10:00:00Z');
/** Saturday 6 June 2026, 10:00 UTC. */
const SATURDAY_10 = Date.parse('2026-06-06T10:00:00Z');

const ENGINE_BASE = {
  auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
  // The registry plays no part here: each decision is given its identity (see decide).
  agents: { 'finance-bot': {} },
};

/** The policy part of a config; `upstreams` defaults to one upstream, `payments`. */
function policyOf(raw: Record<string, unknown>): PolicyConfig {
  return parseConfig(
    { ...ENGINE_BASE, upstreams: { payments: { url: 'http://127.0.0.1:3001/mcp' } }, ...raw },
    'test',
  ).policy;
}

function engineOf(raw: Record<string, unknown>): PolicyEngine {
  return createPolicyEngine(policyOf(raw));
}

type Ask = Partial<Omit<PolicyRequest, 'identity'>> & {
  readonly identity?: Partial<PolicyRequest['identity']>;
};

/** One decision; by default finance-bot (finance_executor) calls payments.issue_payment. */
function decide(engine: PolicyEngine, ask: Ask = {}): Decision {
  const { identity, ...rest } = ask;
  return engine.decide({
    action: 'call_tool',
    upstream: 'payments',
    name: 'issue_payment',
    arguments: {},
    now: WEDNESDAY_10,
    states: new Map(),
    breakglass: new Set(),
    ...rest,
    identity: {
      agent: 'finance-bot',
      user: 'ada@example.com',
      roles: ['finance_executor'],
      tenant: undefined,
      environment: 'test',
      declaredModel: undefined,
      ...identity,
    },
  });
}

function assertDenied(decision: Decision, reason?: RegExp): void {
  assert.equal(decision.effect, 'deny', JSON.stringify(decision));
  assert.equal(decision.monitored, undefined);
  if (reason) {
    assert.ok(
      decision.reasons.some((text) => reason.test(text)),
      `${JSON.stringify(decision.reasons)} should match ${reason}`,
    );
  }
}

function assertAllowed(decision: Decision): void {
  assert.equal(decision.effect, 'allow', JSON.stringify(decision));
  assert.equal(decision.monitored, undefined);
}

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-policy-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeCedar(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The seed's example, verbatim: one flat grant, a vendor list and a 1000 EUR cap. */
const SEED_FINANCE = {
  lists: { approved_vendors: ['acme', 'globex'] },
  scopes: {
    vendor_whitelist: { arg: 'vendor', in_list: 'approved_vendors' },
    max_amount_1000_eur: [
      { arg: 'amount', max: 1000 },
      { arg: 'currency', in: ['EUR'] },
    ],
  },
  grants: [
    {
      agent_role: 'finance_executor',
      tool: 'issue_payment',
      scope: ['vendor_whitelist', 'max_amount_1000_eur'],
      requires_approval: true,
    },
  ],
};
const SEED_GRANT_ID = 'finance_executor/tool/payments.issue_payment';

describe('the seed’s finance grant', () => {
  const engine = engineOf(SEED_FINANCE);
  const pay = (args: unknown) => decide(engine, { arguments: args });

  test('holds a payment to an approved vendor within 1000 EUR for a human approver', () => {
    const decision = pay({ vendor: 'acme', amount: 250.5, currency: 'EUR' });
    assert.equal(decision.effect, 'approval_required');
    assert.deepEqual(decision.policies, [SEED_GRANT_ID]);
    assert.deepEqual(decision.approval, {
      approverRoles: ['approver'],
      approvalsRequired: 1,
      timeoutMs: 10 * 60_000,
      grants: [SEED_GRANT_ID],
      scopes: ['vendor_whitelist', 'max_amount_1000_eur'],
    });
    assert.equal(decision.policyVersion, engine.version);
  });

  test('holds a payment of exactly 1000 EUR for approval: the limit is inclusive', () => {
    assert.equal(
      pay({ vendor: 'globex', amount: 1000, currency: 'EUR' }).effect,
      'approval_required',
    );
  });

  test('refuses a payment to a vendor off the list', () => {
    assertDenied(pay({ vendor: 'initech', amount: 10, currency: 'EUR' }), /vendor_whitelist/);
  });

  test('refuses a payment of 1000.01 EUR, one cent over the limit', () => {
    assertDenied(pay({ vendor: 'acme', amount: 1000.01, currency: 'EUR' }), /\bamount\b/);
  });

  test('refuses a payment in USD', () => {
    assertDenied(pay({ vendor: 'acme', amount: 10, currency: 'USD' }), /currency/);
  });

  test('refuses an amount sent as the string "500"', () => {
    assertDenied(pay({ vendor: 'acme', amount: '500', currency: 'EUR' }), /\bamount\b/);
  });

  test('refuses 999.00001: five decimals cannot be compared exactly, so never allowed', () => {
    assertDenied(pay({ vendor: 'acme', amount: 999.00001, currency: 'EUR' }), /\bamount\b/);
  });

  test('refuses a payment that names no vendor', () => {
    assertDenied(pay({ amount: 10, currency: 'EUR' }), /vendor is required/);
  });

  test('refuses arguments that are not an object at all', () => {
    for (const args of [undefined, null, 'vendor=acme', [{ vendor: 'acme' }]]) {
      assertDenied(pay(args));
    }
  });

  test('never says the refused value back: a reason names the rule, not the argument', () => {
    const decision = pay({ vendor: 'secret-vendor-4711', amount: 10, currency: 'EUR' });
    assertDenied(decision);
    assert.ok(decision.reasons.every((text) => !text.includes('secret-vendor-4711')));
  });
});

describe('roles reach only the tools they were granted', () => {
  const engine = engineOf({
    upstreams: {
      crm: { url: 'http://127.0.0.1:3001/mcp' },
      docs: { url: 'http://127.0.0.1:3002/mcp' },
    },
    roles: {
      research: { grants: [{ tool: 'crm.search_customers' }, { tool: 'docs.search_docs' }] },
      operations: { grants: [{ tool: 'crm.update_record' }] },
    },
  });
  const research = { agent: 'research-bot', roles: ['research'] };

  test('a research agent calls the search tools it was granted', () => {
    assertAllowed(
      decide(engine, { identity: research, upstream: 'crm', name: 'search_customers' }),
    );
    assertAllowed(decide(engine, { identity: research, upstream: 'docs', name: 'search_docs' }));
  });

  test('a research agent cannot call or see any update tool on any upstream', () => {
    const updates = [
      'update_record',
      'update_customer',
      'bulk_update',
      'update',
      'search_customers_update',
      'update.search_docs',
    ];
    for (const upstream of ['crm', 'docs']) {
      for (const name of updates) {
        for (const action of ['call_tool', 'list_tools'] as const) {
          assertDenied(decide(engine, { identity: research, action, upstream, name }), /research/);
        }
      }
    }
  });

  test('an agent with no roles is denied everything: default deny', () => {
    const nobody = { agent: 'stray-bot', roles: [] };
    assertDenied(
      decide(engine, { identity: nobody, upstream: 'crm', name: 'search_customers' }),
      /\(none\)/,
    );
  });

  test('a grant for one upstream does not reach a tool of the same name on another', () => {
    assertDenied(
      decide(engine, { identity: research, upstream: 'docs', name: 'search_customers' }),
    );
  });
});

describe('time: expiry and break-glass', () => {
  const engine = engineOf({
    roles: {
      finance_executor: { grants: [{ tool: 'payments.list_invoices', expires: '2027-03-31' }] },
    },
  });
  const listInvoices = (now: number) => decide(engine, { name: 'list_invoices', now });

  test('a grant that expires on 2027-03-31 still applies at 23:59:59 the day before', () => {
    assertAllowed(listInvoices(Date.parse('2027-03-30T23:59:59Z')));
  });

  test('refuses a call on a grant that expired at midnight, saying so', () => {
    assertDenied(listInvoices(Date.parse('2027-03-31T00:00:00Z')), /expired/);
  });

  test('a break-glass grant lets the agent call exactly its target, and marks the decision', () => {
    const decision = decide(engine, { name: 'refund', breakglass: new Set(['payments.refund']) });
    assertAllowed(decision);
    assert.deepEqual(decision.breakglass, ['payments.refund']);
    assert.ok(decision.policies.includes('warden.breakglass'));
  });

  test('refuses the same call without the break-glass grant', () => {
    assertDenied(decide(engine, { name: 'refund' }));
  });

  test('a break-glass grant for one tool does not open another', () => {
    assertDenied(
      decide(engine, { name: 'refund', breakglass: new Set(['payments.issue_payment']) }),
    );
  });

  test('a hand-written forbid still beats break-glass', () => {
    const withForbid = engineOf({
      roles: { finance_executor: {} },
      policy: {
        files: [
          writeCedar(
            'no-refunds.cedar',
            `@id("no-refunds")
@reason("refunds go through the finance team")
forbid (principal, action == Warden::Action::"call_tool", resource == Warden::Tool::"payments.refund");
`,
          ),
        ],
      },
    });
    const decision = decide(withForbid, {
      name: 'refund',
      breakglass: new Set(['payments.refund']),
    });
    assertDenied(decision, /refunds go through the finance team/);
    assert.deepEqual(decision.policies, ['no-refunds']);
    assert.equal(decision.breakglass, undefined);
  });
});

describe('context constraints', () => {
  const grantWith = (scope: unknown, extra: Record<string, unknown> = {}) =>
    engineOf({
      scopes: { only: scope },
      roles: { finance_executor: { grants: [{ tool: 'payments.list_invoices', scope: 'only' }] } },
      ...extra,
    });
  const listInvoices = (engine: PolicyEngine, ask: Ask = {}) =>
    decide(engine, { name: 'list_invoices', ...ask });

  test('refuses a caller from another tenant, or from none', () => {
    const engine = grantWith({ tenant: ['acme-eu'] });
    assertAllowed(listInvoices(engine, { identity: { tenant: 'acme-eu' } }));
    assertDenied(listInvoices(engine, { identity: { tenant: 'acme-us' } }), /tenant/);
    assertDenied(listInvoices(engine), /tenant/);
  });

  test('refuses a call when this deployment runs in another region, or names none', () => {
    const scope = { region: ['eu-west'] };
    assertAllowed(listInvoices(grantWith(scope, { region: 'eu-west' })));
    assertDenied(listInvoices(grantWith(scope, { region: 'us-east' })), /region/);
    assertDenied(listInvoices(grantWith(scope)), /region/);
  });

  test('refuses a call outside the time window (end exclusive, UTC)', () => {
    const engine = grantWith({
      time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], hours: '09:00-17:00' },
    });
    assertAllowed(listInvoices(engine, { now: WEDNESDAY_10 }));
    assertAllowed(listInvoices(engine, { now: Date.parse('2026-06-03T09:00:00Z') }));
    assertDenied(listInvoices(engine, { now: Date.parse('2026-06-03T08:59:59Z') }), /09:00/);
    assertDenied(listInvoices(engine, { now: Date.parse('2026-06-03T17:00:00Z') }), /17:00/);
    assertDenied(listInvoices(engine, { now: SATURDAY_10 }), /mon, tue, wed, thu, fri/);
  });

  test('refuses every call once an operator switches the freeze on, naming the state', () => {
    const engine = grantWith(
      { state: { payments_freeze: 'off' } },
      { policy_states: { payments_freeze: {} } },
    );
    assertAllowed(listInvoices(engine, { states: new Map([['payments_freeze', false]]) }));
    assertDenied(
      listInvoices(engine, { states: new Map([['payments_freeze', true]]) }),
      /payments_freeze/,
    );
  });
});

describe('argument constraints', () => {
  test('a conditional cap applies only when its condition holds', () => {
    const engine = engineOf({
      scopes: {
        urgent_cap: { arg: 'amount', max: 500, when: { arg: 'priority', equals: 'urgent' } },
      },
      roles: {
        finance_executor: { grants: [{ tool: 'payments.issue_payment', scope: 'urgent_cap' }] },
      },
    });
    const pay = (args: unknown) => decide(engine, { arguments: args });
    assertDenied(pay({ priority: 'urgent', amount: 600 }), /at most 500 when priority is urgent/);
    assertAllowed(pay({ priority: 'urgent', amount: 400 }));
    assertAllowed(pay({ priority: 'normal', amount: 600 }));
  });

  describe('a nested path with a pattern and a length, required and forbidden arguments', () => {
    const engine = engineOf({
      scopes: {
        transfer: [
          { arg: 'recipient.iban', pattern: '^[A-Z]{2}[0-9]{2}[A-Z0-9]+$', max_length: 34 },
          { arg: 'reference', required: true },
          { arg: 'memo', forbidden: true },
        ],
      },
      roles: { finance_executor: { grants: [{ tool: 'payments.transfer', scope: 'transfer' }] } },
    });
    const transfer = (args: unknown) => decide(engine, { name: 'transfer', arguments: args });
    const iban = 'DE89370400440532013000';

    test('allows a transfer that meets every constraint', () => {
      assertAllowed(transfer({ recipient: { iban, name: 'Acme' }, reference: 'INV-1' }));
    });

    test('refuses an IBAN that does not match the pattern', () => {
      assertDenied(
        transfer({ recipient: { iban: 'de89 3704 0044', name: 'Acme' }, reference: 'INV-1' }),
        /recipient\.iban must match the pattern/,
      );
    });

    test('refuses an IBAN longer than 34 characters even though it matches the pattern', () => {
      assertDenied(
        transfer({ recipient: { iban: `DE89${'1'.repeat(40)}` }, reference: 'INV-1' }),
        /recipient\.iban must be text of at most 34 characters/,
      );
    });

    test('refuses an IBAN sent as a number, or a recipient sent as a string', () => {
      assertDenied(transfer({ recipient: { iban: 8937040044 }, reference: 'INV-1' }), /iban/);
      assertDenied(transfer({ recipient: iban, reference: 'INV-1' }), /iban/);
    });

    test('refuses a transfer without the recipient’s IBAN', () => {
      assertDenied(transfer({ recipient: {}, reference: 'INV-1' }), /recipient\.iban is required/);
    });

    test('refuses a transfer that omits the required reference', () => {
      assertDenied(transfer({ recipient: { iban } }), /reference is required/);
    });

    test('refuses a transfer that carries the forbidden memo, even an empty one', () => {
      for (const memo of ['pay now', '', null, {}]) {
        assertDenied(
          transfer({ recipient: { iban }, reference: 'INV-1', memo }),
          /memo is not allowed/,
        );
      }
    });
  });
});

describe('hand-written Cedar rules', () => {
  const weekendFile = () =>
    writeCedar(
      'weekend.cedar',
      `// Payments are made on working days only.
@id("no-weekend-payments")
@reason("payments are made on working days only")
forbid (
  principal,
  action == Warden::Action::"call_tool",
  resource == Warden::Tool::"payments.issue_payment"
) when { context.weekday >= 5 };
`,
    );
  const valid = { vendor: 'acme', amount: 10, currency: 'EUR' };

  test('a forbid refuses a payment the grant permits, with its id and its @reason', () => {
    const engine = engineOf({ ...SEED_FINANCE, policy: { files: [weekendFile()] } });
    const decision = decide(engine, { arguments: valid, now: SATURDAY_10 });
    assertDenied(decision, /payments are made on working days only/);
    assert.deepEqual(decision.policies, ['no-weekend-payments']);
    assert.equal(
      decide(engine, { arguments: valid, now: WEDNESDAY_10 }).effect,
      'approval_required',
    );
  });

  test('forbid beats permit, even a hand-written permit for everything', () => {
    const engine = engineOf({
      roles: { finance_executor: {} },
      policy: {
        files: [
          weekendFile(),
          writeCedar('open.cedar', '@id("open") permit (principal, action, resource);\n'),
        ],
      },
    });
    assertAllowed(decide(engine, { now: WEDNESDAY_10 }));
    assertDenied(decide(engine, { now: SATURDAY_10 }), /working days/);
  });

  test('a file with a syntax error stops the load, naming file and line', () => {
    const path = writeCedar(
      'broken.cedar',
      '// first line\n\npermit (principal, action, resource) when { context.now > };\n',
    );
    assert.throws(
      () => engineOf({ policy: { files: [path] } }),
      (error: unknown) => {
        assert.ok(error instanceof PolicyLoadError, String(error));
        assert.ok(
          error.problems.some((problem) => problem.startsWith(`${path}:3:`)),
          JSON.stringify(error.problems),
        );
        return true;
      },
    );
  });

  test('a rule that does not validate against the schema stops the load, naming the file', () => {
    const path = writeCedar(
      'unknown-attribute.cedar',
      'permit (principal, action, resource);\n\n@id("typo")\nforbid (principal, action, resource) when { context.wekday >= 5 };\n',
    );
    assert.throws(
      () => engineOf({ policy: { files: [path] } }),
      (error: unknown) => {
        assert.ok(error instanceof PolicyLoadError, String(error));
        assert.ok(
          error.problems.some((p) => p.startsWith(`${path}:3:`) && p.includes('wekday')),
          JSON.stringify(error.problems),
        );
        return true;
      },
    );
  });

  test('a permit whose evaluation errors does not allow, and the error is reported', () => {
    const engine = engineOf({
      roles: { finance_executor: {} },
      policy: {
        files: [
          writeCedar(
            'overflow.cedar',
            '@id("overflows") permit (principal, action, resource) when { context.now * 100000000000000 > 0 };\n',
          ),
        ],
      },
    });
    const decision = decide(engine);
    assertDenied(decision);
    assert.ok(
      decision.errors?.some((error) => error.startsWith('overflows:')),
      JSON.stringify(decision),
    );
  });
});

describe('config refusals: grants too wide or referring to nothing', () => {
  function assertRefused(raw: Record<string, unknown>, expected: string): void {
    assert.throws(
      () => policyOf(raw),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.ok(
          error.issues.some((issue) => issue.startsWith(expected)),
          `${JSON.stringify(error.issues)} should start with ${expected}`,
        );
        return true;
      },
    );
  }

  test('refuses a wildcard tool grant to a role not marked trusted', () => {
    assertRefused(
      { roles: { research: { grants: [{ tool: 'payments.*' }] } } },
      'roles.research.grants.0: wildcard grant to role "research" refused',
    );
    assertRefused(
      { roles: { research: { grants: [{ tool: '*' }] } } },
      'roles.research.grants.0: wildcard grant to role "research" refused',
    );
  });

  test('refuses a wildcard grant that requires approval, even for a trusted role', () => {
    assertRefused(
      {
        roles: {
          admin: { trusted: true, grants: [{ tool: 'payments.*', requires_approval: true }] },
        },
      },
      'roles.admin.grants.0: a grant that requires approval must name its tool exactly',
    );
  });

  test('refuses monitor mode for a role with an approval-gated grant', () => {
    assertRefused(
      {
        roles: {
          pilot: {
            mode: 'monitor',
            grants: [{ tool: 'payments.issue_payment', requires_approval: true }],
          },
        },
      },
      'roles.pilot.grants.0: role "pilot" is in monitor mode',
    );
  });

  test('refuses a grant naming a scope that does not exist', () => {
    assertRefused(
      {
        roles: {
          finance_executor: {
            grants: [{ tool: 'payments.issue_payment', scope: 'vendor_whitelst' }],
          },
        },
      },
      'roles.finance_executor.grants.0.scope: no scope named "vendor_whitelst"',
    );
  });

  test('refuses a scope naming a list that does not exist', () => {
    assertRefused(
      { scopes: { vendor_whitelist: { arg: 'vendor', in_list: 'approved_vendor' } } },
      'scopes.vendor_whitelist.in_list: no list named "approved_vendor"',
    );
  });

  test('refuses a bare tool name when two upstreams could own it', () => {
    assertRefused(
      {
        ...SEED_FINANCE,
        upstreams: {
          payments: { url: 'http://127.0.0.1:3001/mcp' },
          crm: { url: 'http://127.0.0.1:3002/mcp' },
        },
      },
      'grants.0.tool: "issue_payment" names no upstream and 2 are configured',
    );
  });

  test('refuses a range nothing could pass (min > max)', () => {
    assertRefused(
      { scopes: { nothing: { arg: 'amount', min: 10, max: 5 } } },
      'scopes.nothing: min is greater than max',
    );
  });
});

describe('monitor mode', () => {
  const rolesWith = (mode: 'enforce' | 'monitor') => ({
    roles: { pilot: { mode, grants: [{ tool: 'payments.list_invoices' }] }, finance_executor: {} },
  });
  const pilot = { agent: 'pilot-bot', roles: ['pilot'] };

  test('lets a would-be denial through, marked with the denial it would have been', () => {
    const enforced = decide(engineOf(rolesWith('enforce')), { identity: pilot, name: 'refund' });
    const monitored = decide(engineOf(rolesWith('monitor')), { identity: pilot, name: 'refund' });
    assert.equal(enforced.effect, 'deny');
    assert.equal(monitored.effect, 'allow');
    assert.deepEqual(monitored.monitored, { effect: 'deny', reasons: enforced.reasons });
  });

  test('does not soften a denial for an agent that also holds an enforcing role', () => {
    const engine = engineOf(rolesWith('monitor'));
    assertDenied(
      decide(engine, { identity: { roles: ['pilot', 'finance_executor'] }, name: 'refund' }),
    );
  });

  test('leaves an allowed call unmarked', () => {
    assertAllowed(
      decide(engineOf(rolesWith('monitor')), { identity: pilot, name: 'list_invoices' }),
    );
  });
});

describe('tool listing', () => {
  const engine = engineOf({
    ...SEED_FINANCE,
    roles: {
      finance_executor: {
        grants: [
          { tool: 'payments.list_invoices' },
          { tool: 'payments.refund', expires: '2026-01-01' },
        ],
      },
    },
  });
  const sees = (name: string) => decide(engine, { action: 'list_tools', name }).effect === 'allow';

  test('shows a tool the role holds a grant for, whatever its argument constraints', () => {
    assert.equal(sees('list_invoices'), true);
    assert.equal(sees('issue_payment'), true);
  });

  test('hides a tool whose only grant has expired, and every tool never granted', () => {
    assert.equal(sees('refund'), false);
    assert.equal(sees('delete_vendor'), false);
  });

  test('a listing never waits for approval, even for an approval-gated tool', () => {
    assert.equal(
      decide(engine, { action: 'list_tools', name: 'issue_payment' }).approval,
      undefined,
    );
  });
});
