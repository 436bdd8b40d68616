/**
 * The compiled-grants path against Cedar, on generated policies and requests: the same engine
 * built twice from one config, once deciding with Cedar (the oracle) and once with the compiled
 * path, must give the same decision (effect, determining policies, reasons, approval, errors) and
 * the same explanation for every request. Shared by test/policy-compiled-differential.test.ts
 * (a few hundred runs) and bench/policy-bench.ts (ten thousand and more).
 *
 * Engines cost milliseconds to build (Cedar validates the whole set), so configs are generated
 * into a pool first and every run pairs one of them with a generated request.
 */
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import type { Constraint, GrantConfig, PolicyConfig } from '../../src/config/policy-config.js';
import { isRecord } from '../../src/domain/json-object.js';
import type { Decision } from '../../src/domain/decision.js';
import {
  createPolicyEngine,
  type Evaluator,
  type Explanation,
  type PolicyEngine,
  type PolicyRequest,
} from '../../src/policy/policy-engine.js';

/** Wednesday 3 June 2026, 10:00 UTC. */
export const NOW = Date.parse('2026-06-03T10:00:00Z');

const UPSTREAMS = ['pay', 'docs', 'ops'] as const;
const ROLES = ['r0', 'r1', 'r2', 'r3'] as const;
const STATES = ['freeze', 'night'] as const;
const EXPIRIES = [
  '2026-06-03T10:00:00Z',
  '2026-06-03T10:00:00.500Z',
  '2026-06-03T10:00:01Z',
  '2026-06-01',
  '2027-01-01',
] as const;

// --- configs -------------------------------------------------------------------------------

/** A number a bound or list may hold: Cedar's decimal holds each exactly. */
const bound = fc.constantFrom(0, 1000, 999.9999, -5.5, 2.5, 0.0001, 100_000_000_000_000, 500);

const condition = fc.option(
  fc.constantFrom(
    { arg: 'currency', equals: 'EUR' },
    { arg: 'vendor', in: ['acme', 'initech'] },
    { arg: 'amount', equals: 500 },
    { arg: 'amount', in: [500, 2.5] },
    { arg: 'urgent', equals: true },
  ),
  { nil: undefined },
);

/** One argument constraint; each path is compared as one type throughout. */
const argumentEntry: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.oneof(
      // Limits weigh more: the boundary of a decimal is where an evaluator slips.
      fc.record({ arg: fc.constant('amount'), min: bound }),
      fc.record({ arg: fc.constant('amount'), min: bound }),
      fc.record({ arg: fc.constant('amount'), max: bound }),
      fc.record({ arg: fc.constant('amount'), max: bound }),
      fc.record({ arg: fc.constant('payee.limit'), max: bound }),
      fc.record({
        arg: fc.constant('payee.limit'),
        min: bound,
        max: fc.constant(100_000_000_000_000),
      }),
      fc.record({ arg: fc.constant('vendor'), in_list: fc.constant('vendors') }),
      fc.record({
        arg: fc.constant('vendor'),
        in: fc.constantFrom(['acme'], ['acme', 'globex', 'Acme'], ['']),
      }),
      fc.record({ arg: fc.constant('vendor'), pattern: fc.constantFrom('^a', '^[a-z]+$') }),
      fc.record({ arg: fc.constant('currency'), in: fc.constantFrom(['EUR'], ['EUR', 'USD']) }),
      fc.record({ arg: fc.constant('urgent'), in: fc.constantFrom([true], [false]) }),
      fc.record({ arg: fc.constant('code'), in_list: fc.constant('codes') }),
      fc.record({ arg: fc.constant('code'), in: fc.constantFrom([1, 2.5], [0]) }),
      fc.record({
        arg: fc.constant('payee.iban'),
        pattern: fc.constant('^[A-Z]{2}[0-9]{2,8}$'),
        max_length: fc.constantFrom(4, 10),
      }),
      fc.record({ arg: fc.constant('memo'), max_length: fc.constantFrom(0, 5, 40) }),
      fc.record({ arg: fc.constantFrom('memo', 'payee'), forbidden: fc.constant(true) }),
      fc.record({ arg: fc.constantFrom('memo', 'reference'), required: fc.constant(true) }),
      fc.record({ arg: fc.constantFrom('vendor', 'memo'), text: fc.constant('raw') }),
    ),
    condition,
    fc.boolean(),
  )
  .map(([entry, when, optional]) => ({
    ...entry,
    ...(when !== undefined && !('text' in entry) && !('forbidden' in entry) && { when }),
    ...(optional && !('required' in entry) && !('forbidden' in entry) && { required: false }),
  }));

