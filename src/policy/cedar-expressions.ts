/**
 * Constraints as Cedar expressions over the request context. Numbers are compared as Cedar
 * `decimal` (four fractional digits); regular expressions, string lengths and the conditions of
 * conditional constraints, which Cedar cannot express, are computed by Warden per call and handed
 * to Cedar as named facts.
 *
 * Comparisons that grant (`in`, `in_list`, `pattern`, `max_length`, `min`, `max`) match the value
 * exactly. A condition restricts (it applies a cap), so it matches on the normal form of
 * normalise-text.ts: a near-miss of the condition's value still gets the cap.
 */
import type { Constraint, Scalar } from '../config/policy-config.js';
import { meetsRestrictiveCondition, restrictiveKey } from './normalise-text.js';

/** A fact Warden computes from the arguments for Cedar: `context.facts.contains(id)` when true. */
export interface ArgumentFact {
  readonly id: string;
  readonly path: string;
  /** Is the fact true of the argument's value (undefined when the argument is absent)? */
  readonly test: (value: unknown) => boolean;
}

/** The most characters a pattern is tested against; longer values fail the pattern. */
const PATTERN_INPUT_LIMIT = 10_000;

/** A Cedar string literal. */
export function cedarString(text: string): string {
  return JSON.stringify(text);
}

/** The Cedar decimal text of a number, or undefined when Cedar's decimal cannot hold it exactly. */
export function toDecimalText(value: number): string | undefined {
  if (!Number.isFinite(value) || Math.abs(value) >= 922_337_203_685_477) return undefined;
  const text = value.toString();
  if (text.includes('e')) {
    // Exponent form: tiny values (more than four fractional digits) or huge ones (excluded above).
    return value === 0 ? '0.0' : undefined;
  }
  const [whole, fraction = ''] = text.split('.');
  if (fraction.length > 4) return undefined;
  return `${whole}.${fraction === '' ? '0' : fraction}`;
}

function decimalLiteral(value: number): string {
  const text = toDecimalText(value);
  if (text === undefined) throw new RangeError(`${value} cannot be compared exactly as a decimal`);
  return `decimal(${cedarString(text)})`;
}

/** `context.arguments.a.b`, with the `has` guards that make a missing argument fail, not error. */
function argumentAccess(path: string): { guard: string; value: string } {
  const parts = path.split('.');
  const guards: string[] = [];
  let access = 'context.arguments';
  for (const part of parts) {
    guards.push(`${access} has ${cedarAttribute(part)}`);
    access = `${access}${attributeAccess(part)}`;
  }
  return { guard: guards.join(' && '), value: access };
}

/** Words Cedar reserves: an argument may still be called `in` or `if`, written in quotes. */
const RESERVED = new Set([
  'true',
  'false',
  'if',
  'then',
  'else',
  'in',
  'is',
  'like',
  'has',
  '__cedar',
]);

function isPlainIdentifier(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !RESERVED.has(name);
}

function cedarAttribute(name: string): string {
  return isPlainIdentifier(name) ? name : cedarString(name);
}

export function attributeAccess(name: string): string {
  return isPlainIdentifier(name) ? `.${name}` : `[${cedarString(name)}]`;
}

function scalarLiteral(value: Scalar): string {
  if (typeof value === 'number') return decimalLiteral(value);
  if (typeof value === 'boolean') return String(value);
  return cedarString(value);
}

function setLiteral(values: readonly Scalar[]): string {
  return `[${values.map(scalarLiteral).join(', ')}]`;
}

/** Assigns fact ids while constraints are compiled, so equal facts are computed once per call. */
export class FactRegistry {
  private readonly byKey = new Map<string, ArgumentFact>();

  register(
    kind: 'pattern' | 'max_length' | 'when',
    path: string,
    parameter: string | number | readonly Scalar[],
  ): string {
    const key = `${kind}\u0000${path}\u0000${JSON.stringify(parameter)}`;
    const existing = this.byKey.get(key);
    if (existing) return existing.id;
    const id = `f${this.byKey.size}`;
    this.byKey.set(key, { id, path, test: factTest(kind, parameter) });
    return id;
  }

  facts(): ArgumentFact[] {
    return [...this.byKey.values()];
  }
}

function factTest(
  kind: 'pattern' | 'max_length' | 'when',
  parameter: string | number | readonly Scalar[],
): (value: unknown) => boolean {
  switch (kind) {
    case 'pattern': {
      const expression = new RegExp(String(parameter), 'u');
      return (value) =>
        typeof value === 'string' && value.length <= PATTERN_INPUT_LIMIT && expression.test(value);
    }
    case 'max_length':
      return (value) => typeof value === 'string' && [...value].length <= Number(parameter);
    case 'when': {
      const values = Array.isArray(parameter) ? (parameter as readonly Scalar[]) : [];
      const keys = new Set(values.flatMap((value) => restrictiveKey(value) ?? []));
      return (value) => value !== undefined && meetsRestrictiveCondition(value, keys);
    }
  }
}

const WEEKDAY_COUNT = 7;

/** The Cedar condition that holds exactly when `constraint` is met. */
export function compileConstraint(constraint: Constraint, facts: FactRegistry): string {
  const body = compileBody(constraint, facts);
  if (constraint.condition === undefined) return body;
  const { path, values } = constraint.condition;
  const applies = `context.facts.contains(${cedarString(facts.register('when', path, values))})`;
  return `(!${applies} || (${body}))`;
}

function compileBody(constraint: Constraint, facts: FactRegistry): string {
  switch (constraint.kind) {
    case 'required':
      return `context.present.contains(${cedarString(constraint.path)})`;
    case 'forbidden':
      return `!context.present.contains(${cedarString(constraint.path)})`;
    case 'min':
    case 'max': {
      const { guard, value } = argumentAccess(constraint.path);
      const method = constraint.kind === 'min' ? 'greaterThanOrEqual' : 'lessThanOrEqual';
      return `(${guard} && ${value}.${method}(${decimalLiteral(constraint.bound)}))`;
    }
    case 'one_of': {
      const { guard, value } = argumentAccess(constraint.path);
      return `(${guard} && ${setLiteral(constraint.values)}.contains(${value}))`;
    }
    case 'pattern':
    case 'max_length': {
      const parameter = constraint.kind === 'pattern' ? constraint.pattern : constraint.bound;
      const id = facts.register(constraint.kind, constraint.path, parameter);
      return `context.facts.contains(${cedarString(id)})`;
    }
    case 'tenant':
      return `${setLiteral(constraint.values)}.contains(context.tenant)`;
    case 'region':
      return `${setLiteral(constraint.values)}.contains(context.region)`;
    case 'time': {
      const parts: string[] = [];
      if (constraint.days && constraint.days.length < WEEKDAY_COUNT) {
        parts.push(`[${constraint.days.join(', ')}].contains(context.weekday)`);
      }
      if (constraint.fromMinute !== undefined)
        parts.push(`context.minute >= ${constraint.fromMinute}`);
      if (constraint.toMinute !== undefined) parts.push(`context.minute < ${constraint.toMinute}`);
      return parts.length === 0 ? 'true' : `(${parts.join(' && ')})`;
    }
    case 'state':
      return `${constraint.on ? '' : '!'}context.states${attributeAccess(constraint.state)}`;
  }
}

/** Does this constraint look at the call's arguments (directly or through its condition)? */
export function readsArguments(constraint: Constraint): boolean {
  return 'path' in constraint || constraint.condition !== undefined;
}
