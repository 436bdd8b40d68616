/**
 * The policy configuration in one normalised shape: scopes resolved into atomic constraints,
 * grants (nested under roles or in the seed's flat form) resolved to their targets, and every
 * reference between names checked, so the policy compiler never meets a dangling name.
 */
import type { z } from 'zod';
import { suggestName } from './closest-name.js';
import { ARGUMENT_CONSTRAINT_KEYS, type policyConfigShape } from './policy-schema.js';

export type Scalar = string | number | boolean;

/** Applies only when the argument at `path` holds one of `values`. */
export interface ConstraintCondition {
  readonly path: string;
  readonly values: readonly Scalar[];
}

interface ConstraintBase {
  /** The scope it came from and its position there, e.g. `max_amount_1000_eur[0]`. */
  readonly scope: string;
  readonly condition: ConstraintCondition | undefined;
}

export type Constraint = ConstraintBase &
  (
    | { readonly kind: 'min'; readonly path: string; readonly bound: number }
    | { readonly kind: 'max'; readonly path: string; readonly bound: number }
    | {
        readonly kind: 'one_of';
        readonly path: string;
        readonly values: readonly Scalar[];
        /** The named list the values came from, for explanations. */
        readonly list: string | undefined;
      }
    | { readonly kind: 'pattern'; readonly path: string; readonly pattern: string }
    | { readonly kind: 'max_length'; readonly path: string; readonly bound: number }
    | { readonly kind: 'required'; readonly path: string }
    | { readonly kind: 'forbidden'; readonly path: string }
    | { readonly kind: 'tenant'; readonly values: readonly string[] }
    | { readonly kind: 'region'; readonly values: readonly string[] }
    | {
        readonly kind: 'time';
        /** 0 = Monday … 6 = Sunday. */
        readonly days: readonly number[] | undefined;
        /** Minutes after UTC midnight, start inclusive, end exclusive. */
        readonly fromMinute: number | undefined;
        readonly toMinute: number | undefined;
      }
    | { readonly kind: 'state'; readonly state: string; readonly on: boolean }
  );

/** What a grant gives access to. `name` is `*` for every tool or prompt of the upstream. */
export type GrantTarget =
  | { readonly kind: 'tool'; readonly upstream: string; readonly name: string }
  | { readonly kind: 'prompt'; readonly upstream: string; readonly name: string }
  /** `prefix` true: every URI starting with `uri`. */
  | {
      readonly kind: 'resource';
      readonly upstream: string;
      readonly uri: string;
      readonly prefix: boolean;
    };

export interface GrantConfig {
  /** Stable id: policy id in Cedar, the audit log and explanations. */
  readonly id: string;
  readonly role: string;
  /** `'*'` upstream with `'*'` name: every tool of every upstream (trusted roles only). */
  readonly target: GrantTarget;
  readonly scopes: readonly string[];
  readonly constraints: readonly Constraint[];
  /**
   * Argument paths its scopes mark `text: raw`: exempt from the refusal of text with edge
   * whitespace, control, invisible or format characters.
   */
  readonly rawText: readonly string[];
  readonly requiresApproval: boolean;
  readonly approvers: readonly string[];
  readonly approvalsRequired: 1 | 2;
  readonly approvalTimeoutMs: number;
  /** `approval_delivery`: how its held calls wait; undefined: as `approvals.delivery` says. */
  readonly approvalDelivery: 'auto' | 'hold' | 'retry' | 'task' | undefined;
  /** Epoch ms from which the grant no longer applies. */
  readonly expiresAt: number | undefined;
  readonly owner: string | undefined;
  readonly reason: string | undefined;
  /** Where it is written in the config, for error messages (`roles.finance_executor.grants.0`). */
  readonly keyPath: string;
}

export interface RoleConfig {
  readonly name: string;
  readonly mode: 'enforce' | 'monitor';
  readonly trusted: boolean;
  readonly description: string | undefined;
  /** How its denied tool calls are answered; undefined: as policy.denials says. */
  readonly denials?: 'error' | 'result';
}