const contextEntry: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ tenant: fc.subarray(['t1', 't2', 'T1'], { minLength: 1 }) }),
  fc.record({ region: fc.subarray(['eu-west', 'us-east'], { minLength: 1 }) }),
  fc
    .record(
      {
        days: fc.oneof(
          fc.subarray(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], { minLength: 1 }),
          // Seven entries, not every day: compiled as no day check at all.
          fc.constant(['wed', 'wed', 'wed', 'wed', 'wed', 'wed', 'wed']),
        ),
        hours: fc.constantFrom('07:00-19:00', '10:00-10:01', '00:00-24:00', '09:59-10:00'),
      },
      { requiredKeys: [] },
    )
    .map((time) => ({ time })),
  fc
    .tuple(fc.constantFrom(...STATES), fc.constantFrom('on', 'off'))
    .map(([state, value]) => ({ state: { [state]: value } })),
);

const scope = (entry: fc.Arbitrary<Record<string, unknown>>) =>
  fc.array(entry, { minLength: 1, maxLength: 3 });

interface GeneratedGrant {
  readonly role: (typeof ROLES)[number];
  readonly target: Record<string, string>;
  readonly argumentScopes: readonly number[];
  readonly contextScopes: readonly number[];
  readonly requiresApproval: boolean;
  readonly approvals: 1 | 2;
  readonly expires: string | undefined;
  readonly id: boolean;
}

const target = fc.oneof(
  fc.constantFrom(
    { tool: 'pay.issue' },
    { tool: 'pay.refund' },
    { tool: 'docs.read.v2' },
    { tool: 'ops.x' },
    { tool: 'read.v2', upstream: 'docs' },
    { tool: 'pay.*' },
    { tool: '*' },
  ),
  fc.constantFrom(
    { resource: 'docs:file:///reports/q1.pdf' },
    { resource: 'docs:file:///reports/*' },
    { resource: 'docs:notes:*' },
    { resource: 'docs:*' },
    { resource: '*' },
    { resource: 'ops:https://Example.com:443/a%7e*' },
  ),
  fc.constantFrom({ prompt: 'docs.summary' }, { prompt: 'docs.*' }, { prompt: 'pay.summary' }),
);

const grant: fc.Arbitrary<GeneratedGrant> = fc.record({
  role: fc.constantFrom(...ROLES),
  target,
  argumentScopes: fc.uniqueArray(fc.nat(3), { maxLength: 2 }),
  contextScopes: fc.uniqueArray(fc.nat(3), { maxLength: 2 }),
  requiresApproval: fc.boolean(),
  approvals: fc.constantFrom(1 as const, 2 as const),
  expires: fc.option(fc.constantFrom(...EXPIRIES), { nil: undefined }),
  id: fc.boolean(),
});

