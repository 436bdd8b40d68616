/**
 * Every check a request passes, in order. The listener (../http-server.ts) only creates the
 * exchange and runs these stages; each stage is one file in this folder.
 *
 * For each HTTP exchange (EXCHANGE_STAGES):
 *   1. answer probes     answer-probes.ts: /healthz and /readyz, before any check
 *   2. guard             guard-host-and-origin.ts: a foreign Host or Origin is refused (DNS
 *                        rebinding); refuse-while-draining.ts: a stopping gateway takes no more
 *   3. resolve           resolve-target.ts: the path, decoded once, names a gateway route (public
 *                        documents, the token endpoint, the admin API) or an upstream's endpoint
 *   4. authenticate      authenticate.ts, with identity/: bearer token or client certificate →
 *                        Identity, for every MCP endpoint and every admin route alike; a refused
 *                        caller is recorded (auth.failed, aggregated per source) and challenged
 *   5. dispatch          dispatch.ts: a gateway route answers (the admin API checks the caller's
 *                        role through createAdminAccessCheck, recorded like stage 4), or the MCP
 *                        endpoint (mcp/, transport only) reads the message within the size and
 *                        depth limits, finds the session, which answers only to the identity that
 *                        opened it (session owner), and asks the message stages below
 *
 * For each client message the MCP endpoint parsed (createMessageStages, the endpoint's gate):
 *   6. classify          classify-message.ts: the message becomes one typed McpCall (tool call,
 *                        resource read, prompt get, listing, completion, subscription, plumbing,
 *                        malformed) that every later stage reads; a cancellation withdraws a held
 *                        approval; a notification may not name a request's method
 *   7. authorize         authorize-call.ts, with policy/: the pinned tool definition, the tool's
 *                        own inputSchema, Cedar (grants, scopes, hand-written rules, policy states,
 *                        break-glass), quotas (checked, not charged); listings are filtered. A
 *                        failing policy stage denies. A denial is recorded (audit/), then refused
 *   8. approve           approve-call.ts, with approvals/: an approval-gated call is held for a
 *                        person (the approvals service records the request); once granted it is
 *                        decided again under the rules in force then (else WARDEN_APPROVAL_STALE)
 *   9. record decision   record-decision.ts, with audit/: the decision is durably in the
 *                        hash-chained log before anything is forwarded, or the call is refused
 *                        (fail closed); until then a refused call leaves its quotas unspent
 *  10. charge quotas     charge-quotas.ts: only once the decision is recorded; a call that no
 *                        longer fits is refused after all, and that refusal recorded
 *  11. forward           by the endpoint (mcp/upstream), in the form the policy judged, with
 *                        Warden's own upstream credential, never the client's
 *  12. record outcome    record-outcome.ts: the observer the endpoint tells of the answer records
 *                        the result or error, with latency
 *  13. respond           by the endpoint: JSON or SSE, as the upstream framed it (listings as
 *                        filtered in stage 7)
 *
 * When the exchange ends (finishExchange):
 *  14. record refusal    record-untold-refusal.ts: a refusal no record tells yet becomes a
 *                        `request.refused` record under the exchange's reference
 */
import type { ServerResponse } from 'node:http';
import { WardenError } from '../../domain/errors.js';
import { writeError } from '../../mcp/http-reply.js';
import type { MessageGate } from '../../mcp/message-gate.js';
import type { ExchangeFacts } from '../exchange-ledger.js';
import type { RefusalRecords } from '../refusal-records.js';
import { answerHealthProbes } from './answer-probes.js';
import { approveCall, createHeldCalls, withdrawCancelledApproval } from './approve-call.js';
import { authenticateCaller } from './authenticate.js';
import { authorizeCall } from './authorize-call.js';
import { chargeQuotas, releasingQuotasOnFailure } from './charge-quotas.js';
import { classifyMessage, needsDecision, refuseMisnamedNotification } from './classify-message.js';
import { dispatch } from './dispatch.js';
import type { Exchange, ExchangeStage, ExchangeStageContext } from './exchange.js';
import { guardHostAndOrigin } from './guard-host-and-origin.js';
import { callFacts, type MessageStageOptions } from './message-context.js';
import { recordAllowed, recordDenial } from './record-decision.js';
import { observeOutcome } from './record-outcome.js';
import { recordUntoldRefusal } from './record-untold-refusal.js';
import { refuseWhileDraining } from './refuse-while-draining.js';
import { resolveTarget } from './resolve-target.js';

/** Stages 1 to 5, in the order they run on every exchange. */
export const EXCHANGE_STAGES: readonly ExchangeStage[] = [
  answerHealthProbes,
  guardHostAndOrigin,
  refuseWhileDraining,
  resolveTarget,
  authenticateCaller,
  dispatch,
];

/**
 * Runs the exchange stages until one answers; a refusal (a thrown WardenError) is answered with
 * its status, JSON-RPC error and reference, and the challenge of a refused caller.
 */
export async function runExchange(
  exchange: Exchange,
  gateway: ExchangeStageContext,
): Promise<void> {
  try {
    for (const stage of EXCHANGE_STAGES) {
      if ((await stage(exchange, gateway)) === 'answered') return;
    }
  } catch (error) {
    writeError(
      exchange.response,
      error,
      exchange.facts.requestId,
      null,
      exchange.challenge === undefined ? {} : { 'www-authenticate': exchange.challenge },
    );
  }
}

/** Stage 14, once the exchange has ended. */
export function finishExchange(
  facts: ExchangeFacts,
  response: ServerResponse,
  refusals: Pick<RefusalRecords, 'recordRefusal'>,
): void {
  recordUntoldRefusal(facts, response, refusals);
}

/** Stages 6 to 12, as the gate each MCP endpoint asks before it forwards a client message. */
export function createMessageStages(options: MessageStageOptions): MessageGate {
  const held = createHeldCalls();
  return {
    async admitClientMessage(message, context) {
      const call = classifyMessage(message, context, options.logger);
      withdrawCancelledApproval(call, context, held);
      refuseMisnamedNotification(message);
      if (!needsDecision(call)) return undefined;
      const facts = callFacts(call, context);
      const authorization = await authorizeCall(call, context, options);
      if (authorization.decision.effect === 'deny') {
        return recordDenial(
          options.recorder,
          facts,
          authorization.decision,
          authorization.error ?? new WardenError('WARDEN_POLICY_DENIED'),
        );
      }
      const { allowed, recorded } = await releasingQuotasOnFailure(authorization, async () => {
        const allowed = await approveCall(call, context, authorization, options, held);
        const recorded = await recordAllowed(call, context, authorization, allowed, options);
        return { allowed, recorded };
      });
      await chargeQuotas(facts, authorization, options.recorder);
      return observeOutcome(facts, allowed, authorization, recorded);
    },
  };
}

export type { ApprovalHolder } from './approve-call.js';
export { authenticateRequest, createAdminAccessCheck } from './authenticate.js';
export type {
  Exchange,
  ExchangeStageContext,
  GatewayRoute,
  RouteExchange,
  RouteHandler,
} from './exchange.js';
export type { MessageStageOptions } from './message-context.js';
