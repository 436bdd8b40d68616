/**
 * What one policy decision costs, measured in-process (no HTTP, no store), with 10 grants and
 * with 1,000 grants, against the goal of p99 ≤ 20 µs with 1,000 grants; and whether the
 * compiled-grants path decides as Cedar does:
 *
 *   node --import tsx bench/policy-bench.ts [--samples 20000] [--warmup 5000]
 *     [--differential-runs 10000] [--markdown]
 *
 * --markdown prints the tables as Markdown (bench/run.ts runs it so at the end of `npm run bench`).
 *
 * Grants are generated: roles of 20 grants each, spread over 10 upstreams of 20 tools (so with
 * 1,000 grants every tool is granted to five roles), each grant carrying two scopes from a pool
 * (vendor list and amount cap, tenant and working hours, reference pattern and freeze switch);
 * every fifth requires approval. One agent holding three roles calls a fixed mix of targets, in
 * turn: eight granted calls within their constraints, two granted calls that break one (a denial
 * with its explanation, which costs a second evaluation) and two tools never granted. Every
 * target is called during the warm-up, so policy-set slices are prepared before timing starts.
 *
 * Each engine row is measured twice: on the Cedar path (every decision a call into Cedar's
 * WebAssembly, `decideWith: 'cedar'`) and on the compiled path (grant-only slices decided in
 * plain JavaScript, the default), so the rows show what the lever is worth. Two floors, measured
 * in the same run, show how much of a Cedar decision is the bridge into the WebAssembly: one
 * statefulIsAuthorized call with an empty policy set and an empty request, and one with an empty
 * policy set and the request the engine sends for a scoped call (its context attributes,
 * arguments and roles). CPU µs per run is reported beside wall time: on a machine other work
 * shares, wall-time percentiles also count the time the core was taken away. To tell that apart
 * from the decision's own tail, the compiled decisions are timed once more in turn with a loop
 * of arithmetic as long: the arithmetic's p99 is what the machine alone added to work that long.
 *
 * Last, the differential check of test/policy-compiled-differential.test.ts runs
 * --differential-runs times (fast-check runs, each a generated request against one of a pool of
 * generated configs): the compiled path must give Cedar's decision and explanation every time.
 * A disagreement is printed with its config and request, and the bench exits non-zero.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { StatefulAuthorizationCall } from '@cedar-policy/cedar-wasm/nodejs';
import { parseConfig } from '../src/config/load.js';
import type { Effect } from '../src/domain/decision.js';
import fc from 'fast-check';
import {
  createPolicyEngine,
  type Evaluator,
  type PolicyRequest,
} from '../src/policy/policy-engine.js';
import {
  answersOf,
  buildEnginePairs,
  pairAndRequest,
  type DifferentialTally,
} from '../test/support/policy-differential.js';

const GOAL_P99_US = 20;
const GOAL_GRANTS = 1000;
const GRANTS_PER_ROLE = 20;
const UPSTREAMS = 10;
const TOOLS_PER_UPSTREAM = 20;
const APPROVAL_EVERY = 5;
/** Generated configs the differential runs share (each costs Cedar's validation of its set). */
const DIFFERENTIAL_CONFIGS = 50;
/** Wednesday 10:00 UTC: inside the working hours the generated scopes ask for. */
const NOW = Date.parse('2026-06-03T10:00:00Z');

const SCOPE_PAIRS = [
  ['vendor_whitelist', 'max_amount_1000_eur'],
  ['eu_tenant', 'working_hours'],
  ['reference_format', 'no_payments_freeze'],
] as const;

/** Meets every generated scope. */
const VALID_ARGUMENTS = { vendor: 'acme', amount: 250.5, currency: 'EUR', reference: 'INV-12345' };

interface Settings {
  readonly samples: number;
  readonly warmup: number;
  readonly differentialRuns: number;
  readonly markdown: boolean;
}