/** A raw warden.yaml object: lists, four argument and four context scopes, grants. */
const configArbitrary: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    argumentScopes: fc.array(scope(argumentEntry), { minLength: 4, maxLength: 4 }),
    contextScopes: fc.array(scope(contextEntry), { minLength: 4, maxLength: 4 }),
    grants: fc.array(grant, { minLength: 1, maxLength: 8 }),
    region: fc.option(fc.constantFrom('eu-west', 'us-east'), { nil: undefined }),
    monitored: fc.subarray([...ROLES], { maxLength: 1 }),
    freezeDefault: fc.constantFrom('on', 'off'),
  })
  .map(({ argumentScopes, contextScopes, grants, region, monitored, freezeDefault }) => {
    const roles: Record<string, { mode: string; trusted: boolean; grants: unknown[] }> = {};
    for (const role of ROLES) {
      roles[role] = {
        mode: monitored.includes(role) ? 'monitor' : 'enforce',
        trusted: role !== 'r0',
        grants: [],
      };
    }
    grants.forEach((generated, index) => {
      const isTool = 'tool' in generated.target;
      const wildcard = Object.values(generated.target).some((text) => text.endsWith('*'));
      // Only trusted roles hold wildcards beyond one upstream's resources.
      const trustOnly = wildcard && (generated.target['resource'] ?? '*') === '*';
      const role = roles[trustOnly && generated.role === 'r0' ? 'r1' : generated.role];
      if (role === undefined) return;
      // A gated grant names its target exactly, and never belongs to a role in monitor mode.
      const gated = generated.requiresApproval && !wildcard && role.mode === 'enforce';
      role.grants.push({
        ...generated.target,
        scope: [
          ...(isTool ? generated.argumentScopes.map((n) => `arg${n}`) : []),
          ...generated.contextScopes.map((n) => `ctx${n}`),
        ],
        requires_approval: gated,
        ...(gated && { approvals_required: generated.approvals }),
        ...(generated.expires !== undefined && { expires: generated.expires }),
        ...(generated.id && { id: `g${index}` }),
      });
    });
    return {
      upstreams: Object.fromEntries(
        UPSTREAMS.map((name) => [name, { url: 'http://127.0.0.1:9/mcp' }]),
      ),
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { bot: { roles: ['r0'] } },
      ...(region !== undefined && { region }),
      lists: { vendors: ['acme', 'globex'], codes: [1, 2.5, 1000] },
      scopes: {
        ...Object.fromEntries(argumentScopes.map((entries, n) => [`arg${n}`, entries])),
        ...Object.fromEntries(contextScopes.map((entries, n) => [`ctx${n}`, entries])),
      },
      policy_states: { freeze: { default: freezeDefault }, night: {} },
      roles,
    };
  });

// --- requests ------------------------------------------------------------------------------

/** The bounds and listed numbers configs use: arguments cluster at and around them. */
const EDGES = [0, 1, 2.5, 500, 1000, 999.9999, -5.5, 0.0001, 100_000_000_000_000];

const nearEdge = fc
  .tuple(
    fc.constantFrom(...EDGES),
    fc.constantFrom(0, 0, 0.0001, -0.0001, 0.00001, -0.00001, 1e-9),
    fc.boolean(),
  )
  .map(([edge, delta, negate]) => (negate ? -edge : edge) + delta);

const numberish = fc.oneof(
  { weight: 6, arbitrary: nearEdge },
  { weight: 3, arbitrary: fc.integer({ min: -2000, max: 2000 }) },
  { weight: 3, arbitrary: fc.integer({ min: -200_000, max: 200_000 }).map((n) => n / 100) },
  {
    weight: 2,
    arbitrary: fc.integer({ min: -20_000_000, max: 20_000_000 }).map((n) => n / 10_000),
  },
  { weight: 2, arbitrary: fc.integer({ min: -2_000_000, max: 2_000_000 }).map((n) => n / 100_000) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      0,
      -0,
      500,
      2.5,
      1,
      1000,
      1000.0001,
      999.9999,
      1000.00001,
      0.0001,
      0.00001,
      0.1 + 0.2,
      5e-324,
      1e-7,
      1e21,
      -1e21,
      100_000_000_000_000,
      100_000_000_000_000.02,
      922_337_203_685_476,
      922_337_203_685_476.9,
      922_337_203_685_477,
      -922_337_203_685_477,
      2 ** 53 + 2,
      Number.MAX_VALUE,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ),
  },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom('500', '1e3', 'NaN', '0x10', ' 2.5', 'Infinity') },
);

const stringish = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'acme',
      'globex',
      'initech',
      'Acme',
      'ACME',
      'acme ',
      '',
      'EUR',
      'USD',
      'eur',
      'GB12',
      'gb12',
      'GB1234567',
      'GB',
      'abcde',
      'abcdef',
      'a\uD800',
      'a\u200B',
      'ａｃｍｅ',
      'true',
      '500',
      'NaN',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);

const wrongType = fc.constantFrom(null, true, false, [], ['acme'], { value: 1 }, 0);

const value = (preferred: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 5, arbitrary: preferred }, { weight: 1, arbitrary: wrongType });