export interface QuotaConfig {
  readonly name: string;
  readonly per: 'agent' | 'role' | 'tool' | 'user';
  readonly tool: string | undefined;
  readonly role: string | undefined;
  readonly sum: string | undefined;
  readonly limit: number;
  readonly windowMs: number;
}

export interface PolicyConfig {
  readonly region: string | undefined;
  readonly lists: ReadonlyMap<string, readonly Scalar[]>;
  readonly roles: ReadonlyMap<string, RoleConfig>;
  readonly grants: readonly GrantConfig[];
  /** Each state's default when no operator has set it. */
  readonly states: ReadonlyMap<string, boolean>;
  readonly quotas: readonly QuotaConfig[];
  /** Absolute paths of hand-written Cedar files. */
  readonly files: readonly string[];
  readonly toolPinning: 'trust_on_first_use' | 'require_approval';
  readonly breakglassMaxTtlMs: number;
  readonly approvalTimeoutMs: number;
  /** How a denied tools/call is answered when the caller's roles do not say. */
  readonly denials: 'error' | 'result';
  /**
   * `policy_source`: `file`, this file's policy and agents (SIGHUP re-reads it); `store`, the
   * newest bundle pushed with `warden policy push`, followed by every replica.
   */
  readonly source: PolicySource;
}

/** Where a gateway takes its policy and agents from. */
export type PolicySource = 'file' | 'store';

type RawPolicy = z.output<z.ZodObject<typeof policyConfigShape>>;
type RawGrant = RawPolicy['grants'][number];
type RawConstraint = Extract<RawPolicy['scopes'][string], { arg?: unknown }>;

/** A scope resolved: its constraints, and the argument paths it marks `text: raw`. */
interface ResolvedScope {
  readonly constraints: readonly Constraint[];
  readonly rawText: readonly string[];
}

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DEFAULT_APPROVER_ROLE = 'approver';

/**
 * Resolves the raw policy keys into a PolicyConfig. Problems are pushed onto `issues` as
 * `key.path: what is wrong`; the result is only meaningful when none were added.
 */
export function toPolicyConfig(
  raw: RawPolicy & { readonly policy_source?: PolicySource },
  upstreamNames: readonly string[],
  resolvePath: (file: string) => string,
  issues: string[],
): PolicyConfig {
  const lists = new Map(Object.entries(raw.lists));
  const states = new Map(
    Object.entries(raw.policy_states).map(([key, state]) => [key, state.default === 'on']),
  );
  const roles = new Map<string, RoleConfig>();
  for (const [roleName, role] of Object.entries(raw.roles)) {
    roles.set(roleName, {
      name: roleName,
      mode: role.mode,
      trusted: role.trusted,
      description: role.description,
      ...(role.denials !== undefined && { denials: role.denials }),
    });
  }
  const scopes = resolveScopes(raw, lists, states, issues);
  const resolver: GrantResolver = {
    upstreamNames,
    scopes,
    approvalTimeoutMs: raw.policy.approval_timeout,
    issues,
    usedIds: new Set(),
  };
  const grants: GrantConfig[] = [];
  for (const [roleName, role] of Object.entries(raw.roles)) {
    role.grants.forEach((grant, index) => {
      const resolved = resolveGrant(roleName, grant, `roles.${roleName}.grants.${index}`, resolver);
      if (resolved) grants.push(resolved);
    });
  }
  raw.grants.forEach((grant, index) => {
    // The seed's flat form may name a role declared nowhere else: it is an enforcing role.
    if (!roles.has(grant.agent_role)) {
      roles.set(grant.agent_role, {
        name: grant.agent_role,
        mode: 'enforce',
        trusted: false,
        description: undefined,
      });
    }
    const resolved = resolveGrant(grant.agent_role, grant, `grants.${index}`, resolver);
    if (resolved) grants.push(resolved);
  });
  checkRoleRules(roles, grants, issues);
  checkArgumentTypes(grants, issues);
  const quotas = raw.quotas.map((quota, index): QuotaConfig => {
    if (quota.tool !== undefined) checkQualifiedTool(quota.tool, `quotas.${index}.tool`, resolver);
    // A quota on a role nobody can hold would never count anything.
    if (quota.role !== undefined && !roles.has(quota.role)) {
      issues.push(
        `quotas.${index}.role: role "${quota.role}" is not defined${suggestName(quota.role, roles.keys())} (defined: ${[...roles.keys()].join(', ') || 'none'})`,
      );
    }
    return {
      name: quota.name,
      per: quota.per,
      tool: quota.tool,
      role: quota.role,
      sum: quota.sum,
      limit: quota.limit,
      windowMs: quota.window,
    };
  });
  return {
    region: raw.region,
    lists,
    roles,
    grants,
    states,
    quotas,
    files: raw.policy.files.map(resolvePath),
    toolPinning: raw.policy.tool_pinning,
    breakglassMaxTtlMs: raw.policy.breakglass_max_ttl,
    approvalTimeoutMs: raw.policy.approval_timeout,
    denials: raw.policy.denials,
    source: raw.policy_source ?? 'file',
  };
}

