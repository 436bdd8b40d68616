/**
 * Deciding in plain JavaScript a slice made only of compiled grants and the break-glass permit,
 * with the answer Cedar gives for their compiled text: the same satisfied permits (Cedar's
 * determining policies), so the same effect. A call into Cedar's WebAssembly costs ~85 µs, most
 * of it carrying the request across; the predicates here (grant-conditions.ts) cost a few.
 *
 * Cedar stays the oracle and the fallback. A slice is planned only when every value its policies
 * compare reaches Cedar as a plain attribute; a request is decided here only when Cedar would
 * take it as it is and evaluate it without error. Otherwise (undefined) the caller asks Cedar:
 *   - a slice with a hand-written policy (the caller never plans one);
 *   - an argument path with a part starting `__` (`__entity`, `__extn` and `__expr` are escapes
 *     in Cedar's JSON; `__proto__` is no ordinary key in JavaScript); one that is a prefix of
 *     another, or compared as another type than its slice sends it (neither loads today);
 *   - a request carrying text with a lone surrogate (which the Cedar path then refuses, see
 *     holdsOnlyCedarText), a state that is not a boolean or whose name starts `__`, a state the
 *     slice reads that is missing (an evaluation error in Cedar, reported as such), or a clock
 *     outside the range of a date.
 */
import type { ArgumentFact } from './cedar-expressions.js';
import {
  argumentsOf,
  clockOf,
  isCedarText,
  resourceIdOf,
  resourceTypeOf,
  targetOf,
  valueAt,
  valueAtParts,
  type ContextShape,
} from './cedar-request.js';
import { BREAKGLASS_POLICY } from './compile-grants.js';
import { allHold, type GrantInput, type GrantRule } from './grant-conditions.js';
import type { PolicyRequest } from './policy-engine.js';

/** A slice's compiled grants, ready to decide without Cedar. */
export interface CompiledSlice {
  readonly rules: readonly GrantRule[];
  /** The policy states the rules read: each must be in the request as a boolean. */
  readonly states: readonly string[];
  /** The argument paths whose text reaches Cedar (split): each must be text Cedar can read. */
  readonly textPaths: readonly (readonly string[])[];
}

/** ECMAScript's time range: beyond it `new Date(now)` is invalid and the clock NaN. */
const MAX_TIME_MS = 8.64e15;

/**
 * The compiled form of a slice whose policies are `rules` (its grants, in order) and the
 * break-glass permit, read with `shape`; undefined when Cedar must decide it.
 */
export function planCompiledSlice(
  rules: readonly (GrantRule | undefined)[],
  shape: Pick<ContextShape, 'valuePaths'>,
): CompiledSlice | undefined {
  if (rules.some((rule) => rule === undefined)) return undefined;
  const planned = rules as readonly GrantRule[];
  const sent = new Map(shape.valuePaths.map(({ path, type }) => [path, type]));
  const paths = [...sent.keys()];
  const escaped = paths.some((path) => path.split('.').some((part) => part.startsWith('__')));
  const nested = paths.some((path) => paths.some((other) => other.startsWith(`${path}.`)));
  const retyped = planned.some((rule) =>
    rule.comparedPaths.some(({ path, type }) => sent.get(path) !== type),
  );
  if (escaped || nested || retyped) return undefined;
  return {
    rules: planned,
    states: [...new Set(planned.flatMap((rule) => rule.states))],
    textPaths: shape.valuePaths
      .filter(({ type }) => type === 'string')
      .map(({ path }) => path.split('.')),
  };
}

/**
 * The request as the slice's predicates read it (the values buildContext would hand Cedar), or
 * undefined when Cedar could refuse the request or raise an evaluation error on it.
 */
export function readCompiledRequest(
  request: PolicyRequest,
  slice: CompiledSlice,
  region: string,
): GrantInput | undefined {
  const { identity, states } = request;
  if (!Number.isFinite(request.now) || Math.abs(request.now) > MAX_TIME_MS) return undefined;
  const texts = [identity.agent, identity.environment, request.upstream, request.name];
  for (const optional of [identity.user, identity.tenant, identity.declaredModel]) {
    if (optional !== undefined) texts.push(optional);
  }
  if (!texts.every(isCedarText) || !identity.roles.every(isCedarText)) return undefined;
  for (const [name, on] of states) {
    if (typeof on !== 'boolean' || !isCedarText(name) || name.startsWith('__')) return undefined;
  }
  if (!slice.states.every((name) => states.has(name))) return undefined;
  for (const target of request.breakglass) if (!isCedarText(target)) return undefined;
  const args = request.action === 'call_tool' ? argumentsOf(request) : {};
  for (const parts of slice.textPaths) {
    const value = valueAtParts(args, parts);
    if (typeof value === 'string' && !isCedarText(value)) return undefined;
  }
  const clock = clockOf(request.now);
  const facts = new Map<ArgumentFact, boolean>();
  return {
    action: request.action,
    roles: identity.roles,
    resourceType: resourceTypeOf(request.action),
    resourceId: resourceIdOf(request),
    upstream: request.upstream,
    target: targetOf(request),
    now: clock.now,
    weekday: clock.weekday,
    minute: clock.minute,
    tenant: identity.tenant ?? '',
    region,
    states,
    // Only call_tool sends arguments; no other action's permits or explained checks read them.
    arguments: args,
    holds(fact) {
      let holds = facts.get(fact);
      if (holds === undefined) {
        holds = fact.test(valueAt(args, fact.path));
        facts.set(fact, holds);
      }
      return holds;
    },
  };
}

/**
 * The permits of the slice the request satisfies, as Cedar's determining policies: grant
 * permits in the slice's order, then the break-glass permit. Empty: the default deny.
 */
export function decideCompiledGrants(
  slice: CompiledSlice,
  input: GrantInput,
  breakglass: ReadonlySet<string>,
): string[] {
  const determining: string[] = [];
  for (const rule of slice.rules) {
    const permit = rule.permits.get(input.action);
    if (permit !== undefined && rule.inScope(input) && allHold(permit.conditions, input)) {
      determining.push(permit.id);
    }
  }
  if (breakglassApplies(input, breakglass)) determining.push(BREAKGLASS_POLICY.id);
  return determining;
}

/** BREAKGLASS_POLICY: call_tool or list_tools on a tool the agent holds break-glass for. */
function breakglassApplies(input: GrantInput, breakglass: ReadonlySet<string>): boolean {
  return (
    (input.action === 'call_tool' || input.action === 'list_tools') &&
    input.resourceType === 'Tool' &&
    breakglass.size > 0 &&
    breakglass.has(input.target)
  );
}

/** Does one of a grant's checks (an explanation's `<grant>!<n>` policy) hold for the request? */
export function checkHolds(rule: GrantRule, checkId: string, input: GrantInput): boolean {
  const condition = rule.checks.get(checkId);
  return condition !== undefined && condition(input);
}