const callArguments: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .tuple(
        fc.record(
          {
            amount: value(numberish),
            code: value(numberish),
            vendor: value(stringish),
            currency: value(fc.constantFrom('EUR', 'USD', 'eur', 'EUR ')),
            urgent: value(fc.boolean()),
            memo: value(stringish),
            reference: value(stringish),
            payee: fc.oneof(
              fc.record({ iban: value(stringish), limit: value(numberish) }, { requiredKeys: [] }),
              wrongType,
              stringish,
            ),
          },
          { requiredKeys: [] },
        ),
        fc.dictionary(
          fc.constantFrom('Amount', 'VENDOR', 'extra', 'x'),
          fc.jsonValue({ maxDepth: 1 }),
          {
            maxKeys: 2,
          },
        ),
        fc.boolean(),
      )
      .map(([core, extra, withExtra]) => (withExtra ? { ...extra, ...core } : core)),
  },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);

const resourceName = fc.constantFrom(
  'file:///reports/q1.pdf',
  'FILE:///reports/q1.pdf',
  'file:///reports/',
  'file:///reports',
  'file:///reportsX/a',
  'file:///reports/%7e/a',
  'file:///reports/../etc/passwd',
  'notes:today',
  'notes',
  'https://example.com/a~b',
  'https://example.com:443/a~',
  'https://example.com/b',
  'https://example.com/a%7E',
);

const toolName = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom('issue', 'refund', 'read.v2', 'x', 'summary', 'unknown'),
  },
  { weight: 1, arbitrary: fc.constantFrom('issu\uD800', 'x\u0000', 'ISSUE') },
);

const roles = fc.oneof(
  { weight: 8, arbitrary: fc.subarray([...ROLES, 'approver', 'ghost']) },
  { weight: 1, arbitrary: fc.constantFrom(['r1', 'r1'], ['r2', 'r\uD800'], ['R1']) },
);

const states = fc
  .tuple(
    fc.record({ freeze: fc.boolean(), night: fc.boolean() }, { requiredKeys: [] }),
    // Mostly every state, as the gateway hands them over; sometimes one missing, or an odd name.
    fc.oneof(
      { weight: 9, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    fc.constantFrom(
      ['__extn', true] as const,
      ['other', false] as const,
      ['__proto__', true] as const,
    ),
  )
  .map(([known, complete, extra]) => {
    const map = new Map<string, boolean>();
    for (const name of STATES) {
      const set = known[name];
      if (set !== undefined) map.set(name, set);
      else if (complete) map.set(name, false);
    }
    if (!complete) map.set(extra[0], extra[1]);
    return map;
  });

const now = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.integer({ min: -3 * 86_400_000, max: 3 * 86_400_000 }).map((d) => NOW + d),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...EXPIRIES),
        fc.constantFrom(-1001, -1000, -501, -1, 0, 1, 499, 999, 1000),
      )
      .map(([at, offset]) => Date.parse(at) + offset),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom(0, 419, 420, 599, 600, 601, 1139, 1140, 1439),
      )
      .map(([day, minute]) => NOW + (day - 2) * 86_400_000 + (minute - 600) * 60_000),
  },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, 8.64e15, 8.64e15 + 1, -1, 0) },
);

/** A request against the generated configs' names (and some they never use). */
const requestArbitrary: fc.Arbitrary<PolicyRequest> = fc
  .record({
    action: fc.constantFrom('call_tool', 'list_tools', 'read_resource', 'get_prompt'),
    upstream: fc.constantFrom(...UPSTREAMS, 'nope'),
    tool: toolName,
    resource: resourceName,
    roles,
    tenant: fc.constantFrom(undefined, 't1', 't2', '', 'T1'),
    user: fc.constantFrom(undefined, 'ada@example.com'),
    model: fc.constantFrom(undefined, 'model-x'),
    agent: fc.oneof(
      { weight: 19, arbitrary: fc.constant('bot') },
      { weight: 1, arbitrary: fc.constant('b\uDC00t') },
    ),
    arguments: callArguments,
    now,
    states,
    breakglass: fc.subarray(['pay.issue', 'pay.refund', 'docs.read.v2', 'ops.x', 'pay.unknown']),
    anyBreakglass: fc.boolean(),
  })
  .map((r) => ({
    action: r.action,
    identity: {
      agent: r.agent,
      user: r.user,
      roles: r.roles,
      tenant: r.tenant,
      environment: 'test',
      declaredModel: r.model,
    },
    upstream: r.upstream,
    name: r.action === 'read_resource' ? r.resource : r.tool,
    ...(r.action === 'call_tool' && { arguments: r.arguments }),
    now: r.now,
    states: r.states,
    breakglass: new Set(r.anyBreakglass ? r.breakglass : []),
  }));