function resolveScopes(
  raw: RawPolicy,
  lists: ReadonlyMap<string, readonly Scalar[]>,
  states: ReadonlyMap<string, boolean>,
  issues: string[],
): Map<string, ResolvedScope> {
  const scopes = new Map<string, ResolvedScope>();
  for (const [scopeName, scope] of Object.entries(raw.scopes)) {
    const entries = Array.isArray(scope) ? scope : [scope];
    const constraints = entries.flatMap((entry, index) => {
      const label = entries.length > 1 ? `${scopeName}[${index}]` : scopeName;
      const keyPath = Array.isArray(scope) ? `scopes.${scopeName}.${index}` : `scopes.${scopeName}`;
      return resolveConstraint(entry, label, keyPath, lists, states, issues);
    });
    const rawText = entries.flatMap((entry) =>
      entry.text === 'raw' && entry.arg !== undefined ? [entry.arg] : [],
    );
    scopes.set(scopeName, { constraints, rawText });
  }
  return scopes;
}

function resolveConstraint(
  entry: RawConstraint,
  scope: string,
  keyPath: string,
  lists: ReadonlyMap<string, readonly Scalar[]>,
  states: ReadonlyMap<string, boolean>,
  issues: string[],
): Constraint[] {
  const condition: ConstraintCondition | undefined = entry.when && {
    path: entry.when.arg,
    values: entry.when.in ?? (entry.when.equals === undefined ? [] : [entry.when.equals]),
  };
  const base = { scope, condition };
  if (entry.tenant) return [{ ...base, kind: 'tenant', values: entry.tenant }];
  if (entry.region) return [{ ...base, kind: 'region', values: entry.region }];
  if (entry.time) {
    const [from, to] = entry.time.hours?.split('-').map(toMinuteOfDay) ?? [undefined, undefined];
    if (from !== undefined && to !== undefined && from >= to) {
      issues.push(`${keyPath}.time.hours: the window ends before it starts`);
    }
    return [
      {
        ...base,
        kind: 'time',
        days: entry.time.days?.map((day) => WEEKDAYS.indexOf(day)),
        fromMinute: from,
        toMinute: to,
      },
    ];
  }
  if (entry.state) {
    return Object.entries(entry.state).flatMap(([state, value]): Constraint[] => {
      if (!states.has(state)) {
        issues.push(
          `${keyPath}.state.${state}: no such policy state${suggestName(state, states.keys())} (declare it in policy_states)`,
        );
        return [];
      }
      return [{ ...base, kind: 'state', state, on: value === 'on' }];
    });
  }
  const path = entry.arg;
  if (path === undefined) return [];
  if (entry.forbidden === true) return [{ ...base, kind: 'forbidden', path }];
  // `{ arg, text: raw }` alone only marks the argument's text mode; it constrains nothing.
  if (!ARGUMENT_CONSTRAINT_KEYS.some((key) => entry[key] !== undefined)) return [];
  const constraints: Constraint[] = [];
  // A value constraint needs the argument present unless `required: false` says otherwise.
  if (entry.required !== false) constraints.push({ ...base, kind: 'required', path });
  if (entry.min !== undefined) constraints.push({ ...base, kind: 'min', path, bound: entry.min });
  if (entry.max !== undefined) constraints.push({ ...base, kind: 'max', path, bound: entry.max });
  if (entry.in !== undefined) {
    constraints.push({ ...base, kind: 'one_of', path, values: entry.in, list: undefined });
  }
  if (entry.in_list !== undefined) {
    const values = lists.get(entry.in_list);
    if (values === undefined) {
      issues.push(
        `${keyPath}.in_list: no list named "${entry.in_list}" under lists${suggestName(entry.in_list, lists.keys())}`,
      );
    } else {
      constraints.push({ ...base, kind: 'one_of', path, values, list: entry.in_list });
    }
  }
  if (entry.pattern !== undefined) {
    constraints.push({ ...base, kind: 'pattern', path, pattern: entry.pattern });
  }
  if (entry.max_length !== undefined) {
    constraints.push({ ...base, kind: 'max_length', path, bound: entry.max_length });
  }
  return constraints;
}

