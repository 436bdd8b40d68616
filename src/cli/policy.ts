/**
 * `warden policy validate|test|explain|state|push|status`: compile the configured policy and
 * report every problem with its place; run a team's policy test cases (for CI); explain one
 * decision in plain words; switch the operator policy states a running gateway reads; push a
 * policy bundle to the replicas and show which version each runs (cli/policy-bundles.ts).
 *
 * Exit codes: 0 ok, 1 a "no" answer (a failing test case), 2 a usage, configuration or policy
 * load error. The helpers at the end are shared with `warden grant` and `warden tools`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { resolveTimeBound } from '../audit/timeline.js';
import type { Config } from '../config/config.js';
import { formatDuration } from '../config/duration.js';
import { loadConfigFile } from '../config/load.js';
import type { ApprovalRequirement, Effect } from '../domain/decision.js';
import { OperationError } from '../domain/errors.js';
import { isRecord } from '../domain/json-object.js';
import type { Explanation, PolicyEngine, PolicyRequest } from '../policy/policy-engine.js';
import { parsePolicyTarget, type PolicyTarget, type TargetKind } from '../policy/policy-target.js';
import type { PolicyStateValue } from '../policy/read-policy-states.js';
import { requireConfiguredState } from '../policy/set-policy-state.js';
import { formatTable } from './format-table.js';
import { registerPolicyBundleCommands } from './policy-bundles.js';
import {
  CONFIG_OPTION,
  currentUser,
  describeError,
  exitWithUsageCode,
  runCliAction,
  UsageError,
  withSession,
} from './operator.js';

const EFFECTS = ['allow', 'deny', 'approval_required'] as const;

interface ExplainOptions {
  readonly config: string;
  readonly agent: string;
  readonly tool?: string;
  readonly resource?: string;
  readonly prompt?: string;
  readonly args?: string;
  readonly user?: string;
  readonly at?: string;
  readonly state: readonly string[];
}

interface StateSetOptions {
  readonly config: string;
  readonly reason: string;
  readonly by?: string;
}

export function registerPolicyCommand(program: Command): void {
  const policy = program
    .command('policy')
    .description('validate, test and explain the policy; switch policy states')
    .exitOverride(exitWithUsageCode);

  policy
    .command('validate')
    .description(
      "compile the policy (grants and .cedar files); print every problem (exit 2). With --live, also list each upstream's tools and report grants naming a tool it does not list (exit 1)",
    )
    .option(...CONFIG_OPTION)
    .option('--live', 'connect to the configured upstreams and check every granted tool is listed')
    .action((options: { config: string; live?: boolean }) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        const engine = await compilePolicy(config);
        process.stdout.write(
          `policy ok: ${engine.policyCount} policies, version ${engine.version.slice(0, 12)}\n`,
        );
        if (options.live === true) await validateLive(config);
      }),
    );

  policy
    .command('test')
    .description(
      'evaluate the cases of a YAML file against the policy (exit 0 all pass, 1 a mismatch, 2 a bad file)',
    )
    .argument('<cases>', 'YAML file: cases: [{ name, agent, tool, arguments, expect }, …]')
    .option(...CONFIG_OPTION)
    .action((file: string, options: { config: string }) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        const cases = readTestCases(file, config);
        const engine = await compilePolicy(config);
        let failed = 0;
        for (const testCase of cases) {
          const decision = engine.decide(testCase.request);
          const pass = decision.effect === testCase.expect;
          if (!pass) failed++;
          const outcome = `expected ${testCase.expect}, got ${decision.effect}`;
          const why = pass ? '' : `: ${decision.reasons.join('; ')}`;
          const monitored = decision.monitored ? ' (monitor mode: enforcement would deny)' : '';
          process.stdout.write(
            `${pass ? 'PASS' : 'FAIL'}  ${testCase.name}  ${outcome}${monitored}${why}\n`,
          );
        }
        process.stdout.write(`${cases.length - failed} passed, ${failed} failed\n`);
        process.exitCode = failed > 0 ? 1 : 0;
      }),
    );

  policy
    .command('explain')
    .description(
      'explain the decision for one request: the effect, the deciding policies, and each check of every grant that could apply',
    )
    .option(...CONFIG_OPTION)
    .requiredOption('--agent <id>', 'the calling agent (from `agents:`)')
    .option('--tool <upstream.tool>', 'a tool call')
    .option('--resource <upstream:uri>', 'a resource read')
    .option('--prompt <upstream.name>', 'a prompt')
    .option('--args <json>', "the tool call's arguments, a JSON object")
    .option('--user <id>', 'the user the agent acts for')
    .option('--at <time>', 'when (ISO 8601 with a zone, or e.g. 2h ago); default now')
    .option(
      '--state <name=on|off>',
      'a policy state, over the stored value; may repeat',
      collect,
      [],
    )
    .action((options: ExplainOptions) => runCliAction(() => explainCommand(options)));

  registerPolicyBundleCommands(policy);

  const state = policy
    .command('state')
    .description('operator-switched policy states (e.g. a payments freeze)');

  state
    .command('set')
    .description('switch a configured policy state; a running gateway applies it within a second')
    .argument('<name>', 'a state declared under policy_states')
    .argument('<value>', 'on or off')
    .option(...CONFIG_OPTION)
    .requiredOption('--reason <text>', 'why, for the audit trail')
    .option('--by <name>', 'who (default: the OS user)')
    .action((name: string, value: string, options: StateSetOptions) =>
      runCliAction(() => setStateCommand(name, value, options)),
    );

  state
    .command('list')
    .description('the configured policy states, their current values, and who changed them')
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        if (config.policy.states.size === 0) {
          process.stdout.write(
            'no policy states are configured (declare them under policy_states)\n',
          );
          return;
        }
        const states = await withSession(config, (session) => session.policy.readPolicyStates());
        process.stdout.write(describeStates(states));
      }),
    );
}

// ---------------------------------------------------------------------------------- policy test

interface TestCase {
  readonly name: string;
  readonly expect: Effect;
  readonly request: PolicyRequest;
}

const stateValue = z
  .union([z.enum(['on', 'off']), z.boolean()])
  .transform((value) => value === true || value === 'on');

const testCaseSchema = z.strictObject({
  name: z.string().min(1),
  agent: z.string().min(1),
  user: z.string().min(1).optional(),
  roles: z.array(z.string().min(1)).optional(),
  tenant: z.string().min(1).optional(),
  tool: z.string().min(1).optional(),
  resource: z.string().min(1).optional(),
  prompt: z.string().min(1).optional(),
  arguments: z.record(z.string(), z.unknown()).optional(),
  at: z.union([z.string(), z.date().transform((date) => date.toISOString())]).optional(),
  states: z.record(z.string(), stateValue).optional(),
  expect: z.enum(EFFECTS),
});

const testFileSchema = z.strictObject({ cases: z.array(testCaseSchema).min(1) });

/** Reads and checks a test-case file; every problem names its case and key. */
function readTestCases(file: string, config: Config): TestCase[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true });
  } catch (error) {
    throw new UsageError(`${file}: ${(error as Error).message.split('\n')[0]}`);
  }
  const parsed = testFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const [, index] = issue.path;
      const label =
        typeof index === 'number' ? caseLabel(index, nameAt(raw, index)) : '(top level)';
      const field = issue.path.slice(2).join('.');
      return `${label}${field === '' ? '' : `, key ${field}`}: ${issue.message}`;
    });
    throw new UsageError(`${file} is not a valid test file:\n${bullets(problems)}`);
  }
  const problems: string[] = [];
  const cases = parsed.data.cases.flatMap((entry, index): TestCase[] => {
    const label = caseLabel(index, entry.name);
    try {
      return [{ name: entry.name, expect: entry.expect, request: testRequest(entry, config) }];
    } catch (error) {
      if (!(error instanceof CaseError)) throw error;
      problems.push(`${label}, key ${error.key}: ${error.message}`);
      return [];
    }
  });
  if (problems.length > 0) {
    throw new UsageError(`${file} is not a valid test file:\n${bullets(problems)}`);
  }
  return cases;
}

