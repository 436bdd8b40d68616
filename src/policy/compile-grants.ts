/**
 * Grants compiled to Cedar policies. Each grant becomes one permit for its action (call_tool,
 * read_resource, get_prompt) carrying every constraint of its scopes and its expiry; a tool grant
 * also gets a `list_tools` permit (visibility) with the same expiry and context constraints but
 * none on arguments, since a listing has none. Constraints are also compiled one by one, for
 * explanations: which constraint of which grant failed.
 */
import type { Constraint, GrantConfig, GrantTarget } from '../config/policy-config.js';
import type { FactRegistry } from './cedar-expressions.js';
import { cedarString, compileConstraint, readsArguments } from './cedar-expressions.js';
import { PolicyLoadError } from './policy-load-error.js';
import type { PolicyAction } from './cedar-schema.js';
import { NAMESPACE } from './cedar-schema.js';
import { normaliseResourceUri } from './normalise-uri.js';

export interface CompiledPolicy {
  readonly id: string;
  readonly text: string;
}

export interface CompiledGrant {
  readonly grant: GrantConfig;
  /** The permit for the grant's action. */
  readonly permit: CompiledPolicy;
  /** Tool grants only: the list_tools permit. */
  readonly visibility: CompiledPolicy | undefined;
  /** One policy per check (expiry first, then each constraint), each true when the check passes. */
  readonly checks: readonly { readonly policy: CompiledPolicy; readonly check: GrantCheck }[];
}

export type GrantCheck =
  | { readonly kind: 'expiry'; readonly expiresAt: number }
  | { readonly kind: 'constraint'; readonly constraint: Constraint };

/** The policy id suffix of a grant's visibility permit. */
export const VISIBILITY_SUFFIX = '@list';

/**
 * Break-glass: an active emergency grant lets the agent call (and see) exactly that tool. The
 * context carries `breakglass` only for an agent holding one, so other calls pay nothing for it.
 */
export const BREAKGLASS_POLICY: CompiledPolicy = {
  id: 'warden.breakglass',
  text: `permit (principal, action in [${entity('Action', 'call_tool')}, ${entity('Action', 'list_tools')}], resource is ${NAMESPACE}::Tool) when { context has breakglass && context.breakglass.contains(context.target) };`,
};

export function entity(type: string, id: string): string {
  return `${NAMESPACE}::${type}::${cedarString(id)}`;
}

export function grantAction(target: GrantTarget): PolicyAction {
  return target.kind === 'tool'
    ? 'call_tool'
    : target.kind === 'resource'
      ? 'read_resource'
      : 'get_prompt';
}

export function compileGrant(grant: GrantConfig, facts: FactRegistry): CompiledGrant {
  const principal = `principal in ${entity('Role', grant.role)}`;
  const resource = resourceScope(grant.target);
  const expiry =
    grant.expiresAt === undefined
      ? undefined
      : `context.now < ${Math.floor(grant.expiresAt / 1000)}`;
  const conditions = [
    ...(expiry === undefined ? [] : [expiry]),
    ...targetConditions(grant),
    ...grant.constraints.map((constraint) => compileConstraint(constraint, facts)),
  ];
  const permit = {
    id: grant.id,
    text: permitText(principal, grantAction(grant.target), resource, conditions),
  };
  const visibility =
    grant.target.kind === 'tool'
      ? {
          id: `${grant.id}${VISIBILITY_SUFFIX}`,
          text: permitText(principal, 'list_tools', resource, [
            ...(expiry === undefined ? [] : [expiry]),
            ...grant.constraints
              .filter((constraint) => !readsArguments(constraint))
              .map((constraint) => compileConstraint(constraint, facts)),
          ]),
        }
      : undefined;
  const checks: { policy: CompiledPolicy; check: GrantCheck }[] = [];
  if (expiry !== undefined && grant.expiresAt !== undefined) {
    checks.push({
      policy: { id: `${grant.id}!expiry`, text: checkText(expiry) },
      check: { kind: 'expiry', expiresAt: grant.expiresAt },
    });
  }
  grant.constraints.forEach((constraint, index) => {
    checks.push({
      policy: { id: `${grant.id}!${index}`, text: checkText(compileConstraint(constraint, facts)) },
      check: { kind: 'constraint', constraint },
    });
  });
  return { grant, permit, visibility, checks };
}

function resourceScope(target: GrantTarget): string {
  if (target.kind === 'resource' && target.upstream === '*')
    return `resource is ${NAMESPACE}::Resource`;
  if (target.kind === 'resource') return `resource in ${entity('Upstream', target.upstream)}`;
  const type = target.kind === 'tool' ? 'Tool' : 'Prompt';
  if (target.upstream === '*') return `resource is ${NAMESPACE}::${type}`;
  if (target.name === '*') {
    return `resource is ${NAMESPACE}::${type} in ${entity('Upstream', target.upstream)}`;
  }
  return `resource == ${entity(type, `${target.upstream}.${target.name}`)}`;
}

/**
 * Resources are named by URI in the context, in the normal form requests are judged in (see
 * normalise-uri.ts): exact, or by prefix. A grant naming an ambiguous URI does not load.
 */
function targetConditions(grant: GrantConfig): string[] {
  const named = namedResourceTarget(grant);
  if (named === undefined) return [];
  const { qualified, prefix } = named;
  if (!prefix) return [`context.target == ${cedarString(qualified)}`];
  // In a Cedar pattern `*` is the wildcard; a literal star is written `\*`.
  const literal = JSON.stringify(qualified).slice(1, -1).replace(/\*/g, '\\*');
  return [`context.target like "${literal}*"`];
}

/**
 * The `upstream:uri` (normal form) a resource grant of one upstream names, exactly or as a
 * prefix; undefined for other grants.
 */
export function namedResourceTarget({
  target,
  keyPath,
}: GrantConfig): { readonly qualified: string; readonly prefix: boolean } | undefined {
  if (target.kind !== 'resource' || target.upstream === '*') return undefined;
  const uri = normaliseResourceUri(target.uri, { template: true, prefix: target.prefix });
  if (!uri.ok) throw new PolicyLoadError([`${keyPath}.resource: the URI ${uri.problem}`]);
  return { qualified: `${target.upstream}:${uri.uri}`, prefix: target.prefix };
}

function permitText(
  principal: string,
  action: PolicyAction,
  resource: string,
  conditions: readonly string[],
): string {
  const head = `permit (${principal}, action == ${entity('Action', action)}, ${resource})`;
  return conditions.length === 0 ? `${head};` : `${head} when { ${conditions.join(' && ')} };`;
}

function checkText(condition: string): string {
  return `permit (principal, action, resource) when { ${condition} };`;
}