function toMinuteOfDay(text: string): number {
  const [hours, minutes] = text.split(':').map(Number);
  return (hours ?? 0) * 60 + (minutes ?? 0);
}

interface GrantResolver {
  readonly upstreamNames: readonly string[];
  readonly scopes: ReadonlyMap<string, ResolvedScope>;
  readonly approvalTimeoutMs: number;
  readonly issues: string[];
  readonly usedIds: Set<string>;
}

function resolveGrant(
  role: string,
  grant: RawGrant | Omit<RawGrant, 'agent_role'>,
  keyPath: string,
  resolver: GrantResolver,
): GrantConfig | undefined {
  const { issues } = resolver;
  const targets = [grant.tool, grant.resource, grant.prompt].filter((value) => value !== undefined);
  if (targets.length !== 1) {
    issues.push(`${keyPath}: a grant names exactly one of tool, resource or prompt`);
    return undefined;
  }
  const target = resolveTarget(grant, keyPath, resolver);
  if (target === undefined) return undefined;
  const scopeNames =
    grant.scope === undefined ? [] : Array.isArray(grant.scope) ? grant.scope : [grant.scope];
  const constraints: Constraint[] = [];
  const rawText = new Set<string>();
  for (const scopeName of scopeNames) {
    const scope = resolver.scopes.get(scopeName);
    if (scope === undefined) {
      issues.push(
        `${keyPath}.scope: no scope named "${scopeName}" under scopes${suggestName(scopeName, resolver.scopes.keys())}`,
      );
      continue;
    }
    constraints.push(...scope.constraints);
    for (const path of scope.rawText) rawText.add(path);
  }
  if (target.kind !== 'tool' && constraints.some((c) => 'path' in c)) {
    issues.push(`${keyPath}.scope: argument constraints apply to tool calls only`);
  }
  if (grant.approvals_required === 2 && !grant.requires_approval) {
    issues.push(`${keyPath}.approvals_required: set requires_approval: true as well`);
  }
  if (grant.approval_delivery !== undefined && !grant.requires_approval) {
    issues.push(`${keyPath}.approval_delivery: set requires_approval: true as well`);
  }
  const expiresAt = grant.expires === undefined ? undefined : Date.parse(grant.expires);
  if (expiresAt !== undefined && !Number.isFinite(expiresAt)) {
    issues.push(`${keyPath}.expires: not a date`);
  }
  const id = grant.id ?? defaultGrantId(role, target);
  let uniqueId = id;
  for (let n = 2; resolver.usedIds.has(uniqueId); n++) uniqueId = `${id}#${n}`;
  if (grant.id !== undefined && uniqueId !== id) {
    issues.push(`${keyPath}.id: "${id}" is used by another grant`);
  }
  resolver.usedIds.add(uniqueId);
  return {
    id: uniqueId,
    role,
    target,
    scopes: scopeNames,
    constraints,
    rawText: [...rawText],
    requiresApproval: grant.requires_approval,
    approvers: grant.approvers ?? [DEFAULT_APPROVER_ROLE],
    approvalsRequired: grant.approvals_required,
    approvalTimeoutMs: grant.approval_timeout ?? resolver.approvalTimeoutMs,
    approvalDelivery: grant.approval_delivery,
    expiresAt,
    owner: grant.owner,
    reason: grant.reason,
    keyPath,
  };
}

