// The seed's finance grant against generated calls: whatever an agent (or a model steered by
// injected text) puts in the arguments (near-miss vendor names, amounts as text, NaN, five
// decimals, missing or extra keys, nested junk), no call outside the grant's constraints is ever
// allowed or held for approval. An independent oracle, written here from the config's meaning and
// not from the engine's code, says which calls are inside.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseConfig } from '../src/config/load.js';
import type { Decision } from '../src/domain/decision.js';
import { createPolicyEngine } from '../src/policy/policy-engine.js';

const NUM_RUNS = 300;
const APPROVED_VENDORS = ['acme', 'globex'];
const MAX_AMOUNT = 1000;

const engine = createPolicyEngine(
  parseConfig(
    {
      upstreams: { payments: { url: 'http://127.0.0.1:3001/mcp' } },
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { 'finance-bot': { roles: ['finance_executor'] } },
      lists: { approved_vendors: APPROVED_VENDORS },
      scopes: {
        vendor_whitelist: { arg: 'vendor', in_list: 'approved_vendors' },
        max_amount_1000_eur: [
          { arg: 'amount', max: MAX_AMOUNT },
          { arg: 'currency', in: ['EUR'] },
        ],
      },
      roles: { research: { grants: [{ tool: 'payments.list_invoices' }] } },
      grants: [
        {
          agent_role: 'finance_executor',
          tool: 'issue_payment',
          scope: ['vendor_whitelist', 'max_amount_1000_eur'],
          requires_approval: true,
        },
      ],
    },
    'test',
  ).policy,
);

function pay(args: unknown, roles: readonly string[] = ['finance_executor']): Decision {
  return engine.decide({
    action: 'call_tool',
    identity: {
      agent: 'finance-bot',
      user: undefined,
      roles,
      tenant: undefined,
      environment: 'test',
      declaredModel: undefined,
    },
    upstream: 'payments',
    name: 'issue_payment',
    arguments: args,
    now: Date.parse('2026-06-03T10:00:00Z'),
    states: new Map(),
    breakglass: new Set(),
  });
}

function ownValue(args: object, key: string): unknown {
  return Object.hasOwn(args, key) ? (args as Record<string, unknown>)[key] : undefined;
}

/**
 * A plain-decimal number with at most four fractional digits, within the range of Cedar's
 * decimal (a signed 64-bit count of ten-thousandths): the numbers a limit can be checked on exactly.
 */
function isExactDecimal(value: number): boolean {
  return /^-?\d+(\.\d{1,4})?$/.test(String(value)) && Math.abs(value) < 922_337_203_685_477;
}

/** Is this call inside the grant? Written from the config, not from the engine. */
function oracleAllows(args: unknown): boolean {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return false;
  const vendor = ownValue(args, 'vendor');
  const amount = ownValue(args, 'amount');
  const currency = ownValue(args, 'currency');
  return (
    typeof vendor === 'string' &&
    APPROVED_VENDORS.includes(vendor) &&
    typeof amount === 'number' &&
    isExactDecimal(amount) &&
    amount <= MAX_AMOUNT &&
    currency === 'EUR'
  );
}

/** At most two decimals and far from the edges of the decimal range: no float subtleties. */
function isPlainCents(amount: unknown): boolean {
  return (
    typeof amount === 'number' &&
    /^-?\d+(\.\d{1,2})?$/.test(String(amount)) &&
    Math.abs(amount) <= 1e12
  );
}

// Weighted towards the valid and the nearly valid, so that the boundary is where most runs land.
const vendor = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...APPROVED_VENDORS) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'Acme',
      'ACME',
      'acme ',
      ' acme',
      'acme\n',
      'acme\u0000',
      'acmé',
      'globex.',
      'globe',
    ),
  },
  { weight: 1, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.constantFrom(null, 0, ['acme'], { name: 'acme' }) },
);

const amount = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -200_000, max: 200_000 }).map((cents) => cents / 100) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      1000,
      1000.0001,
      999.9999,
      1000.00001,
      999.00001,
      1000.01,
      -0,
      0.1 + 0.2,
      5e-324,
      -1e21,
      Number.NaN,
      Number.NEGATIVE_INFINITY,
    ),
  },
  { weight: 2, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.oneof(fc.string(), fc.constantFrom('500', '1000', '1e3')) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, { value: 500 }, [500]) },
);

const currency = fc.oneof(
  { weight: 6, arbitrary: fc.constant('EUR') },
  { weight: 3, arbitrary: fc.constantFrom('eur', 'EUR ', ' EUR', 'Eur', 'USD', '€', 'EURO', '') },
  { weight: 1, arbitrary: fc.oneof(fc.string(), fc.constantFrom(null, ['EUR'])) },
);

/** Extra keys, which may stand in for a missing one, and nested junk. */
const junk = fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 });

/** Arguments with all three keys, or any of them missing, with junk around; or anything at all. */
const callArguments = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.record({ vendor, amount, currency }), junk)
      .map(([core, extra]) => ({ ...extra, ...core })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.record({ vendor, amount, currency }, { requiredKeys: [] }), junk)
      .map(([core, extra]) => ({ ...extra, ...core })),
  },
  { weight: 1, arbitrary: fc.anything() },
);

describe('the finance grant against generated calls', () => {
  test('never allows or holds for approval a call outside the grant’s constraints', () => {
    fc.assert(
      fc.property(callArguments, (args) => {
        const decision = pay(args);
        if (!oracleAllows(args)) {
          assert.equal(
            decision.effect,
            'deny',
            `${String(decision.effect)} for ${fc.stringify(args)}`,
          );
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('holds every call inside the constraints (amounts in cents) for approval', () => {
    const inside = fc.record({
      vendor: fc.constantFrom(...APPROVED_VENDORS),
      amount: fc.integer({ min: -100_000_000, max: MAX_AMOUNT * 100 }).map((cents) => cents / 100),
      currency: fc.constant('EUR'),
      memo: fc.option(fc.string(), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.oneof(inside, callArguments), (args) => {
        fc.pre(oracleAllows(args) && isPlainCents(ownValue(args as object, 'amount')));
        assert.equal(pay(args).effect, 'approval_required', fc.stringify(args));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('refuses issue_payment to every role set without finance_executor', () => {
    const role = fc.oneof(
      fc.constantFrom(
        'research',
        'approver',
        'finance',
        'Finance_Executor',
        'finance_executor ',
        'finance-executor',
        'admin',
      ),
      fc.string({ minLength: 1, maxLength: 20 }),
    );
    const roles = fc
      .uniqueArray(role, { maxLength: 5 })
      .filter((set) => !set.includes('finance_executor'));
    fc.assert(
      fc.property(roles, (set) => {
        const decision = pay({ vendor: 'acme', amount: 10, currency: 'EUR' }, set);
        assert.equal(decision.effect, 'deny', `${decision.effect} for roles ${fc.stringify(set)}`);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
