// The compiled-grants path against its oracle: for generated grant sets (every constraint kind,
// exact and wildcard targets, resource prefixes, expiries, roles in monitor mode) and generated
// requests (decimals Cedar cannot hold, huge numbers, -0, NaN and numbers as text, text near a
// pattern, missing, extra and look-alike keys, nested paths, wrong types, clocks at the edge of an
// expiry or a time window, missing states, break-glass, lone surrogates), the engine deciding in
// plain JavaScript gives exactly Cedar's decision (effect, determining policies, reasons,
// approval, errors) and the same explanation. A request the compiled path cannot read exactly as
// Cedar would goes to Cedar; most must not.
//
// WARDEN_DIFFERENTIAL_RUNS raises the run count (the bench runs 10,000 and more).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseConfig } from '../src/config/load.js';
import { createPolicyEngine, type PolicyRequest } from '../src/policy/policy-engine.js';
import {
  answersOf,
  buildEnginePairs,
  NOW,
  pairAndRequest,
  type DifferentialTally,
} from './support/policy-differential.js';

const RUNS = Number(process.env['WARDEN_DIFFERENTIAL_RUNS'] ?? 300);
/** Each engine pair costs Cedar's validation of its set: a pool, shared by the runs. */
const CONFIGS = Math.min(100, Math.max(16, Math.round(RUNS / 25)));

describe('the compiled-grants path against Cedar', () => {
  test('decides and explains every generated request exactly as Cedar does', () => {
    const tally: DifferentialTally = { compiled: 0, cedar: 0 };
    const seed = Date.now() % 1_000_000;
    const pairs = buildEnginePairs(CONFIGS, seed, tally);
    fc.assert(
      fc.property(pairAndRequest(pairs), ([pair, request]) => {
        const { cedar, compiled } = answersOf(pair, request);
        assert.deepEqual(
          compiled,
          cedar,
          `config (pool seed ${seed}): ${fc.stringify(pair.config)}`,
        );
      }),
      { numRuns: RUNS },
    );
    // Otherwise the comparison would mostly be Cedar against itself.
    const share = tally.compiled / (tally.compiled + tally.cedar);
    assert.ok(share > 0.5, `the compiled path answered only ${(share * 100).toFixed(0)}%`);
  });
});

describe('requests the compiled path leaves to Cedar', () => {
  const policy = parseConfig(
    {
      upstreams: { pay: { url: 'http://127.0.0.1:9/mcp' } },
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { bot: { roles: ['payer'] } },
      scopes: {
        capped: [
          { arg: 'amount', max: 1000 },
          { arg: 'vendor', in: ['acme'], text: 'raw' },
        ],
        unfrozen: { state: { freeze: 'off' } },
      },
      policy_states: { freeze: {} },
      roles: { payer: { grants: [{ tool: 'pay.issue', scope: ['capped', 'unfrozen'] }] } },
    },
    'test',
  ).policy;
  const base: PolicyRequest = {
    action: 'call_tool',
    identity: {
      agent: 'bot',
      user: undefined,
      roles: ['payer'],
      tenant: undefined,
      environment: 'test',
      declaredModel: undefined,
    },
    upstream: 'pay',
    name: 'issue',
    arguments: { amount: 10, vendor: 'acme' },
    now: NOW,
    states: new Map([['freeze', false]]),
    breakglass: new Set(),
  };
  const decideBoth = (request: PolicyRequest) => {
    const evaluators: string[] = [];
    const compiled = createPolicyEngine(policy, {
      onEvaluated: (evaluator) => evaluators.push(evaluator),
    }).decide(request);
    const cedar = createPolicyEngine(policy, { decideWith: 'cedar' }).decide(request);
    return { compiled, cedar, evaluators };
  };

  test('an ordinary call is decided without Cedar', () => {
    const { compiled, cedar, evaluators } = decideBoth(base);
    assert.deepEqual(evaluators, ['compiled']);
    assert.equal(compiled.effect, 'allow');
    assert.deepEqual(compiled, cedar);
  });

  test('a state the grant reads that is missing goes to Cedar, which reports its error', () => {
    const { compiled, cedar, evaluators } = decideBoth({ ...base, states: new Map() });
    assert.deepEqual(evaluators.slice(0, 1), ['cedar']);
    assert.equal(compiled.effect, 'deny');
    assert.ok(compiled.errors?.some((error) => error.includes('freeze')));
    assert.deepEqual(compiled, cedar);
  });

  test('raw text with a lone surrogate is refused before Cedar, which it would break', () => {
    const lone = { ...base, arguments: { amount: 10, vendor: 'acme\uD800' } };
    const { compiled, cedar, evaluators } = decideBoth(lone);
    assert.deepEqual(evaluators, ['cedar']);
    assert.equal(compiled.evaluationFailed, true);
    assert.deepEqual(compiled, cedar);
    // Cedar's WebAssembly throws on such text without unwinding its stack: some 1,500 of those
    // calls and every later decision in the process would fail.
    const engine = createPolicyEngine(policy, { decideWith: 'cedar' });
    for (let i = 0; i < 2000; i++) engine.decide(lone);
    assert.equal(engine.decide(base).effect, 'allow');
  });

  test('a clock outside the range of a date goes to Cedar', () => {
    const { compiled, cedar, evaluators } = decideBoth({ ...base, now: Number.NaN });
    assert.deepEqual(evaluators, ['cedar']);
    assert.deepEqual(compiled, cedar);
  });

  test('a policy with a hand-written rule is decided by Cedar', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-differential-'));
    try {
      const file = join(dir, 'rules.cedar');
      writeFileSync(
        file,
        '@id("no-globex")\nforbid (principal, action, resource) when { context has arguments && context.arguments has vendor && context.arguments.vendor == "globex" };\n',
      );
      const evaluators: string[] = [];
      const engine = createPolicyEngine(
        { ...policy, files: [file] },
        { onEvaluated: (evaluator) => evaluators.push(evaluator) },
      );
      assert.equal(engine.decide(base).effect, 'allow');
      assert.equal(
        engine.decide({ ...base, arguments: { amount: 1, vendor: 'globex' } }).effect,
        'deny',
      );
      assert.deepEqual([...new Set(evaluators)], ['cedar']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an argument path through __proto__', () => {
  const policy = parseConfig(
    {
      upstreams: { pay: { url: 'http://127.0.0.1:9/mcp' } },
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { bot: { roles: ['payer'] } },
      scopes: { flagged: { arg: '__proto__.approved', in: [true] } },
      roles: { payer: { grants: [{ tool: 'pay.issue', scope: ['flagged'] }] } },
    },
    'test',
  ).policy;

  test('is judged as the argument the tool receives, and writes no prototype', () => {
    for (const decideWith of ['compiled', 'cedar'] as const) {
      const engine = createPolicyEngine(policy, { decideWith });
      const decision = engine.decide({
        action: 'call_tool',
        identity: {
          agent: 'bot',
          user: undefined,
          roles: ['payer'],
          tenant: undefined,
          environment: 'test',
          declaredModel: undefined,
        },
        upstream: 'pay',
        name: 'issue',
        // As JSON.parse hands it over: an own key named __proto__.
        arguments: JSON.parse('{"__proto__": {"approved": true}}'),
        now: NOW,
        states: new Map(),
        breakglass: new Set(),
      });
      assert.equal(decision.effect, 'allow', decideWith);
      assert.equal(({} as Record<string, unknown>)['approved'], undefined, decideWith);
    }
  });
});
