/** Ends a break-glass grant before it expires, and records `grant.changed` (revoked). */
import { OperationError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { BreakGlassGrant, BreakGlassRepository } from '../store/types.js';

export interface RevokeBreakGlassRequest {
  /** The grant id (from `warden grant list`). */
  readonly id: string;
  /** Why, for the audit trail (optional). */
  readonly reason?: string;
  readonly by: string;
}

export interface RevokeBreakGlassDependencies extends OperationContext {
  readonly breakGlass: Pick<BreakGlassRepository, 'listActive' | 'revoke'>;
}

/**
 * Ends the grant now and returns it. Throws OperationError (OPERATION_NOT_FOUND) when no grant
 * with that id is in force (never granted, expired, or revoked already).
 */
export async function revokeBreakGlass(
  dependencies: RevokeBreakGlassDependencies,
  request: RevokeBreakGlassRequest,
): Promise<BreakGlassGrant> {
  const at = dependencies.now();
  const grant = (await dependencies.breakGlass.listActive(at)).find(
    (entry) => entry.id === request.id,
  );
  if (grant === undefined || !(await dependencies.breakGlass.revoke(request.id, at))) {
    throw new OperationError(
      'OPERATION_NOT_FOUND',
      `no break-glass grant ${request.id} is in force`,
    );
  }
  const dot = grant.tool.indexOf('.');
  await dependencies.record({
    event: 'grant.changed',
    time: new Date(at).toISOString(),
    environment: dependencies.environment,
    agent: grant.agent,
    upstream: grant.tool.slice(0, dot),
    tool: grant.tool.slice(dot + 1),
    details: {
      kind: 'breakglass',
      id: grant.id,
      agent: grant.agent,
      tool: grant.tool,
      revoked: true,
      ...(request.reason !== undefined && { reason: request.reason }),
      by: request.by,
    },
  });
  return { ...grant, revokedAt: at };
}
