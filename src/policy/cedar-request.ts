/**
 * A policy request as Cedar receives it: principal, resource, entities and context. This is the
 * one place that decides what value reaches Cedar for each attribute and argument path; the
 * compiled-grants path (compiled-grants-decision.ts) reads the same values through the helpers
 * exported here, so the two can only differ in how they evaluate, never in what they evaluate.
 */
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { isRecord } from '../domain/json-object.js';
import { toDecimalText, type ArgumentFact } from './cedar-expressions.js';
import { NAMESPACE, type PolicyAction } from './cedar-schema.js';
import { normaliseText } from './normalise-text.js';
import type { PolicyRequest } from './policy-engine.js';

/** The type an argument path is compared as (one per path, checked at config load). */
export type ArgumentType = 'number' | 'string' | 'boolean';

export interface ArgumentPath {
  readonly path: string;
  readonly type: ArgumentType;
}

/** What of a request the policies of one slice can look at. */
export interface ContextShape {
  /**
   * The context attributes the policies read (undefined: all). Cedar's per-call cost grows with
   * the request it is handed, so a call carries only what its policies can look at.
   */
  readonly attributes: ReadonlySet<string> | undefined;
  /** Argument paths whose values reach Cedar, with the type they are compared as. */
  readonly valuePaths: readonly ArgumentPath[];
  /** Argument paths whose presence a constraint checks. */
  readonly presencePaths: readonly string[];
  readonly facts: readonly ArgumentFact[];
}

export type ResourceType = 'Tool' | 'Resource' | 'Prompt';

export function resourceTypeOf(action: PolicyAction): ResourceType {
  switch (action) {
    case 'read_resource':
      return 'Resource';
    case 'get_prompt':
      return 'Prompt';
    default:
      return 'Tool';
  }
}

/** The id of the request's resource entity: `upstream.name`, or `upstream:uri` for a resource. */
export function resourceIdOf(request: Pick<PolicyRequest, 'action' | 'upstream' | 'name'>): string {
  return request.action === 'read_resource'
    ? `${request.upstream}:${request.name}`
    : `${request.upstream}.${request.name}`;
}

export function resourceOf(request: PolicyRequest): { type: string; id: string } {
  return { type: `${NAMESPACE}::${resourceTypeOf(request.action)}`, id: resourceIdOf(request) };
}

/** `context.target`: what grants and break-glass grants name. */
export function targetOf(request: Pick<PolicyRequest, 'action' | 'upstream' | 'name'>): string {
  return resourceIdOf(request);
}

export function entitiesOf(request: PolicyRequest, withResource: boolean): EntityJson[] {
  const agent: EntityJson = {
    uid: { type: `${NAMESPACE}::Agent`, id: request.identity.agent },
    attrs: {},
    parents: request.identity.roles.map((role) => ({ type: `${NAMESPACE}::Role`, id: role })),
  };
  if (!withResource) return [agent];
  return [
    agent,
    {
      uid: resourceOf(request),
      attrs: {},
      parents: [{ type: `${NAMESPACE}::Upstream`, id: request.upstream }],
    },
  ];
}

const MINUTES_PER_DAY = 1440;

/** `context.now`, `context.weekday` (Monday = 0, as the config numbers days) and `context.minute`. */
export function clockOf(now: number): { now: number; weekday: number; minute: number } {
  return {
    now: Math.floor(now / 1000),
    weekday: (new Date(now).getUTCDay() + 6) % 7,
    minute: Math.floor((now / 60_000) % MINUTES_PER_DAY),
  };
}

/** The call's arguments as the policy reads them: anything but an object counts as none. */
export function argumentsOf(request: PolicyRequest): Record<string, unknown> {
  return isRecord(request.arguments) ? request.arguments : {};
}

