/**
 * Whether a caller holds anything at all on an upstream: a grant of one of its roles that names
 * the upstream (or every upstream, for trusted wildcard roles), a break-glass grant in force for
 * one of its tools, or a hand-written Cedar permit that could apply to it there. A caller with
 * none of these may not open a session or send a request there (WARDEN_NO_GRANT_ON_UPSTREAM), so
 * it cannot take a share of an upstream it may not use, nor start a stdio child for it.
 *
 * This is a coarse gate before the full decision, not a replacement for it. It errs towards
 * letting a caller through: hand-written permits are judged by their scope (principal and
 * resource) alone, their `when`/`unless` conditions ignored, so a rule that might apply counts;
 * constraints of grants (time windows, states, tenants) are ignored for the same reason; and a
 * caller whose roles all run in monitor mode is let through, as its calls would be. Expiry is the
 * one condition read: an expired grant gives nothing, from its first second past `expires`.
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { EntityUidJson, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyConfig } from '../config/policy-config.js';
import type { Decision } from '../domain/decision.js';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import type { MessageAuthorizer } from './authorize-message.js';
import { loadCedarFiles, type HandWrittenPolicy } from './cedar-files.js';
import { BREAKGLASS_POLICY } from './compile-grants.js';

/** Every upstream: a grant or permit whose target is not limited to one. */
const ANY_UPSTREAM = '*';

interface IndexedGrant {
  readonly id: string;
  readonly role: string;
  /** The upstream it names, or ANY_UPSTREAM. */
  readonly upstream: string;
  readonly expiresAt: number | undefined;
}

/** Who a hand-written permit's scope can match. */
type PrincipalScope =
  | { readonly kind: 'any' }
  | { readonly kind: 'agent'; readonly id: string }
  | { readonly kind: 'role'; readonly id: string };

interface PermitScope {
  readonly id: string;
  readonly principal: PrincipalScope;
  /** The upstream its resource scope is limited to, or ANY_UPSTREAM. */
  readonly upstream: string;
}

/** What the gate reads of one policy in force, prepared once per policy load. */
export interface UpstreamGrantIndex {
  readonly grantsByRole: ReadonlyMap<string, readonly IndexedGrant[]>;
  readonly permits: readonly PermitScope[];
  readonly monitoredRoles: ReadonlySet<string>;
}

/** The question: may this caller use this upstream at all, now? */
export interface UpstreamUseRequest {
  readonly identity: Pick<Identity, 'agent' | 'roles'>;
  readonly upstream: string;
  readonly now: number;
  /** `upstream.tool` targets of the break-glass grants in force for this agent, and their ids. */
  readonly breakglass: ReadonlyMap<string, string>;
}

/**
 * Indexes the grants and the hand-written permits of a policy by upstream. Reads the policy's
 * Cedar files (already validated by the engine); throws PolicyLoadError if they no longer load.
 */
export function indexUpstreamGrants(policy: PolicyConfig): UpstreamGrantIndex {
  return indexWith(policy, loadCedarFiles(policy.files));
}

/** As indexUpstreamGrants, with the hand-written policies given. */
export function indexWith(
  policy: PolicyConfig,
  handWritten: readonly HandWrittenPolicy[],
): UpstreamGrantIndex {
  const grantsByRole = new Map<string, IndexedGrant[]>();
  for (const grant of policy.grants) {
    const indexed: IndexedGrant = {
      id: grant.id,
      role: grant.role,
      upstream: grant.target.upstream,
      expiresAt: grant.expiresAt,
    };
    grantsByRole.set(grant.role, [...(grantsByRole.get(grant.role) ?? []), indexed]);
  }
  const permits = handWritten
    .filter((policy) => policy.effect === 'permit')
    .map((policy) => scopeOf(policy));
  const monitoredRoles = new Set(
    [...policy.roles.values()].filter((role) => role.mode === 'monitor').map((role) => role.name),
  );
  return { grantsByRole, permits, monitoredRoles };
}