function defaultGrantId(role: string, target: GrantTarget): string {
  const what =
    target.upstream === '*'
      ? '*'
      : target.kind === 'resource'
        ? `${target.upstream}:${target.uri}${target.prefix ? '*' : ''}`
        : `${target.upstream}.${target.name}`;
  return `${role}/${target.kind}/${what}`.replace(/[^A-Za-z0-9_.:/*-]/g, '_').slice(0, 120);
}

function resolveTarget(
  grant: Omit<RawGrant, 'agent_role'>,
  keyPath: string,
  resolver: GrantResolver,
): GrantTarget | undefined {
  if (grant.resource === '*') return { kind: 'resource', upstream: '*', uri: '', prefix: true };
  if (grant.resource !== undefined) {
    const colon = grant.resource.indexOf(':');
    const upstream = colon === -1 ? '' : grant.resource.slice(0, colon);
    let uri = grant.resource.slice(colon + 1);
    if (!checkUpstream(upstream, `${keyPath}.resource`, resolver, true)) return undefined;
    const prefix = uri.endsWith('*');
    if (prefix) uri = uri.slice(0, -1);
    if (uri.includes('*')) {
      resolver.issues.push(`${keyPath}.resource: only a trailing * is allowed`);
      return undefined;
    }
    return { kind: 'resource', upstream, uri, prefix };
  }
  const kind = grant.tool !== undefined ? 'tool' : 'prompt';
  const text = grant.tool ?? grant.prompt ?? '';
  const key = `${keyPath}.${kind}`;
  if (text === '*') {
    if (grant.upstream !== undefined)
      return checkedTarget(kind, grant.upstream, '*', key, resolver);
    return { kind, upstream: '*', name: '*' };
  }
  const dot = text.indexOf('.');
  if (dot === -1 || grant.upstream !== undefined) {
    // A bare name: its upstream is the grant's `upstream`, or the only one configured.
    const upstream =
      grant.upstream ??
      (resolver.upstreamNames.length === 1 ? resolver.upstreamNames[0] : undefined);
    if (upstream === undefined) {
      resolver.issues.push(
        `${key}: "${text}" names no upstream and ${resolver.upstreamNames.length} are configured; write <upstream>.${text} or add upstream:`,
      );
      return undefined;
    }
    return checkedTarget(kind, upstream, text, key, resolver);
  }
  return checkedTarget(kind, text.slice(0, dot), text.slice(dot + 1), key, resolver);
}

function checkedTarget(
  kind: 'tool' | 'prompt',
  upstream: string,
  name: string,
  key: string,
  resolver: GrantResolver,
): GrantTarget | undefined {
  if (!checkUpstream(upstream, key, resolver, false)) return undefined;
  if (name === '' || (name.includes('*') && name !== '*')) {
    resolver.issues.push(`${key}: name a ${kind} exactly, or use ${upstream}.* (trusted roles)`);
    return undefined;
  }
  return { kind, upstream, name };
}

function checkUpstream(
  upstream: string,
  key: string,
  resolver: GrantResolver,
  resource: boolean,
): boolean {
  if (resolver.upstreamNames.includes(upstream)) return true;
  resolver.issues.push(
    upstream === ''
      ? `${key}: write ${resource ? '<upstream>:<uri>' : '<upstream>.<name>'}`
      : `${key}: no upstream named "${upstream}"${suggestName(upstream, resolver.upstreamNames)} (configured: ${resolver.upstreamNames.join(', ')})`,
  );
  return false;
}

function checkQualifiedTool(text: string, key: string, resolver: GrantResolver): void {
  const dot = text.indexOf('.');
  checkUpstream(dot === -1 ? '' : text.slice(0, dot), key, resolver, false);
}

/** Is this grant's target more than one named thing? */
export function isWildcardTarget(target: GrantTarget): boolean {
  return target.kind === 'resource' ? target.prefix : target.name === '*';
}

function checkRoleRules(
  roles: ReadonlyMap<string, RoleConfig>,
  grants: readonly GrantConfig[],
  issues: string[],
): void {
  for (const grant of grants) {
    const role = roles.get(grant.role);
    if (role === undefined) {
      // Nested grants always have their role; flat ones were given one above.
      continue;
    }
    const wildcard = isWildcardTarget(grant.target);
    if (wildcard && grant.requiresApproval) {
      issues.push(
        `${grant.keyPath}: a grant that requires approval must name its ${grant.target.kind} exactly, never a wildcard`,
      );
    } else if (wildcard && !role.trusted && grant.target.upstream === '*') {
      issues.push(
        `${grant.keyPath}: wildcard grant to role "${role.name}" refused: everything on every upstream is for trusted roles only (trusted: true)`,
      );
    } else if (wildcard && grant.target.kind !== 'resource' && !role.trusted) {
      issues.push(
        `${grant.keyPath}: wildcard grant to role "${role.name}" refused: no "all tools" for generic agents; name the tools, or mark the role trusted: true`,
      );
    }
    if (role.mode === 'monitor' && grant.requiresApproval) {
      issues.push(
        `${grant.keyPath}: role "${role.name}" is in monitor mode, which is never allowed for roles with approval-gated grants`,
      );
    }
  }
}

type ArgumentType = 'number' | 'string' | 'boolean';

/** Cedar types one context shape per action: an argument path is compared as one type only. */
function checkArgumentTypes(grants: readonly GrantConfig[], issues: string[]): void {
  const seen = new Map<string, { type: ArgumentType; scope: string }>();
  const note = (path: string, type: ArgumentType, scope: string, keyPath: string) => {
    const earlier = seen.get(path);
    if (earlier === undefined) {
      seen.set(path, { type, scope });
    } else if (earlier.type !== type) {
      issues.push(
        `${keyPath}: argument "${path}" is compared as a ${type} by scope ${scope} but as a ${earlier.type} by scope ${earlier.scope}; use one type per argument name`,
      );
    }
  };
  for (const grant of grants) {
    for (const constraint of grant.constraints) {
      if (constraint.kind === 'one_of' && uniformType(constraint.values) === undefined) {
        issues.push(
          `${grant.keyPath}: scope ${constraint.scope} lists values of mixed types for "${constraint.path}"`,
        );
      }
      const type = argumentTypeOf(constraint);
      if (type !== undefined && 'path' in constraint) {
        note(constraint.path, type, constraint.scope, grant.keyPath);
      }
      if (constraint.condition) {
        const conditionType = uniformType(constraint.condition.values);
        if (conditionType === undefined) {
          issues.push(`${grant.keyPath}: the condition of ${constraint.scope} mixes value types`);
        } else {
          note(constraint.condition.path, conditionType, constraint.scope, grant.keyPath);
        }
      }
    }
  }
}

/** The type a constraint compares its argument as; undefined for presence checks. */
export function argumentTypeOf(constraint: Constraint): ArgumentType | undefined {
  switch (constraint.kind) {
    case 'min':
    case 'max':
      return 'number';
    case 'pattern':
    case 'max_length':
      return 'string';
    case 'one_of':
      return uniformType(constraint.values) ?? 'string';
    default:
      return undefined;
  }
}

function uniformType(values: readonly Scalar[]): ArgumentType | undefined {
  const types = new Set(values.map((value) => typeof value as ArgumentType));
  return types.size === 1 ? [...types][0] : undefined;
}
