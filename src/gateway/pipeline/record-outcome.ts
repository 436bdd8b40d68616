/**
 * Record the outcome (audit/): the relay tells the returned observer how the call ended (the
 * upstream's answer, or no answer: failure, timeout, the client gone), and the result or error is
 * recorded with its latency; the observer also carries the listing filter and the normalised
 * request the policy judged.
 */
import type { CallFacts } from '../../audit/call-entry.js';
import type { CallOutcome } from '../../audit/call-recorder.js';
import { startCallSpan } from '../../audit/call-spans.js';
import type { Decision } from '../../domain/decision.js';
import type { CallObserver } from '../../mcp/message-gate.js';
import type { Authorization } from '../../policy/authorize-message.js';

export function observeOutcome(
  facts: CallFacts,
  allowed: Decision,
  authorization: Authorization,
  recorded: CallOutcome,
): CallObserver {
  const span = startCallSpan(facts, allowed);
  const { rewrite, rewriteRequest: forward } = authorization;
  return {
    ...(rewrite && { rewrite }),
    ...(forward && { forward }),
    answered(response) {
      recorded.answered(response);
      span.answered(response);
    },
    failed(error) {
      recorded.failed(error);
      span.failed(error);
    },
  };
}
