/**
 * Switches an operator policy state (e.g. `payments_freeze`) and records `grant.changed`. A
 * running gateway reads the states from the store within half a second.
 */
import type { Config } from '../config/config.js';
import { OperationError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { PolicyStateRepository } from '../store/types.js';
import { readPolicyStates, type PolicyStateValue } from './read-policy-states.js';

export interface SetPolicyStateRequest {
  /** A state declared under policy_states. */
  readonly name: string;
  readonly on: boolean;
  /** Why, for the audit trail. */
  readonly reason: string;
  readonly by: string;
}

export interface SetPolicyStateDependencies extends OperationContext {
  readonly config: Pick<Config, 'policy' | 'source'>;
  readonly policyStates: Pick<PolicyStateRepository, 'list' | 'set'>;
}

/**
 * Sets the state and returns its value before. Throws OperationError (OPERATION_INVALID) for a
 * state the config does not declare, or an empty reason.
 */
export async function setPolicyState(
  dependencies: SetPolicyStateDependencies,
  request: SetPolicyStateRequest,
): Promise<{ readonly before: PolicyStateValue }> {
  requireConfiguredState(request.name, dependencies.config);
  if (request.reason.trim() === '') {
    throw new OperationError('OPERATION_INVALID', 'a policy state change must say why (a reason)');
  }
  const before = (await readPolicyStates(dependencies)).get(request.name);
  const changedAt = dependencies.now();
  await dependencies.policyStates.set({
    name: request.name,
    on: request.on,
    changedAt,
    changedBy: request.by,
    reason: request.reason,
  });
  await dependencies.record({
    event: 'grant.changed',
    time: new Date(changedAt).toISOString(),
    environment: dependencies.environment,
    details: {
      kind: 'policy_state',
      name: request.name,
      on: request.on,
      reason: request.reason,
      by: request.by,
    },
  });
  // Present: the name was checked against the same configuration above.
  return { before: before as PolicyStateValue };
}

/** Throws OperationError (OPERATION_INVALID) naming the configured states when `name` is not one. */
export function requireConfiguredState(
  name: string,
  config: Pick<Config, 'policy' | 'source'>,
): void {
  if (config.policy.states.has(name)) return;
  const known = [...config.policy.states.keys()];
  throw new OperationError(
    'OPERATION_INVALID',
    `no policy state "${name}" is configured in ${config.source} (${known.length === 0 ? 'none is declared under policy_states' : `configured: ${known.join(', ')}`})`,
  );
}