/** The decision, as a value: which grant or rule lets the caller use the upstream, or why none. */
export function decideUpstreamUse(
  index: UpstreamGrantIndex,
  request: UpstreamUseRequest,
): Decision {
  const { identity, upstream, now } = request;
  const covers = (target: string) => target === ANY_UPSTREAM || target === upstream;

  const grants = identity.roles.flatMap((role) =>
    (index.grantsByRole.get(role) ?? []).filter(
      (grant) => covers(grant.upstream) && (grant.expiresAt === undefined || now < grant.expiresAt),
    ),
  );
  if (grants.length > 0) {
    return allow(
      grants.map((grant) => grant.id),
      grants.map((grant) => `grant ${grant.id} of role ${grant.role} names upstream ${upstream}`),
    );
  }
  const breakglass = [...request.breakglass].filter(([target]) =>
    target.startsWith(`${upstream}.`),
  );
  if (breakglass.length > 0) {
    return allow(
      [BREAKGLASS_POLICY.id],
      breakglass.map(([target, id]) => `break-glass grant ${id} for ${target} is in force`),
    );
  }
  const permits = index.permits.filter(
    (permit) => covers(permit.upstream) && principalMatches(permit.principal, identity),
  );
  if (permits.length > 0) {
    return allow(
      permits.map((permit) => permit.id),
      permits.map((permit) => `policy ${permit.id} may permit it on upstream ${upstream}`),
    );
  }
  const roles = identity.roles.length > 0 ? identity.roles.join(', ') : '(none)';
  const reasons = [
    `no grant of role(s) ${roles}, break-glass grant or policy gives agent ${identity.agent} anything on upstream ${upstream}`,
  ];
  // Monitor mode lets would-be denials through; the engine would let this caller's calls through.
  if (identity.roles.length > 0 && identity.roles.every((role) => index.monitoredRoles.has(role))) {
    return {
      effect: 'allow',
      reasons: ['monitor mode: would have been denied'],
      policies: [],
      monitored: { effect: 'deny', reasons },
    };
  }
  return { effect: 'deny', reasons, policies: [] };
}

/**
 * An authorizer that first refuses every request on an upstream where the caller holds nothing
 * (initialize and 2026-07-28 requests included), so the pipeline records the refusal as
 * `call.denied` and no session or child is started for it. Other requests are decided by `inner`.
 */
export function refuseWithoutUpstreamGrant(
  inner: MessageAuthorizer,
  decide: (identity: Identity, upstream: string) => Decision,
): MessageAuthorizer {
  return {
    ...inner,
    async authorize(call, identity, upstream, listTools) {
      const use = decide(identity, upstream);
      if (use.effect === 'deny') {
        return {
          decision: use,
          error: new WardenError('WARDEN_NO_GRANT_ON_UPSTREAM', undefined, {
            details: { reasons: use.reasons },
          }),
        };
      }
      return inner.authorize(call, identity, upstream, listTools);
    },
  };
}

function allow(policies: readonly string[], reasons: readonly string[]): Decision {
  return { effect: 'allow', reasons, policies };
}

function principalMatches(scope: PrincipalScope, identity: Pick<Identity, 'agent' | 'roles'>) {
  switch (scope.kind) {
    case 'any':
      return true;
    case 'agent':
      return scope.id === identity.agent;
    case 'role':
      return identity.roles.includes(scope.id);
  }
}

/** A permit's scope; anything not recognised widens it (any principal, any upstream). */
function scopeOf(policy: HandWrittenPolicy): PermitScope {
  const parsed = cedar.policyToJson(policy.text);
  if (parsed.type === 'failure') {
    return { id: policy.id, principal: { kind: 'any' }, upstream: ANY_UPSTREAM };
  }
  return {
    id: policy.id,
    principal: principalScope(parsed.json.principal),
    upstream: resourceUpstream(parsed.json.resource),
  };
}

/** The entity a scope constraint names (`==`, `in`, or the `in` of `is … in`). */
function scopeEntity(
  constraint: PolicyJson['principal'] | PolicyJson['resource'],
): { type: string; id: string } | undefined {
  let target: unknown;
  if (constraint.op === '==' || constraint.op === 'in') target = constraint;
  else if (constraint.op === 'is') target = constraint.in;
  if (target === undefined || target === null || typeof target !== 'object') return undefined;
  if (!('entity' in target)) return undefined;
  const entity = target.entity as EntityUidJson;
  const uid = '__entity' in entity ? entity.__entity : entity;
  return { type: uid.type.split('::').pop() ?? '', id: uid.id };
}

function principalScope(constraint: PolicyJson['principal']): PrincipalScope {
  const entity = scopeEntity(constraint);
  if (entity?.type === 'Agent') return { kind: 'agent', id: entity.id };
  if (entity?.type === 'Role') return { kind: 'role', id: entity.id };
  return { kind: 'any' };
}

/** Upstream names hold no `.` or `:`, so the upstream is the part of an id before either. */
function resourceUpstream(constraint: PolicyJson['resource']): string {
  const entity = scopeEntity(constraint);
  switch (entity?.type) {
    case 'Upstream':
      return entity.id;
    case 'Tool':
    case 'Prompt':
      return entity.id.split('.')[0] ?? ANY_UPSTREAM;
    case 'Resource':
      return entity.id.split(':')[0] ?? ANY_UPSTREAM;
    default:
      return ANY_UPSTREAM;
  }
}
