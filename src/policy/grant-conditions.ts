/**
 * A compiled grant's Cedar policies as plain JavaScript predicates, clause for clause: the scope
 * of its permit (compile-grants.ts) and each condition (cedar-expressions.ts). They read the
 * values buildContext hands Cedar (cedar-request.ts) and the same facts, so for a request whose
 * values Cedar takes as they are (see compiled-grants-decision.ts) each predicate holds exactly
 * when Cedar finds the policy satisfied. None of these policies can raise a Cedar evaluation
 * error on such a request: the one that could (a policy state missing from the request) is
 * screened out before they run.
 */
import type { Constraint, GrantConfig, GrantTarget, Scalar } from '../config/policy-config.js';
import { readsArguments, toDecimalText, type ArgumentFact } from './cedar-expressions.js';
import {
  cedarArgument,
  valueAtParts,
  type ArgumentType,
  type ResourceType,
} from './cedar-request.js';
import type { PolicyAction } from './cedar-schema.js';
import { grantAction, namedResourceTarget, type CompiledGrant } from './compile-grants.js';

/** What a grant's policies read of one request: the values Cedar would be handed. */
export interface GrantInput {
  readonly action: PolicyAction;
  /** The agent's parents: `principal in Role` holds for exactly these. */
  readonly roles: readonly string[];
  readonly resourceType: ResourceType;
  readonly resourceId: string;
  /** The resource entity's parent: `resource in Upstream`. */
  readonly upstream: string;
  readonly target: string;
  /** `context.now`, in seconds. */
  readonly now: number;
  readonly weekday: number;
  readonly minute: number;
  readonly tenant: string;
  readonly region: string;
  readonly states: ReadonlyMap<string, boolean>;
  /** call_tool only: the arguments, as `argumentsOf` reads them. */
  readonly arguments: Record<string, unknown>;
  /** `context.facts.contains(fact.id)`. */
  holds(fact: ArgumentFact): boolean;
}

export type Condition = (input: GrantInput) => boolean;

/** The fact compileConstraint registered for these parameters (FactRegistry.register's key). */
export type FactLookup = (
  kind: 'pattern' | 'max_length' | 'when',
  path: string,
  parameter: string | number | readonly Scalar[],
) => ArgumentFact | undefined;

/** One of a grant's permits: its policy id and its `when` conditions. */
export interface GrantPermit {
  readonly id: string;
  readonly conditions: readonly Condition[];
}

/** One compiled grant as predicates. */
export interface GrantRule {
  readonly compiled: CompiledGrant;
  /** The grant's permit for its action and, for a tool, its visibility permit for list_tools. */
  readonly permits: ReadonlyMap<PolicyAction, GrantPermit>;
  /** The scope both permits share: `principal in Role` and the resource. */
  readonly inScope: (input: GrantInput) => boolean;
  /** Each check policy's condition, by the check policy's id (for explanations). */
  readonly checks: ReadonlyMap<string, Condition>;
  /** The argument paths its constraints compare by value, with the type each expects there. */
  readonly comparedPaths: readonly { readonly path: string; readonly type: ArgumentType }[];
  /** The policy states its conditions read (a missing one is a Cedar evaluation error). */
  readonly states: readonly string[];
}

/**
 * The predicates of one compiled grant, built as compileGrant builds its text; undefined when a
 * value in it is not one compileGrant could have written (then Cedar decides).
 */
export function compileGrantRule(
  compiled: CompiledGrant,
  factFor: FactLookup,
): GrantRule | undefined {
  try {
    return buildRule(compiled, factFor);
  } catch (error) {
    if (error instanceof NotCompilable) return undefined;
    throw error;
  }
}

class NotCompilable extends Error {}

function registered(fact: ArgumentFact | undefined): ArgumentFact {
  if (fact === undefined) throw new NotCompilable();
  return fact;
}

function buildRule(compiled: CompiledGrant, factFor: FactLookup): GrantRule {
  const { grant } = compiled;
  const expiry = grant.expiresAt === undefined ? [] : [expiryCondition(grant.expiresAt)];
  const holds = (constraint: Constraint) => constraintCondition(constraint, factFor);
  const permits = new Map<PolicyAction, GrantPermit>([
    [
      grantAction(grant.target),
      {
        id: compiled.permit.id,
        conditions: [...expiry, ...targetConditions(grant), ...grant.constraints.map(holds)],
      },
    ],
  ]);
  if (compiled.visibility !== undefined) {
    permits.set('list_tools', {
      id: compiled.visibility.id,
      conditions: [...expiry, ...grant.constraints.filter((c) => !readsArguments(c)).map(holds)],
    });
  }
  const checks = new Map<string, Condition>();
  for (const { policy, check } of compiled.checks) {
    checks.set(
      policy.id,
      check.kind === 'expiry' ? expiryCondition(check.expiresAt) : holds(check.constraint),
    );
  }
  const resource = resourceCondition(grant.target);
  return {
    compiled,
    permits,
    inScope: (input) => input.roles.includes(grant.role) && resource(input),
    checks,
    comparedPaths: grant.constraints.flatMap((c) => {
      const type = comparedType(c);
      return type === undefined || !('path' in c) ? [] : [{ path: c.path, type }];
    }),
    states: grant.constraints.flatMap((c) => (c.kind === 'state' ? [c.state] : [])),
  };
}

/** Is every condition met? `&&` in Cedar, which stops at the first false one too. */
export function allHold(conditions: readonly Condition[], input: GrantInput): boolean {
  for (const condition of conditions) if (!condition(input)) return false;
  return true;
}

