/**
 * Decisions on calls that name what they use: resources/read, (un)subscribe and a 2026-07-28
 * subscriptions/listen by URI, prompts/get by name, and completion/complete by its prompt or
 * resource-template ref.
 *
 * A resource URI is judged in its normal form and forwarded in it, so the upstream reads exactly
 * what was decided; a URI that stays ambiguous is refused (WARDEN_RESOURCE_URI_AMBIGUOUS).
 */
import type { Decision } from '../domain/decision.js';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import {
  withResourceUris,
  type Completion,
  type PromptGet,
  type ResourceRead,
  type Subscription,
} from '../domain/mcp-call.js';
import { authorizationOf, type Authorization } from './authorization.js';
import { decideAction, type DecisionSources } from './decide-action.js';
import { normaliseResourceUri, refuseResourceUri } from './normalise-uri.js';

export type NamedTargetCall = ResourceRead | Subscription | PromptGet | Completion;

/** Decides a call that names resources or a prompt on `upstream` for `identity`. */
export function authorizeNamedTarget(
  sources: DecisionSources,
  call: NamedTargetCall,
  identity: Identity,
  upstream: string,
): Authorization {
  switch (call.kind) {
    case 'resource_read':
      return authorizeResources(sources, call, [call.uri], identity, upstream, false);
    case 'subscription':
      return authorizeResources(sources, call, call.uris, identity, upstream, false);
    case 'prompt_get':
      return authorizePrompt(sources, call.name, identity, upstream);
    case 'completion':
      return call.ref.type === 'prompt'
        ? authorizePrompt(sources, call.ref.name, identity, upstream)
        : authorizeResources(sources, call, [call.ref.uri], identity, upstream, true);
  }
}

function authorizePrompt(
  sources: DecisionSources,
  name: string,
  identity: Identity,
  upstream: string,
): Authorization {
  return authorizationOf(decideAction(sources, 'get_prompt', identity, { upstream, name }));
}

/**
 * Each URI is decided as a read; the first refusal refuses the call. `template`: the URI is a
 * completion's uriTemplate, whose `{…}` are kept as written.
 */
function authorizeResources(
  sources: DecisionSources,
  call: ResourceRead | Subscription | Completion,
  sent: readonly string[],
  identity: Identity,
  upstream: string,
  template: boolean,
): Authorization {
  const decisions: Decision[] = [];
  const normal: string[] = [];
  for (const text of sent) {
    const uri = normaliseResourceUri(text, { template });
    if (!uri.ok) {
      const decision = refuseResourceUri(uri.problem);
      const details = { reasons: decision.reasons };
      return {
        decision,
        error: new WardenError('WARDEN_RESOURCE_URI_AMBIGUOUS', undefined, { details }),
      };
    }
    const decision = decideAction(sources, 'read_resource', identity, { upstream, name: uri.uri });
    if (decision.effect === 'deny') return authorizationOf(decision);
    decisions.push(decision);
    normal.push(uri.uri);
  }
  const authorization = authorizationOf(combine(decisions));
  return normal.every((uri, index) => uri === sent[index])
    ? authorization
    : { ...authorization, rewriteRequest: withResourceUris(call, normal) };
}

/** One decision for a call that reads several resources, each of them allowed. */
function combine(decisions: readonly Decision[]): Decision {
  const [first] = decisions;
  if (decisions.length === 1 && first !== undefined) return first;
  const monitored = decisions.find((decision) => decision.monitored)?.monitored;
  const policyVersion = first?.policyVersion;
  return {
    effect: 'allow',
    reasons: decisions.flatMap((one) => one.reasons),
    policies: [...new Set(decisions.flatMap((one) => one.policies))],
    ...(monitored !== undefined && { monitored }),
    ...(policyVersion !== undefined && { policyVersion }),
  };
}