interface Stats {
  readonly samples: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** Runs per second of wall time over the whole loop. */
  readonly perSecond: number | undefined;
  /** CPU µs per run: steadier than wall time when other work shares the cores. */
  readonly cpuUs: number | undefined;
}

interface Row {
  readonly label: string;
  readonly policies: number | undefined;
  readonly all: Stats;
  /** Allowed or held for approval: one Cedar evaluation. */
  readonly granted: Stats | undefined;
  /** Denied: a second evaluation explains which check failed. */
  readonly denied: Stats | undefined;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      samples: { type: 'string', default: '20000' },
      warmup: { type: 'string', default: '5000' },
      'differential-runs': { type: 'string', default: '10000' },
      markdown: { type: 'boolean', default: false },
    },
  });
  const samples = Number(values.samples);
  const warmup = Number(values.warmup);
  const differentialRuns = Number(values['differential-runs']);
  if (!Number.isInteger(samples) || samples < 100 || !Number.isInteger(warmup) || warmup < 0) {
    throw new Error('--samples must be an integer of at least 100, --warmup one of at least 0');
  }
  if (!Number.isInteger(differentialRuns) || differentialRuns < 0) {
    throw new Error('--differential-runs must be an integer of at least 0');
  }
  return { samples, warmup, differentialRuns, markdown: values.markdown };
}

function toolOf(index: number): { upstream: string; name: string } {
  const tool = index % (UPSTREAMS * TOOLS_PER_UPSTREAM);
  return { upstream: `up${tool % UPSTREAMS}`, name: `tool_${Math.floor(tool / UPSTREAMS)}` };
}

/** A config with `count` generated grants; grant i belongs to role_{i / 20} and names tool i. */
function generatePolicyConfig(count: number): Record<string, unknown> {
  const roles: Record<string, { grants: Record<string, unknown>[] }> = {};
  for (let i = 0; i < count; i++) {
    const role = `role_${Math.floor(i / GRANTS_PER_ROLE)}`;
    const { upstream, name } = toolOf(i);
    (roles[role] ??= { grants: [] }).grants.push({
      tool: `${upstream}.${name}`,
      scope: [...(SCOPE_PAIRS[i % SCOPE_PAIRS.length] ?? [])],
      requires_approval: i % APPROVAL_EVERY === APPROVAL_EVERY - 1,
    });
  }
  return {
    upstreams: Object.fromEntries(
      Array.from({ length: UPSTREAMS }, (_, u) => [`up${u}`, { url: 'http://127.0.0.1:9/mcp' }]),
    ),
    auth: { resource: 'https://warden.bench/mcp', issuers: [{ builtin: {} }] },
    agents: { 'bench-agent': { roles: ['role_0'] } },
    lists: { approved_vendors: ['acme', 'globex', 'initech'] },
    scopes: {
      vendor_whitelist: { arg: 'vendor', in_list: 'approved_vendors' },
      max_amount_1000_eur: [
        { arg: 'amount', max: 1000 },
        { arg: 'currency', in: ['EUR'] },
      ],
      eu_tenant: { tenant: ['acme-eu', 'globex-eu'] },
      working_hours: { time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], hours: '07:00-19:00' } },
      reference_format: { arg: 'reference', pattern: '^INV-[0-9]{5}$', max_length: 16 },
      no_payments_freeze: { state: { payments_freeze: 'off' } },
    },
    policy_states: { payments_freeze: {} },
    roles,
  };
}