/** A test case that names something the configuration does not have. */
class CaseError extends Error {
  /** The case's key that is wrong, e.g. `tool` or `states.payments_freeze`. */
  readonly key: string;

  constructor(key: string, message: string) {
    super(message);
    this.name = 'CaseError';
    this.key = key;
  }
}

function testRequest(entry: z.output<typeof testCaseSchema>, config: Config): PolicyRequest {
  const agent = config.agents.get(entry.agent);
  if (agent === undefined && entry.roles === undefined) {
    throw new CaseError(
      'agent',
      `agent "${entry.agent}" is not in the agent registry (or give roles:)`,
    );
  }
  const targets = (['tool', 'resource', 'prompt'] as const).filter(
    (key) => entry[key] !== undefined,
  );
  const [kind] = targets;
  if (targets.length !== 1 || kind === undefined) {
    throw new CaseError('tool', 'name exactly one of tool, resource or prompt');
  }
  if (entry.arguments !== undefined && kind !== 'tool') {
    throw new CaseError('arguments', 'arguments belong to tool calls only');
  }
  let target: PolicyTarget;
  try {
    target = parsePolicyTarget(kind, entry[kind] ?? '', config);
  } catch (error) {
    if (error instanceof OperationError) throw new CaseError(kind, error.message);
    throw error;
  }
  const states = new Map(config.policy.states);
  for (const [name, on] of Object.entries(entry.states ?? {})) {
    if (!states.has(name)) {
      throw new CaseError(`states.${name}`, `no policy state "${name}" is configured`);
    }
    states.set(name, on);
  }
  let now = Date.now();
  if (entry.at !== undefined) {
    const at = resolveTimeBound(entry.at, now);
    if (at === undefined) {
      throw new CaseError('at', `"${entry.at}" is not an ISO 8601 time with a zone`);
    }
    now = Date.parse(at);
  }
  return {
    ...target.request,
    identity: {
      agent: entry.agent,
      user: entry.user,
      roles: entry.roles ?? agent?.roles ?? [],
      tenant: entry.tenant ?? agent?.tenant,
      environment: config.environment,
      declaredModel: undefined,
    },
    ...(entry.arguments !== undefined && { arguments: entry.arguments }),
    now,
    states,
    breakglass: new Set(),
  };
}