/** compile-grants.ts resourceScope: `is`, `in Upstream`, `==`. */
function resourceCondition(target: GrantTarget): (input: GrantInput) => boolean {
  if (target.kind === 'resource') {
    return target.upstream === '*'
      ? (input) => input.resourceType === 'Resource'
      : (input) => input.upstream === target.upstream;
  }
  const type: ResourceType = target.kind === 'tool' ? 'Tool' : 'Prompt';
  if (target.upstream === '*') return (input) => input.resourceType === type;
  if (target.name === '*') {
    return (input) => input.resourceType === type && input.upstream === target.upstream;
  }
  const id = `${target.upstream}.${target.name}`;
  return (input) => input.resourceType === type && input.resourceId === id;
}

/** `context.now < <expiry in seconds>`, as compileGrant writes it. */
function expiryCondition(expiresAt: number): Condition {
  const seconds = Math.floor(expiresAt / 1000);
  return (input) => input.now < seconds;
}

/** `context.target == "…"`, or `like "…*"` for a prefix: a `like` whose one wildcard ends it. */
function targetConditions(grant: GrantConfig): Condition[] {
  const named = namedResourceTarget(grant);
  if (named === undefined) return [];
  const { qualified, prefix } = named;
  return [
    prefix ? (input) => input.target.startsWith(qualified) : (input) => input.target === qualified,
  ];
}

const WEEKDAY_COUNT = 7;

/** cedar-expressions.ts compileConstraint: the body, behind `!applies ||` for a condition. */
function constraintCondition(constraint: Constraint, factFor: FactLookup): Condition {
  const body = bodyCondition(constraint, factFor);
  if (constraint.condition === undefined) return body;
  const applies = registered(
    factFor('when', constraint.condition.path, constraint.condition.values),
  );
  return (input) => !input.holds(applies) || body(input);
}

function bodyCondition(constraint: Constraint, factFor: FactLookup): Condition {
  switch (constraint.kind) {
    case 'required': {
      const parts = constraint.path.split('.');
      return (input) => valueAtParts(input.arguments, parts) !== undefined;
    }
    case 'forbidden': {
      const parts = constraint.path.split('.');
      return (input) => valueAtParts(input.arguments, parts) === undefined;
    }
    case 'min':
    case 'max': {
      const parts = constraint.path.split('.');
      const bound = decimalLiteral(constraint.bound);
      const meets =
        constraint.kind === 'min'
          ? (value: number) => value >= bound
          : (value: number) => value <= bound;
      return (input) => {
        const value = decimalArgument(valueAtParts(input.arguments, parts));
        return value !== undefined && meets(value);
      };
    }
    case 'one_of':
      return oneOfCondition(constraint.path, constraint.values);
    case 'pattern':
    case 'max_length': {
      const parameter = constraint.kind === 'pattern' ? constraint.pattern : constraint.bound;
      const fact = registered(factFor(constraint.kind, constraint.path, parameter));
      return (input) => input.holds(fact);
    }
    case 'tenant': {
      const values = new Set(constraint.values);
      return (input) => values.has(input.tenant);
    }
    case 'region': {
      const values = new Set(constraint.values);
      return (input) => values.has(input.region);
    }
    case 'time':
      return timeCondition(constraint.days, constraint.fromMinute, constraint.toMinute);
    case 'state': {
      const { state, on } = constraint;
      // Present and a boolean: the request was screened for it.
      return (input) => input.states.get(state) === on;
    }
  }
}

/** `[…].contains(<argument>)`: decimals compared by value, text and booleans exactly. */
function oneOfCondition(path: string, values: readonly Scalar[]): Condition {
  const parts = path.split('.');
  const type = typeof values[0] as ArgumentType;
  if (type === 'number') {
    const decimals = new Set(values.map(decimalLiteral));
    return (input) => {
      const value = decimalArgument(valueAtParts(input.arguments, parts));
      return value !== undefined && decimals.has(value);
    };
  }
  const allowed = new Set<unknown>(values);
  return (input) => {
    const value = cedarArgument(valueAtParts(input.arguments, parts), type);
    return value !== undefined && allowed.has(value);
  };
}

function timeCondition(
  days: readonly number[] | undefined,
  fromMinute: number | undefined,
  toMinute: number | undefined,
): Condition {
  // As compiled: a list of every day (or of seven entries) writes no day check at all.
  const onDays = days && days.length < WEEKDAY_COUNT ? new Set(days) : undefined;
  return (input) =>
    (onDays === undefined || onDays.has(input.weekday)) &&
    (fromMinute === undefined || input.minute >= fromMinute) &&
    (toMinute === undefined || input.minute < toMinute);
}

/** The type a constraint compares its argument's value as, in `context.arguments`. */
function comparedType(constraint: Constraint): ArgumentType | undefined {
  switch (constraint.kind) {
    case 'min':
    case 'max':
      return 'number';
    case 'one_of':
      return typeof constraint.values[0] as ArgumentType;
    default:
      return undefined;
  }
}

/*
 * Decimals: Cedar compares the decimal texts toDecimalText writes, and the numbers they come from
 * compare the same way. toDecimalText writes a number's shortest round-trip text
 * (Number.prototype.toString), and reading a decimal back to the nearest double is monotonic, so
 * for two numbers it accepts, x ≤ y exactly when decimal(x) ≤ decimal(y), and x == y (-0 and 0
 * alike) exactly when the decimals are equal. A number it refuses never reaches Cedar: `has`
 * fails, and so does the constraint.
 */

/** An argument as Cedar's decimal holds it, or undefined when it does not reach Cedar. */
function decimalArgument(value: unknown): number | undefined {
  return cedarArgument(value, 'number') === undefined ? undefined : (value as number);
}

/** A bound or listed number, which compileGrant wrote as a decimal literal. */
function decimalLiteral(value: Scalar): number {
  if (typeof value !== 'number' || toDecimalText(value) === undefined) throw new NotCompilable();
  return value;
}
