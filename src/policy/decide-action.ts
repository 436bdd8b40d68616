/** One question to the policy in force: may this identity take this action on this target now? */
import type { Decision } from '../domain/decision.js';
import type { Identity } from '../domain/identity.js';
import type { PolicyAction } from './cedar-schema.js';
import type { PolicyEngine, PolicyRequest } from './policy-engine.js';
import type { PolicyInputs } from './policy-inputs.js';

/** What a decision is taken under: the engine in force, the run-time inputs, the clock. */
export interface DecisionSources {
  /** The policy in force (it changes when a reload succeeds). */
  readonly engine: () => PolicyEngine;
  readonly inputs: Pick<PolicyInputs, 'states' | 'breakglassFor'>;
  readonly now: () => number;
}

/** What an action names: a tool, resource URI or prompt on an upstream, with its arguments. */
export interface ActionTarget {
  readonly upstream: string;
  readonly name: string;
  readonly arguments?: unknown;
}

const NO_TARGETS: ReadonlySet<string> = new Set();

/** The policy's decision on one action, with the policy states and break-glass grants in force now. */
export function decideAction(
  sources: DecisionSources,
  action: PolicyAction,
  identity: Identity,
  target: ActionTarget,
): Decision {
  const at = sources.now();
  const grants = sources.inputs.breakglassFor(identity.agent, at);
  const request: PolicyRequest = {
    action,
    identity,
    upstream: target.upstream,
    name: target.name,
    ...(target.arguments !== undefined && { arguments: target.arguments }),
    now: at,
    states: sources.inputs.states(),
    // Most calls have no break-glass grant: they share one empty set instead of building one each.
    breakglass: grants.size === 0 ? NO_TARGETS : new Set(grants.keys()),
  };
  return sources.engine().decide(request);
}