function caseLabel(index: number, name: unknown): string {
  return typeof name === 'string' ? `case ${index + 1} "${name}"` : `case ${index + 1}`;
}

function nameAt(raw: unknown, index: number): unknown {
  const cases = isRecord(raw) ? raw['cases'] : undefined;
  const entry = Array.isArray(cases) ? (cases[index] as unknown) : undefined;
  return isRecord(entry) ? entry['name'] : undefined;
}

// ------------------------------------------------------------------------------- policy explain

async function explainCommand(options: ExplainOptions): Promise<void> {
  const config = loadConfigFile(options.config);
  const agent = config.agents.get(options.agent);
  if (agent === undefined) {
    throw new UsageError(
      `agent "${options.agent}" is not in the agent registry of ${config.source}`,
    );
  }
  const kinds = (['tool', 'resource', 'prompt'] as const).filter(
    (key) => options[key] !== undefined,
  );
  const [kind] = kinds;
  if (kinds.length !== 1 || kind === undefined) {
    throw new UsageError('name exactly one of --tool, --resource or --prompt');
  }
  const target = parsePolicyTarget(kind, options[kind] ?? '', config);
  const args = parseArguments(options.args, kind);
  const now = Date.now();
  const at = options.at === undefined ? now : Date.parse(resolveAt(options.at, now));
  const overrides = parseStateOverrides(options.state, config);
  const engine = await compilePolicy(config);

  const [stored, active] = await withSession(config, (session) =>
    Promise.all([session.policy.readPolicyStates(), session.policy.listBreakGlassGrants(at)]),
  );
  const states = new Map<string, StateValue>(
    [...stored].map(([name, state]) => [name, { on: state.on, source: sourceOf(state) }]),
  );
  for (const [name, on] of overrides) states.set(name, { on, source: '--state' });
  const breakglass = active.filter((grant) => grant.agent === agent.id);
  const request: PolicyRequest = {
    ...target.request,
    identity: {
      agent: agent.id,
      user: options.user,
      roles: agent.roles,
      tenant: agent.tenant,
      environment: config.environment,
      declaredModel: undefined,
    },
    ...(args !== undefined && { arguments: args }),
    now: at,
    states: new Map([...states].map(([name, { on }]) => [name, on])),
    breakglass: new Set(breakglass.map((grant) => grant.tool)),
  };
  const explanation = engine.explain(request);
  const lines = [
    `request      ${target.action} ${target.label}`,
    `agent        ${agent.id} (roles: ${agent.roles.join(', ') || 'none'})${options.user === undefined ? '' : `, for user ${options.user}`}`,
    `at           ${new Date(at).toISOString()}`,
    `states       ${describeStateValues(states)}`,
    `break-glass  ${breakglass.length === 0 ? 'none' : breakglass.map((grant) => `${grant.tool} until ${new Date(grant.expiresAt).toISOString()} (${grant.id})`).join(', ')}`,
    '',
    ...describeExplanation(explanation, engine.version, target.label),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function describeExplanation(explanation: Explanation, version: string, label: string): string[] {
  const { decision } = explanation;
  const lines = [
    `effect       ${decision.effect}`,
    'reasons',
    ...decision.reasons.map((reason) => `  - ${reason}`),
    `deciding policies: ${decision.policies.length === 0 ? 'none (default deny)' : decision.policies.join(', ')}`,
  ];
  if (decision.approval) lines.push(describeApproval(decision.approval));
  if (decision.monitored) {
    lines.push(
      'monitor mode: the call goes through, but enforcement would deny it because',
      ...decision.monitored.reasons.map((reason) => `  - ${reason}`),
    );
  }
  if (decision.errors && decision.errors.length > 0) {
    lines.push('evaluation errors (an error never allows)');
    lines.push(...decision.errors.map((error) => `  - ${error}`));
  }
  lines.push(`policy version: ${version.slice(0, 12)}`, '', 'grants that could apply');
  if (explanation.grants.length === 0) {
    lines.push(`  none: no grant of the agent's roles names ${label}`);
  }
  for (const grant of explanation.grants) {
    const verdict = grant.failed.length === 0 ? 'all checks pass' : 'does not apply';
    lines.push(`  ${grant.grant} (role ${grant.role}): ${verdict}`);
    lines.push(...grant.passed.map((check) => `    passed  ${check}`));
    lines.push(...grant.failed.map((check) => `    FAILED  ${check}`));
    if (grant.passed.length === 0 && grant.failed.length === 0) {
      lines.push('    (no conditions)');
    }
  }
  return lines;
}

function describeApproval(approval: ApprovalRequirement): string {
  const who = approval.approverRoles.join(' or ');
  const count = approval.approvalsRequired === 2 ? '2 distinct approvers' : '1 approver';
  return `approval: ${count} with role ${who}, within ${formatDuration(approval.timeoutMs)}`;
}

function parseArguments(text: string | undefined, kind: TargetKind): unknown {
  if (text === undefined) return undefined;
  if (kind !== 'tool') throw new UsageError('--args belongs to --tool only');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(`--args is not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(value)) throw new UsageError('--args must be a JSON object');
  return value;
}

function resolveAt(text: string, now: number): string {
  const at = resolveTimeBound(text, now);
  if (at === undefined) {
    throw new UsageError(`--at "${text}" is not an ISO 8601 time with a zone (or e.g. 2h ago)`);
  }
  return at;
}

function parseStateOverrides(entries: readonly string[], config: Config): Map<string, boolean> {
  const overrides = new Map<string, boolean>();
  for (const entry of entries) {
    const match = /^([^=]+)=(on|off)$/.exec(entry);
    if (!match) throw new UsageError(`--state "${entry}": write name=on or name=off`);
    const [, name = '', value] = match;
    requireConfiguredState(name, config);
    overrides.set(name, value === 'on');
  }
  return overrides;
}

// --------------------------------------------------------------------------------- policy state

interface StateValue {
  readonly on: boolean;
  /** `default`, `--state`, or who set it and when. */
  readonly source: string;
}

/** Who set a state and when, or `default`. */
function sourceOf(state: PolicyStateValue): string {
  return state.change === undefined
    ? 'default'
    : `set by ${state.change.by} at ${new Date(state.change.at).toISOString()}`;
}

function describeStateValues(states: ReadonlyMap<string, StateValue>): string {
  if (states.size === 0) return 'none configured';
  return [...states]
    .map(([name, { on, source }]) => `${name}=${on ? 'on' : 'off'} (${source})`)
    .join(', ');
}

async function setStateCommand(name: string, value: string, options: StateSetOptions) {
  if (value !== 'on' && value !== 'off') {
    throw new UsageError(`the value of a policy state is on or off, not "${value}"`);
  }
  const { before } = await withSession(options.config, (session) =>
    session.policy.setPolicyState({
      name,
      on: value === 'on',
      reason: options.reason,
      by: options.by ?? currentUser(),
    }),
  );
  process.stdout.write(`policy state ${name} is now ${value} (was ${onOff(before.on)})\n`);
}

function describeStates(states: ReadonlyMap<string, PolicyStateValue>): string {
  const rows = [...states.values()].map((state) => [
    state.name,
    onOff(state.on),
    onOff(state.defaultOn),
    state.change === undefined ? '-' : new Date(state.change.at).toISOString(),
    state.change?.by ?? '-',
    state.change?.reason ?? '-',
  ]);
  return formatTable([['STATE', 'VALUE', 'DEFAULT', 'CHANGED', 'BY', 'REASON'], ...rows]);
}

function onOff(on: boolean): string {
  return on ? 'on' : 'off';
}

/**
 * `validate --live`: each upstream's tool count, then every grant naming a tool its upstream does
 * not list and every upstream that could not be listed, on stderr with exit code 1.
 */
async function validateLive(config: Config): Promise<void> {
  const { checkGrantedTools } = await import('../gateway/check-granted-tools.js');
  const { describeUnlistedGrant } = await import('../policy/find-unlisted-grants.js');
  const { listings, unlisted } = await checkGrantedTools(config);
  const problems = unlisted.map(describeUnlistedGrant);
  for (const listing of listings) {
    if ('tools' in listing) {
      process.stdout.write(`upstream ${listing.upstream}: ${listing.tools} tools listed\n`);
    } else {
      problems.push(
        `upstreams.${listing.upstream}: could not list its tools: ${describeError(listing.error)}`,
      );
    }
  }
  if (problems.length === 0) {
    process.stdout.write('every granted tool is listed by its upstream\n');
    return;
  }
  process.stderr.write(`warden: the live check found problems:\n${bullets(problems)}\n`);
  process.exitCode = 1;
}

/** The policy engine, loaded (with Cedar) only by the commands that evaluate policy. */
async function compilePolicy(config: Config): Promise<PolicyEngine> {
  const { createPolicyEngine } = await import('../policy/policy-engine.js');
  return createPolicyEngine(config.policy);
}

function bullets(lines: readonly string[]): string {
  return lines.map((line) => `  - ${line}`).join('\n');
}

function collect(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}