/** The agent's calls, in turn: 8 within their grants, 2 breaking one constraint, 2 never granted. */
function callMix(grantCount: number): PolicyRequest[] {
  const roles = ['role_0', 'role_1', 'role_2'];
  const base = {
    action: 'call_tool' as const,
    identity: {
      agent: 'bench-agent',
      user: 'ada@example.com',
      roles,
      tenant: 'acme-eu',
      environment: 'bench',
      declaredModel: undefined,
    },
    now: NOW,
    states: new Map([['payments_freeze', false]]),
    breakglass: new Set<string>(),
  };
  const granted = Array.from({ length: Math.min(grantCount, 8) }, (_, i) => i);
  const overCap = [0, 3].filter((i) => i < grantCount);
  return [
    ...granted.map((i) => ({ ...base, ...toolOf(i), arguments: VALID_ARGUMENTS })),
    // Grants 0 and 3 carry the amount cap (scope pair 0).
    ...overCap.map((i) => ({
      ...base,
      ...toolOf(i),
      arguments: { ...VALID_ARGUMENTS, amount: 5000 },
    })),
    { ...base, upstream: 'up0', name: 'never_granted', arguments: VALID_ARGUMENTS },
    { ...base, upstream: 'up7', name: 'drop_tables', arguments: {} },
  ];
}

/** A row, and for the compiled path the same decisions timed in turn with arithmetic as long. */
interface EngineMeasurement extends Row {
  readonly alternating: AlternatingStats | undefined;
}

interface AlternatingStats {
  readonly decisions: Stats;
  readonly arithmetic: Stats;
}

function measureEngine(
  grantCount: number,
  decideWith: Evaluator,
  settings: Settings,
): EngineMeasurement {
  const label = `engine, ${grantCount.toLocaleString('en-US')} grants, ${decideWith} path`;
  const config = parseConfig(generatePolicyConfig(grantCount), 'bench');
  const evaluators = new Set<Evaluator>();
  const engine = createPolicyEngine(config.policy, {
    decideWith,
    onEvaluated: (evaluator) => evaluators.add(evaluator),
  });
  const mix = callMix(grantCount);
  const requestAt = (i: number) => mix[i % mix.length] as PolicyRequest;
  const effects = mix.map((request) => engine.decide(request).effect);
  const expectedGranted = Math.min(grantCount, 8);
  // Otherwise the rows would time some other mix, or another path, than the one described.
  if (effects.filter((effect) => effect !== 'deny').length !== expectedGranted) {
    throw new Error(`${label}: the call mix decided ${effects.join(', ')}`);
  }
  if (evaluators.size !== 1 || !evaluators.has(decideWith)) {
    throw new Error(`${label}: the mix was answered by ${[...evaluators].join(' and ')}`);
  }
  for (let i = 0; i < settings.warmup; i++) engine.decide(requestAt(i));
  const loop = sample(settings.samples, (i) => {
    engine.decide(requestAt(i));
  });
  const pick = (wanted: (effect: Effect) => boolean) =>
    loop.times.filter((_, i) => wanted(effects[i % mix.length] ?? 'deny'));
  const denied = pick((effect) => effect === 'deny');
  const granted = pick((effect) => effect !== 'deny');
  const all = statsOf(loop.times, loop);
  return {
    label,
    policies: engine.policyCount,
    all,
    granted: granted.length > 0 ? statsOf(granted) : undefined,
    denied: denied.length > 0 ? statsOf(denied) : undefined,
    alternating:
      decideWith === 'compiled'
        ? measureAlternating((i) => engine.decide(requestAt(i)), all.p50Us, settings)
        : undefined,
  };
}

/**
 * The machine's own tail at this length of work: decisions timed in turn with a loop of
 * arithmetic (no allocation, no memory beyond a few variables) calibrated to the decisions'
 * median, so both see the same moments of the machine.
 */
function measureAlternating(
  decide: (i: number) => void,
  medianUs: number,
  settings: Settings,
): AlternatingStats {
  let sink = 0;
  const spin = (iterations: number) => {
    let sum = sink;
    for (let i = 0; i < iterations; i++) sum += Math.sqrt(i + sum);
    sink = sum % 7;
  };
  const probe = 100_000;
  spin(probe);
  const perIteration = statsOf(sample(50, () => spin(probe)).times).p50Us / probe;
  const iterations = Math.max(1, Math.round(medianUs / perIteration));
  const decisions = new Float64Array(settings.samples);
  const arithmetic = new Float64Array(settings.samples);
  for (let i = 0; i < settings.samples; i++) {
    const t0 = performance.now();
    decide(i);
    const t1 = performance.now();
    spin(iterations);
    const t2 = performance.now();
    decisions[i] = (t1 - t0) * 1000;
    arithmetic[i] = (t2 - t1) * 1000;
  }
  return { decisions: statsOf(decisions), arithmetic: statsOf(arithmetic) };
}