export function buildContext(
  request: PolicyRequest,
  shape: ContextShape,
  region: string,
): Record<string, never> {
  const wanted = shape.attributes;
  const wants = (name: string) => wanted === undefined || wanted.has(name);
  const context: Record<string, unknown> = {};
  const put = (name: string, value: () => unknown) => {
    if (wants(name)) context[name] = value();
  };
  put('user', () => request.identity.user ?? '');
  put('agent', () => request.identity.agent);
  put('tenant', () => request.identity.tenant ?? '');
  put('environment', () => request.identity.environment);
  put('region', () => region);
  put('model', () => request.identity.declaredModel ?? '');
  put('upstream', () => request.upstream);
  const clock = clockOf(request.now);
  put('now', () => clock.now);
  put('weekday', () => clock.weekday);
  put('minute', () => clock.minute);
  put('states', () => Object.fromEntries(request.states));
  if (request.breakglass.size > 0) {
    context['breakglass'] = [...request.breakglass];
    context['target'] = targetOf(request);
  } else {
    put('target', () => targetOf(request));
  }
  if (request.action === 'call_tool') {
    const args = argumentsOf(request);
    put('arguments', () => argumentValues(args, shape.valuePaths));
    put('normalized', () => ({ arguments: normalizedTexts(args, shape.valuePaths) }));
    put('present', () => shape.presencePaths.filter((path) => valueAt(args, path) !== undefined));
    put('facts', () =>
      shape.facts.filter((fact) => fact.test(valueAt(args, fact.path))).map((fact) => fact.id),
    );
  }
  return context as Record<string, never>;
}

/**
 * The Cedar decimal text of an argument compared as `type`, the argument itself for text and
 * booleans, or undefined when it does not reach Cedar: a value of another type, or a number
 * Cedar's decimal cannot hold exactly (then `has` fails and so does the constraint).
 */
export function cedarArgument(value: unknown, type: ArgumentType): unknown {
  if (typeof value !== type) return undefined;
  return type === 'number' ? toDecimalText(value as number) : value;
}

/** The arguments Cedar compares, converted to the type each is compared as. */
function argumentValues(
  args: Record<string, unknown>,
  paths: readonly ArgumentPath[],
): Record<string, unknown> {
  return collectArguments(args, paths, (value, type) => {
    const converted = cedarArgument(value, type);
    return type === 'number' && converted !== undefined
      ? { __extn: { fn: 'decimal', arg: converted } }
      : converted;
  });
}

/** The normal form of every text argument compared as text: `context.normalized.arguments`. */
function normalizedTexts(
  args: Record<string, unknown>,
  paths: readonly ArgumentPath[],
): Record<string, unknown> {
  return collectArguments(args, paths, (value, type) =>
    type === 'string' && typeof value === 'string' ? normaliseText(value) : undefined,
  );
}

/** A record of the converted value at each path; paths whose value converts to undefined are left out. */
function collectArguments(
  args: Record<string, unknown>,
  paths: readonly ArgumentPath[],
  convert: (value: unknown, type: ArgumentType) => unknown,
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const { path, type } of paths) {
    const converted = convert(valueAt(args, path), type);
    if (converted !== undefined) setAt(result, path, converted);
  }
  return result;
}

const LONE_SURROGATE = /\p{Cs}/u;

/** Text Cedar can read: a string without a lone UTF-16 surrogate. */
export function isCedarText(value: unknown): value is string {
  return typeof value === 'string' && !LONE_SURROGATE.test(value);
}

/**
 * Does every string in this call (values and keys) read as text? cedar-wasm reads a call as JSON
 * and throws on a lone surrogate from inside its WebAssembly, without unwinding that instance's
 * stack: some 1,500 such calls later, every call into Cedar fails, for every engine in the
 * process. A call that is not all text is therefore never made.
 */
export function holdsOnlyCedarText(value: unknown): boolean {
  if (typeof value === 'string') return isCedarText(value);
  if (Array.isArray(value)) return value.every(holdsOnlyCedarText);
  if (typeof value !== 'object' || value === null) return true;
  for (const [key, item] of Object.entries(value)) {
    if (!isCedarText(key) || !holdsOnlyCedarText(item)) return false;
  }
  return true;
}

/** The value at a dot-separated path of own properties, or undefined. */
export function valueAt(value: unknown, path: string): unknown {
  return valueAtParts(value, path.split('.'));
}

/** valueAt with the path already split. */
export function valueAtParts(value: unknown, parts: readonly string[]): unknown {
  let current = value;
  for (const part of parts) {
    if (!isRecord(current) || !Object.hasOwn(current, part)) return undefined;
    current = current[part];
  }
  return current;
}

function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    // Own properties only: a path through `__proto__` must not reach (and write) a prototype.
    const next = Object.hasOwn(node, part) ? node[part] : undefined;
    if (isRecord(next)) {
      node = next;
    } else {
      const created: Record<string, unknown> = {};
      defineOwn(node, part, created);
      node = created;
    }
  }
  defineOwn(node, parts[parts.length - 1] ?? '', value);
}

/** `node[key] = value` as an own data property, even for `__proto__`. */
function defineOwn(node: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
}