const DELTAS = [0, 0, 0, 0.0001, -0.0001, 0.00001, -0.00001, 1e-9, -1e-9, 1, -1];

/** Values at and around what one constraint compares against. */
function valuesNear(constraint: Constraint): fc.Arbitrary<unknown> {
  switch (constraint.kind) {
    case 'min':
    case 'max':
      return fc.constantFrom(...DELTAS).map((delta) => constraint.bound + delta);
    case 'one_of': {
      const listed = fc.constantFrom(...constraint.values);
      return fc.oneof(
        listed,
        fc
          .tuple(listed, fc.constantFrom(...DELTAS))
          .map(([listedValue, delta]) =>
            typeof listedValue === 'number'
              ? listedValue + delta
              : typeof listedValue === 'string'
                ? [listedValue.toUpperCase(), `${listedValue} `, listedValue.slice(1)][
                    Math.abs(Math.round(delta)) % 3
                  ]
                : !listedValue,
          ),
      );
    }
    case 'max_length':
      return fc.string({
        minLength: Math.max(0, constraint.bound - 1),
        maxLength: constraint.bound + 1,
      });
    case 'required':
    case 'forbidden':
      return fc.constantFrom(null, 0, '', false, 'x', {});
    default:
      return stringish;
  }
}

/**
 * A call's arguments aimed at a grant's constraints: each constrained path (and each condition's
 * path) mostly holds a value at or near what it is compared against, over generated arguments.
 */
function aimedArguments(grant: GrantConfig): fc.Arbitrary<unknown> {
  const near = new Map<string, fc.Arbitrary<unknown>[]>();
  const add = (path: string, values: fc.Arbitrary<unknown>) =>
    near.set(path, [...(near.get(path) ?? []), values]);
  for (const constraint of grant.constraints) {
    if ('path' in constraint) add(constraint.path, valuesNear(constraint));
    if (constraint.condition)
      add(constraint.condition.path, fc.constantFrom(...constraint.condition.values));
  }
  const paths = [...near];
  return fc
    .tuple(
      callArguments,
      fc.tuple(
        ...paths.map(([, values]) => fc.option(fc.oneof(...values), { nil: undefined, freq: 6 })),
      ),
    )
    .map(([args, values]) => {
      const aimed: Record<string, unknown> = isRecord(args) ? structuredClone(args) : {};
      paths.forEach(([path], index) => {
        const value = values[index];
        if (value !== undefined) setPath(aimed, path, value);
      });
      return aimed;
    });
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    node = isRecord(next) ? next : (node[part] = {});
  }
  node[parts[parts.length - 1] ?? ''] = value;
}

const resourceSuffix = fc.constantFrom('', 'q1.pdf', 'a/b', '%7e', '..', 'x?y=1', 'today');

/**
 * A request aimed at one of the config's grants: its role among others, its target (a name its
 * wildcard covers, a URI under its prefix), and otherwise as generated above.
 */