function measureFloor(label: string, call: StatefulAuthorizationCall, settings: Settings): Row {
  const run = () => {
    const answer = cedar.statefulIsAuthorized(call);
    if (answer.type === 'failure') throw new Error(answer.errors.map((e) => e.message).join('; '));
  };
  for (let i = 0; i < settings.warmup; i++) run();
  const loop = sample(settings.samples, run);
  return {
    label,
    policies: 0,
    all: statsOf(loop.times, loop),
    granted: undefined,
    denied: undefined,
  };
}

interface Samples {
  /** Each run's wall time, in µs. */
  readonly times: Float64Array;
  readonly elapsedMs: number;
  /** This process's CPU time (user and system) over the loop, in µs. */
  readonly cpuUs: number;
}

/** Times `count` runs one by one, and the whole loop's wall and CPU time. */
function sample(count: number, run: (i: number) => void): Samples {
  const times = new Float64Array(count);
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    run(i);
    times[i] = (performance.now() - t0) * 1000;
  }
  const elapsedMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { times, elapsedMs, cpuUs: used.user + used.system };
}

/** Percentiles of `times`; throughput and CPU per run only for a whole loop, not a subset. */
function statsOf(times: Float64Array, loop?: Samples): Stats {
  const sorted = Float64Array.from(times).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    samples: sorted.length,
    p50Us: at(0.5),
    p99Us: at(0.99),
    maxUs: sorted[sorted.length - 1] ?? 0,
    perSecond: loop === undefined ? undefined : sorted.length / (loop.elapsedMs / 1000),
    cpuUs: loop === undefined ? undefined : loop.cpuUs / sorted.length,
  };
}

/**
 * What the engine hands Cedar for the mix's scoped calls with 1,000 grants (see buildContext and
 * entitiesOf in src/policy/policy-engine.ts): the context attributes that slice's policies read
 * and the agent entity with its roles. Sent against an empty policy set, it costs what carrying
 * the request across the bridge costs, with nothing to evaluate.
 */
function engineShapedCall(setId: string): StatefulAuthorizationCall {
  return {
    principal: { type: 'Warden::Agent', id: 'bench-agent' },
    action: { type: 'Warden::Action', id: 'call_tool' },
    resource: { type: 'Warden::Tool', id: 'up0.tool_0' },
    context: {
      tenant: 'acme-eu',
      weekday: 2,
      minute: 600,
      states: { payments_freeze: false },
      arguments: {
        vendor: 'acme',
        amount: { __extn: { fn: 'decimal', arg: '250.5' } },
        currency: 'EUR',
      },
      present: ['vendor', 'amount', 'currency', 'reference'],
      facts: ['f0', 'f1'],
    },
    preparsedPolicySetId: setId,
    entities: [
      {
        uid: { type: 'Warden::Agent', id: 'bench-agent' },
        attrs: {},
        parents: ['role_0', 'role_1', 'role_2'].map((id) => ({ type: 'Warden::Role', id })),
      },
    ],
  };
}

