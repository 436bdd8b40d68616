/**
 * Refuse: a denial, once recorded (record-decision.ts), is answered. Refusals are JSON-RPC errors
 * (code, reasons and reference in error.data), except a denied tools/call of a caller whose roles
 * ask for `denials: result` (or policy.denials): that is answered as a tool result with isError,
 * whose text tells a model which constraint failed and what is allowed, so an agent can correct
 * its call. Values of a named list are never told (the reasons name the list, not its entries).
 */
import type { CallFacts } from '../../audit/call-entry.js';
import type { PolicyConfig } from '../../config/policy-config.js';
import type { Decision } from '../../domain/decision.js';
import type { WardenError } from '../../domain/errors.js';
import { toWireError } from '../../domain/errors.js';
import type { JsonRpcId } from '../../domain/jsonrpc.js';
import type { McpRequestCall } from '../../domain/mcp-call.js';
import type { CallObserver, ClientMessageContext } from '../../mcp/message-gate.js';
import { answerWithToolError } from './answer-with-tool-error.js';
import type { MessageStageOptions } from './message-context.js';
import { recordDenial, recordRefusal } from './record-decision.js';

/** The `_meta` key of a refusal answered as a tool result. */
export const REFUSAL_META_KEY = 'warden/refusal';

export async function refuseCall(
  call: McpRequestCall,
  context: ClientMessageContext,
  options: Pick<MessageStageOptions, 'recorder' | 'policy'>,
  facts: CallFacts,
  decision: Decision,
  error: WardenError,
): Promise<CallObserver> {
  const answerAsResult =
    call.kind === 'tool_call' &&
    error.code === 'WARDEN_POLICY_DENIED' &&
    options.policy !== undefined &&
    denialFormOf(options.policy(), context.identity.roles) === 'result';
  if (!answerAsResult) return recordDenial(options.recorder, facts, decision, error);
  await recordRefusal(options.recorder, facts, decision, error);
  return toolResultRefusal(call.message.id, error, context.requestId);
}

/**
 * The roles that say how their denials are answered decide; if they disagree, the JSON-RPC error
 * (which every client reads) wins. No role says: policy.denials.
 */
export function denialFormOf(
  policy: Pick<PolicyConfig, 'roles' | 'denials'>,
  roles: readonly string[],
): 'error' | 'result' {
  const said = new Set(
    roles.flatMap((role) => {
      const form = policy.roles.get(role)?.denials;
      return form === undefined ? [] : [form];
    }),
  );
  if (said.size === 0) return policy.denials;
  return said.size === 1 && said.has('result') ? 'result' : 'error';
}

function toolResultRefusal(id: JsonRpcId, error: WardenError, reference: string): CallObserver {
  const wire = toWireError(error, reference);
  const reasons = Array.isArray(wire.data['reasons'])
    ? wire.data['reasons'].filter((reason): reason is string => typeof reason === 'string')
    : [];
  const why = reasons.length > 0 ? ` Why: ${reasons.join('; ')}.` : '';
  const text =
    `Warden refused this call (${error.code}, reference ${reference}): ${wire.message}${why} ` +
    'Change the arguments to fit what is allowed, or ask a person for access.';
  return answerWithToolError(id, text, {
    [REFUSAL_META_KEY]: { code: error.code, reasons, reference },
  });
}
