/**
 * Break-glass grants: short, audited emergency access to one tool for one agent. A grant always
 * has a reason and an expiry no later than policy.breakglass_max_ttl; granting and revoking one
 * are recorded as `grant.changed`, and every use raises an alert at the gateway
 * (`breakglass.used`). A running gateway reads grants from the store within half a second.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import { formatDuration } from '../config/duration.js';
import { OperationError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { BreakGlassGrant, BreakGlassRepository } from '../store/types.js';
import { parsePolicyTarget } from './policy-target.js';

export type { BreakGlassGrant };

export interface GrantBreakGlassRequest {
  /** The agent (from `agents:`). */
  readonly agent: string;
  /** The one tool it may call, `upstream.tool`; never a wildcard. */
  readonly tool: string;
  readonly ttlMs: number;
  /** Why, for the audit trail. */
  readonly reason: string;
  readonly by: string;
}

export interface GrantBreakGlassDependencies extends OperationContext {
  readonly config: Pick<Config, 'agents' | 'upstreams' | 'policy' | 'source'>;
  readonly breakGlass: Pick<BreakGlassRepository, 'add'>;
  /** Grant ids; random UUIDs by default. */
  readonly newId?: () => string;
}

/**
 * Lets one agent call one tool until the grant expires. Throws OperationError
 * (OPERATION_INVALID) for an empty reason, a lifetime that is not positive or longer than
 * policy.breakglass_max_ttl, an agent not in the registry, or a tool that is not one exact
 * `upstream.tool` of a configured upstream.
 */
export async function grantBreakGlass(
  dependencies: GrantBreakGlassDependencies,
  request: GrantBreakGlassRequest,
): Promise<BreakGlassGrant> {
  const { config } = dependencies;
  if (request.reason.trim() === '') {
    throw new OperationError('OPERATION_INVALID', 'a break-glass grant must say why (a reason)');
  }
  if (!(request.ttlMs > 0)) {
    throw new OperationError('OPERATION_INVALID', 'a break-glass grant needs a positive lifetime');
  }
  const maxMs = config.policy.breakglassMaxTtlMs;
  if (request.ttlMs > maxMs) {
    throw new OperationError(
      'OPERATION_INVALID',
      `a lifetime of ${formatDuration(request.ttlMs)} is longer than policy.breakglass_max_ttl (${formatDuration(maxMs)}); a break-glass grant must be short`,
    );
  }
  const agent = config.agents.get(request.agent);
  if (agent === undefined) {
    throw new OperationError(
      'OPERATION_INVALID',
      `agent "${request.agent}" is not in the agent registry of ${config.source}`,
    );
  }
  const target = parsePolicyTarget('tool', request.tool, config);
  if (target.name.includes('*')) {
    throw new OperationError(
      'OPERATION_INVALID',
      'a break-glass grant names one tool exactly, never a wildcard',
    );
  }
  const createdAt = dependencies.now();
  const grant: BreakGlassGrant = {
    id: (dependencies.newId ?? randomUUID)(),
    agent: agent.id,
    tool: target.label,
    reason: request.reason,
    createdBy: request.by,
    createdAt,
    expiresAt: createdAt + request.ttlMs,
    revokedAt: undefined,
  };
  await dependencies.breakGlass.add(grant);
  await dependencies.record({
    event: 'grant.changed',
    time: new Date(createdAt).toISOString(),
    environment: dependencies.environment,
    agent: agent.id,
    upstream: target.upstream,
    tool: target.name,
    details: {
      kind: 'breakglass',
      id: grant.id,
      agent: grant.agent,
      tool: grant.tool,
      expiresAt: new Date(grant.expiresAt).toISOString(),
      reason: grant.reason,
      by: request.by,
    },
  });
  return grant;
}