function render(rows: readonly Row[], settings: Settings, loadBefore: number): string {
  const us = (value: number | undefined) => (value === undefined ? '–' : value.toFixed(1));
  const pair = (stats: Stats | undefined) =>
    stats === undefined ? '–' : `${us(stats.p50Us)} / ${us(stats.p99Us)}`;
  const header = [
    'measured',
    'policies',
    'p50 µs',
    'p99 µs',
    'max µs',
    'CPU µs/run',
    'runs/s',
    'allowed or held: p50 / p99 µs',
    'denied: p50 / p99 µs',
  ];
  const body = rows.map((row) => [
    row.label,
    row.policies === undefined ? '–' : String(row.policies),
    us(row.all.p50Us),
    us(row.all.p99Us),
    us(row.all.maxUs),
    us(row.all.cpuUs),
    Math.round(row.all.perSecond ?? 0).toLocaleString('en-US'),
    pair(row.granted),
    pair(row.denied),
  ]);
  const lines = [
    `Policy decisions in-process: ${settings.samples} timed runs per row after ${settings.warmup} ` +
      `warm-up runs; Node ${process.version}, ${cpus().length} cores, load average ` +
      `${loadBefore.toFixed(2)} before and ${loadavg()[0]?.toFixed(2) ?? '?'} after. Wall-time ` +
      'percentiles include any time other work on the machine took the core; CPU µs/run does not.',
    '',
  ];
  if (settings.markdown) {
    lines.push(`| ${header.join(' | ')} |`, `|---|${'---:|'.repeat(header.length - 1)}`);
    lines.push(...body.map((cells) => `| ${cells.join(' | ')} |`));
  } else {
    const widths = header.map((title, column) =>
      Math.max(title.length, ...body.map((cells) => (cells[column] ?? '').length)),
    );
    const line = (cells: readonly string[]) =>
      cells
        .map((text, column) =>
          column === 0 ? text.padEnd(widths[column] ?? 0) : text.padStart(widths[column] ?? 0),
        )
        .join('  ');
    lines.push(line(header), ...body.map(line));
  }
  return `${lines.join('\n')}\n`;
}

function verdict(rows: EngineRows, floor: Row): string {
  const grants = GOAL_GRANTS.toLocaleString('en-US');
  const { large, largeCedar, small } = rows;
  const met = large.all.p99Us <= GOAL_P99_US;
  const bridge = (floor.all.p50Us / largeCedar.all.p50Us) * 100;
  return [
    '',
    `Compiled path against Cedar path with ${grants} grants: p50 ` +
      `${(largeCedar.all.p50Us / large.all.p50Us).toFixed(1)}x, p99 ` +
      `${(largeCedar.all.p99Us / large.all.p99Us).toFixed(1)}x, CPU per run ` +
      `${((largeCedar.all.cpuUs ?? 0) / (large.all.cpuUs ?? 1)).toFixed(1)}x faster.`,
    `Compiled path, p99 with ${grants} grants / p99 with 10 grants: ` +
      `${(large.all.p99Us / small.all.p99Us).toFixed(2)}x (p50 ` +
      `${(large.all.p50Us / small.all.p50Us).toFixed(2)}x).`,
    `The engine-shaped wasm call with no policies at all takes ${bridge.toFixed(0)}% of the p50 ` +
      `Cedar-path decision with ${grants} grants.`,
    `Goal: p99 ≤ ${GOAL_P99_US} µs per decision with ${grants} grants: ` +
      `${large.all.p99Us.toFixed(1)} µs, ${met ? 'met' : 'NOT met'}.`,
    ...(large.alternating === undefined ? [] : [describeAlternating(large.alternating)]),
    '',
  ].join('\n');
}

function describeAlternating({ decisions, arithmetic }: AlternatingStats): string {
  const us = (value: number) => value.toFixed(1);
  return (
    `Tail check: timed in turn with a loop of arithmetic as long (p50 ${us(arithmetic.p50Us)} ` +
    `µs), the compiled decisions had p50 ${us(decisions.p50Us)} / p99 ${us(decisions.p99Us)} µs ` +
    `and the arithmetic p99 ${us(arithmetic.p99Us)} µs, what the machine alone added to work ` +
    "that long meanwhile; the rest of the decisions' tail is their own (allocation, memory)."
  );
}

interface EngineRows {
  readonly small: EngineMeasurement;
  readonly smallCedar: EngineMeasurement;
  readonly large: EngineMeasurement;
  readonly largeCedar: EngineMeasurement;
}