function aimedRequest(policy: PolicyConfig): fc.Arbitrary<PolicyRequest> {
  return fc
    .record({
      grant: fc.constantFrom(...policy.grants),
      roles: fc.subarray([...ROLES, 'ghost']),
      listing: fc.oneof(
        { weight: 4, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
      suffix: resourceSuffix,
      request: requestArbitrary,
    })
    .chain((aimed) => aimedArguments(aimed.grant).map((args) => ({ ...aimed, arguments: args })))
    .map(({ grant, roles, listing, suffix, arguments: args, request }): PolicyRequest => {
      const { target } = grant;
      const upstream = target.upstream === '*' ? request.upstream : target.upstream;
      const identity = { ...request.identity, roles: [grant.role, ...roles] };
      const base = { ...request, identity, upstream, arguments: undefined };
      if (target.kind === 'resource') {
        const name = target.upstream === '*' ? request.name : `${target.uri}${suffix}`;
        return { ...base, action: 'read_resource', name };
      }
      const name = target.name === '*' ? request.name : target.name;
      if (target.kind === 'prompt') return { ...base, action: 'get_prompt', name };
      return listing
        ? { ...base, action: 'list_tools', name }
        : { ...base, action: 'call_tool', name, arguments: args };
    });
}

// --- comparing -----------------------------------------------------------------------------

/** One config's engine twice: Cedar deciding everything, and the compiled path. */
export interface EnginePair {
  readonly config: Record<string, unknown>;
  readonly cedar: PolicyEngine;
  readonly compiled: PolicyEngine;
  /** Requests for it: mostly aimed at its grants, some at anything. */
  readonly requests: fc.Arbitrary<PolicyRequest>;
}

export interface DifferentialTally {
  /** Decisions (and explanations) the compiled engine answered without Cedar. */
  compiled: number;
  /** ... and those it sent to Cedar. */
  cedar: number;
}

/**
 * `count` engine pairs from configs generated with `seed`; configs the loader refuses (or that
 * do not compile) are replaced by others. Each pair's compiled engine counts into `tally`.
 */
export function buildEnginePairs(
  count: number,
  seed: number,
  tally: DifferentialTally,
): EnginePair[] {
  const pairs: EnginePair[] = [];
  const onEvaluated = (evaluator: Evaluator) => {
    tally[evaluator] += 1;
  };
  for (let round = 0; pairs.length < count && round < 10; round++) {
    for (const config of fc.sample(configArbitrary, { numRuns: count * 2, seed: seed + round })) {
      if (pairs.length >= count) break;
      let policy;
      try {
        policy = parseConfig(config, 'differential').policy;
      } catch {
        continue;
      }
      pairs.push({
        config,
        cedar: createPolicyEngine(policy, { decideWith: 'cedar' }),
        compiled: createPolicyEngine(policy, { decideWith: 'compiled', onEvaluated }),
        requests: fc.oneof(
          { weight: 3, arbitrary: aimedRequest(policy) },
          { weight: 1, arbitrary: requestArbitrary },
        ),
      });
    }
  }
  if (pairs.length < count) throw new Error(`only ${pairs.length} of ${count} configs loaded`);
  return pairs;
}

/** What both engines answered for one request, in a form that ignores the order of sets. */
export interface Answers {
  readonly cedar: unknown;
  readonly compiled: unknown;
}

/** A run: one of the pairs, and a request for it. */
export function pairAndRequest(
  pairs: readonly EnginePair[],
): fc.Arbitrary<[EnginePair, PolicyRequest]> {
  return fc.nat(pairs.length - 1).chain((index) => {
    const pair = pairs[index] as EnginePair;
    return fc.tuple(fc.constant(pair), pair.requests);
  });
}

/** Both engines' decision and explanation for the request. */
export function answersOf(pair: EnginePair, request: PolicyRequest): Answers {
  const answer = (engine: PolicyEngine) => ({
    decision: comparable(engine.decide(request)),
    explanation: comparableExplanation(engine.explain(request)),
  });
  return { cedar: answer(pair.cedar), compiled: answer(pair.compiled) };
}

const sorted = (items: readonly string[]) => [...items].sort();

/**
 * Cedar hands back its determining policies and its errors as sets (in an order that changes
 * from call to call); the reasons and approval grants derived from them follow that order.
 */
function comparable(decision: Decision): Decision {
  return {
    ...decision,
    policies: sorted(decision.policies),
    reasons: sorted(decision.reasons),
    ...(decision.errors && { errors: sorted(decision.errors) }),
    ...(decision.approval && {
      approval: {
        ...decision.approval,
        grants: sorted(decision.approval.grants),
        scopes: sorted(decision.approval.scopes),
      },
    }),
    ...(decision.monitored && {
      monitored: { ...decision.monitored, reasons: sorted(decision.monitored.reasons) },
    }),
  };
}

function comparableExplanation(explanation: Explanation): Explanation {
  return { decision: comparable(explanation.decision), grants: explanation.grants };
}
