/**
 * Record the decision (audit/): durably in the hash-chained log before anything is forwarded; if
 * the log cannot take it, the call is refused (fail closed) unless its tool is configured to
 * fail open. A denial is recorded, then answered with its specific error.
 */
import type { CallFacts } from '../../audit/call-entry.js';
import type { CallOutcome, CallRecorder } from '../../audit/call-recorder.js';
import { startCallSpan } from '../../audit/call-spans.js';
import type { Decision } from '../../domain/decision.js';
import { WardenError } from '../../domain/errors.js';
import { classifyMcpCall, type McpRequestCall } from '../../domain/mcp-call.js';
import type { ClientMessageContext } from '../../mcp/message-gate.js';
import type { Authorization } from '../../policy/authorize-message.js';
import { callFacts, type MessageStageOptions } from './message-context.js';

/** Records a refusal, then throws its error: nothing is forwarded. */
export async function recordDenial(
  recorder: CallRecorder,
  facts: CallFacts,
  decision: Decision,
  error: unknown,
): Promise<never> {
  await recordRefusal(recorder, facts, decision, error);
  throw error;
}

/** Records a refusal (and ends its span); rejects when the log cannot take it. */
export async function recordRefusal(
  recorder: CallRecorder,
  facts: CallFacts,
  decision: Decision,
  error: unknown,
): Promise<void> {
  await recorder.recordDecision(facts, decision, {
    ...(error instanceof WardenError && { errorCode: error.code }),
  });
  startCallSpan(facts, decision).failed(error);
}

/** Records the decision to let the call go, in the form the upstream will be sent. */
export function recordAllowed(
  call: McpRequestCall,
  context: ClientMessageContext,
  authorization: Authorization,
  allowed: Decision,
  { recorder, failsOpen }: Pick<MessageStageOptions, 'recorder' | 'failsOpen'>,
): Promise<CallOutcome> {
  // The upstream gets the form the policy judged, and the log records that form.
  const forward = authorization.rewriteRequest;
  const facts = callFacts(forward === undefined ? call : classifyMcpCall(forward), context);
  const tool = call.kind === 'tool_call' ? call.name : undefined;
  return recorder.recordDecision(facts, allowed, {
    failOpen: failsOpen?.(context.upstreamName, tool) ?? false,
  });
}