interface DifferentialOutcome {
  readonly runs: number;
  readonly agreed: number;
  readonly disagreed: number;
  readonly tally: DifferentialTally;
  readonly seed: number;
  /** The first disagreement: its config, request and both answers. */
  readonly first: string | undefined;
}

/**
 * The differential check (test/support/policy-differential.ts): every run a generated request
 * against one of a pool of generated configs, decided and explained by both paths. Runs go on
 * after a disagreement, so the count is of all of them.
 */
function checkAgainstCedar(runs: number): DifferentialOutcome {
  const seed = Date.now() % 1_000_000;
  const tally: DifferentialTally = { compiled: 0, cedar: 0 };
  const pairs = buildEnginePairs(DIFFERENTIAL_CONFIGS, seed, tally);
  let agreed = 0;
  let disagreed = 0;
  let first: string | undefined;
  fc.check(
    fc.property(pairAndRequest(pairs), ([pair, request]) => {
      const { cedar, compiled } = answersOf(pair, request);
      if (isDeepStrictEqual(cedar, compiled)) {
        agreed += 1;
      } else {
        disagreed += 1;
        first ??= [
          `config: ${fc.stringify(pair.config)}`,
          `request: ${fc.stringify(request)}`,
          `Cedar: ${fc.stringify(cedar)}`,
          `compiled: ${fc.stringify(compiled)}`,
        ].join('\n');
      }
      return true;
    }),
    { numRuns: runs, seed },
  );
  return { runs: agreed + disagreed, agreed, disagreed, tally, seed, first };
}

function describeDifferential(outcome: DifferentialOutcome): string {
  const { runs, agreed, disagreed, tally, seed, first } = outcome;
  const count = (n: number) => n.toLocaleString('en-US');
  const answered = (tally.compiled / Math.max(1, tally.compiled + tally.cedar)) * 100;
  return [
    `Differential check, compiled path against Cedar: ${count(runs)} fast-check runs over ` +
      `${DIFFERENTIAL_CONFIGS} generated configs (seed ${seed}), each a generated request decided ` +
      `and explained by both: ${count(agreed)} agree, ${count(disagreed)} disagree. The compiled ` +
      `path answered ${answered.toFixed(0)}% of those decisions and explanations itself and left ` +
      'the rest to Cedar (requests it cannot read exactly as Cedar would).',
    ...(first === undefined ? [] : ['First disagreement:', first]),
    '',
  ].join('\n');
}

const settings = readSettings();
const loadBefore = loadavg()[0] ?? 0;
const emptySet = 'bench-empty';
if (cedar.preparsePolicySet(emptySet, { staticPolicies: {} }).type === 'failure') {
  throw new Error('cannot prepare the empty policy set');
}
const emptyFloor = measureFloor(
  'wasm floor: empty policy set, empty request',
  {
    principal: { type: 'A', id: '' },
    action: { type: 'Action', id: '' },
    resource: { type: 'R', id: '' },
    context: {},
    preparsedPolicySetId: emptySet,
    entities: [],
  },
  settings,
);
const shapedFloor = measureFloor(
  'wasm floor: empty policy set, engine-shaped request',
  engineShapedCall(emptySet),
  settings,
);
const engines: EngineRows = {
  smallCedar: measureEngine(10, 'cedar', settings),
  small: measureEngine(10, 'compiled', settings),
  largeCedar: measureEngine(GOAL_GRANTS, 'cedar', settings),
  large: measureEngine(GOAL_GRANTS, 'compiled', settings),
};
process.stdout.write(
  render(
    [emptyFloor, shapedFloor, engines.smallCedar, engines.small, engines.largeCedar, engines.large],
    settings,
    loadBefore,
  ),
);
process.stdout.write(verdict(engines, shapedFloor));
if (settings.differentialRuns > 0) {
  const outcome = checkAgainstCedar(settings.differentialRuns);
  process.stdout.write(describeDifferential(outcome));
  if (outcome.disagreed > 0) process.exitCode = 1;
}
