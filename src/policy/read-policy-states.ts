/**
 * The configured policy states as a running gateway sees them: the operator's value where one
 * was set, else the configured default. A state stored but no longer configured is left out, as
 * the gateway leaves it out.
 */
import type { Config } from '../config/config.js';
import type { PolicyStateRepository } from '../store/types.js';

export interface PolicyStateValue {
  readonly name: string;
  readonly on: boolean;
  /** The value from policy_states in the config. */
  readonly defaultOn: boolean;
  /** The operator's last change, when one was made. */
  readonly change:
    { readonly at: number; readonly by: string; readonly reason: string } | undefined;
}

export interface ReadPolicyStatesDependencies {
  readonly config: Pick<Config, 'policy'>;
  readonly policyStates: Pick<PolicyStateRepository, 'list'>;
}

/** Every configured state, in the config's order. */
export async function readPolicyStates(
  dependencies: ReadPolicyStatesDependencies,
): Promise<Map<string, PolicyStateValue>> {
  const stored = new Map(
    (await dependencies.policyStates.list()).map((state) => [state.name, state]),
  );
  const states = new Map<string, PolicyStateValue>();
  for (const [name, defaultOn] of dependencies.config.policy.states) {
    const set = stored.get(name);
    states.set(name, {
      name,
      on: set?.on ?? defaultOn,
      defaultOn,
      change:
        set === undefined
          ? undefined
          : { at: set.changedAt, by: set.changedBy, reason: set.reason },
    });
  }
  return states;
}
