/**
 * Every check a request passes, in order. The listener (../http-server.ts) only creates the
 * exchange and runs these stages; each stage is one file in this folder, and the transport (mcp/)
 * only reads, sends and writes, in the order set here.
 *
 * For each HTTP exchange (EXCHANGE_STAGES):
 *   1. answer probes     answer-probes.ts: /healthz and /readyz, before any check
 *   2. guard             accept-hop.ts: an exchange relayed by another replica must carry a
 *                        genuine hop signature; guard-host-and-origin.ts: a foreign Host or
 *                        Origin is refused (DNS rebinding); refuse-while-draining.ts: a stopping
 *                        gateway takes no more
 *   3. resolve           resolve-target.ts: the path, decoded once, names a gateway route (public
 *                        documents, the token endpoint, the admin API) or an upstream's endpoint
 *   4. authenticate      authenticate.ts, with identity/: bearer token or client certificate →
 *                        Identity, for every MCP endpoint and every admin route alike; a refused
 *                        caller is recorded (auth.failed, aggregated per source) and challenged
 *   4b. session home     hop-to-session-home.ts: a session another replica holds is served
 *                        there; this replica relays the exchange as it came (cluster/)
 *   5. dispatch          dispatch.ts: a gateway route answers (the admin API checks the caller's
 *                        role through createAdminAccessCheck, recorded like stage 4), or the
 *                        upstream's MCP endpoint (createMcpEndpoint, below) takes the exchange
 *
 * For each exchange on an upstream's MCP endpoint (createMcpEndpoint):
 *   6. read and parse    mcp/read-exchange.ts: the HTTP method and media types, then the body,
 *                        within the size and depth limits, parsed into one JSON-RPC message
 *   7. route by revision mcp/route-by-revision.ts: a 2026-07-28 message (its envelope, mirrored
 *                        headers and method checked by mcp/stateless/modern-exchange.ts), or a
 *                        revision with sessions, which must be one this endpoint serves
 *   8. session owner     mcp/session-exchange.ts: the session answers only to the identity that
 *                        opened it (anyone else's id is "not found"), and is in use, so never
 *                        idle, until the last byte of the reply; an initialize names no session.
 *                        A 2026-07-28 message has none
 *   For the message (createMessageStages):
 *   9. classify          classify-message.ts: the message becomes one typed McpCall (tool call,
 *                        resource read, prompt get, listing, completion, subscription, plumbing,
 *                        malformed) that every later stage reads; a cancellation withdraws a held
 *                        approval; a notification may not name a request's method
 *  10. authorize         authorize-call.ts, with policy/: the pinned tool definition, the tool's
 *                        own inputSchema, Cedar (grants, scopes, hand-written rules, policy states,
 *                        break-glass), quotas (checked, not charged); listings are filtered. A
 *                        failing policy stage denies. A denial is recorded (audit/), then refused
 *  11. approve           approve-call.ts, with approvals/: an approval-gated call is held for a
 *                        person, or answered pending (retry) or as a task (answer-approval-task.ts,
 *                        which also answers tasks/get, tasks/result and tasks/cancel for the
 *                        gateway's own tasks, after classify); once granted it is decided again
 *                        under the rules in force then (else WARDEN_APPROVAL_STALE, recorded)
 *  12. record decision   record-decision.ts, with audit/: the decision is durably in the
 *                        hash-chained log before anything is forwarded, or the call is refused
 *                        (fail closed); until then a refused call leaves its quotas unspent
 *  13. charge quotas     charge-quotas.ts: only once the decision is recorded; a call that no
 *                        longer fits is refused after all, and that refusal recorded
 *   Then:
 *  14. forward           forward-call.ts, through mcp/: on the session, to a 2026-07-28 upstream
 *                        as it is, or to an older one through the legacy bridge (holding a share
 *                        of the upstream); in the form the policy judged, with Warden's own
 *                        upstream credential, never the client's. An initialize opens the session
 *                        only now, so a refused one starts no stdio child; a failed handshake
 *                        discards it
 *  15. record outcome    record-outcome.ts: mcp/observe-reply.ts tells the observer the message
 *                        stages returned how the call ended; the result or error is recorded,
 *                        with latency (a forward that failed, by forward-call.ts)
 *  16. respond           mcp/http-reply.ts: JSON or SSE, as the upstream framed it (listings as
 *                        filtered in stage 10); a refusal at any stage as its HTTP status and
 *                        JSON-RPC error, answering the request's id
 *   A GET (the server-to-client stream) and a DELETE (the end of a session) carry no message:
 *   they pass 6, 7 and 8, then 14 and 16.
 *
 * When the exchange ends (finishExchange):
 *  17. record refusal    record-untold-refusal.ts: a refusal no record tells yet becomes a
 *                        `request.refused` record under the exchange's reference
 *
 * Why the order differs from a plainer "parse and classify → session owner → authorize → record
 * the decision → approve": the session owner comes before classify, because a message is read as
 * a call only within a session it may use (classify logs the session, and a cancellation
 * withdraws only a call held in that session). Approve comes before the allowed decision is
 * recorded, because the decision to hold is already recorded first: the approvals service records
 * `approval.requested` durably before any call is held (and refuses, recorded, when it cannot),
 * and the decision that lets the call go must name its approvers, who are known only once they
 * have decided.
 */
import type { ServerResponse } from 'node:http';
import { WardenError } from '../../domain/errors.js';
import { isRequest, type JsonRpcId } from '../../domain/jsonrpc.js';
import { writeError } from '../../mcp/http-reply.js';
import { readMcpExchange } from '../../mcp/read-exchange.js';
import {
  isInitialize,
  requireSessionfulRevision,
  speaksModernRevision,
} from '../../mcp/route-by-revision.js';
import type { ModernRelay } from '../../mcp/stateless/modern-exchange.js';
import type { ExchangeFacts } from '../exchange-ledger.js';
import type { RefusalRecords } from '../refusal-records.js';
import { acceptHop } from './accept-hop.js';
import { answerHealthProbes } from './answer-probes.js';
import { advertiseTasks, answerAsTask, answerGatewayTask } from './answer-approval-task.js';
import { approveCall, createHeldCalls, withdrawCancelledApproval } from './approve-call.js';
import { authenticateCaller } from './authenticate.js';
import { authorizeCall } from './authorize-call.js';
import { chargeQuotas, releasingQuotasOnFailure } from './charge-quotas.js';
import { classifyMessage, needsDecision, refuseMisnamedNotification } from './classify-message.js';
import { dispatch } from './dispatch.js';
import { endSession } from './end-session.js';
import type {
  Exchange,
  ExchangeStage,
  ExchangeStageContext,
  McpEndpoint,
  McpEndpointOptions,
} from './exchange.js';
import { guardHostAndOrigin } from './guard-host-and-origin.js';
import { hopToSessionHome } from './hop-to-session-home.js';
import { callFacts, type MessageStageOptions, type MessageStages } from './message-context.js';
import { openSession } from './open-session.js';
import { recordAllowed } from './record-decision.js';
import { refuseCall } from './refuse-call.js';
import { observeOutcome } from './record-outcome.js';
import { recordUntoldRefusal } from './record-untold-refusal.js';
import { refuseWhileDraining } from './refuse-while-draining.js';
import { relayModernMessage } from './relay-modern-message.js';
import { relayServerStream } from './relay-server-stream.js';
import { relaySessionMessage } from './relay-session-message.js';
import { resolveTarget } from './resolve-target.js';
import { createTaskBook } from './task-book.js';

/** Stages 1 to 5, in the order they run on every exchange. */
export const EXCHANGE_STAGES: readonly ExchangeStage[] = [
  answerHealthProbes,
  acceptHop,
  guardHostAndOrigin,
  refuseWhileDraining,
  resolveTarget,
  authenticateCaller,
  hopToSessionHome,
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

/** Stage 17, once the exchange has ended. */
export function finishExchange(
  facts: ExchangeFacts,
  response: ServerResponse,
  refusals: Pick<RefusalRecords, 'recordRefusal'>,
): void {
  recordUntoldRefusal(facts, response, refusals);
}

/** Stages 9 to 13, as one call each MCP endpoint makes for a client message (stage 8 on). */
export function createMessageStages(options: MessageStageOptions): MessageStages {
  const held = createHeldCalls();
  const tasks = createTaskBook();
  const stages: MessageStages = {
    async admitClientMessage(message, context) {
      const call = classifyMessage(message, context, options.logger);
      withdrawCancelledApproval(call, context, held);
      refuseMisnamedNotification(message);
      // The gateway's own tasks (task delivery) are answered here; their call is made on a poll.
      const task = await answerGatewayTask(call, context, options.approvals, tasks, (replay) =>
        stages.admitClientMessage(replay, context),
      );
      if (task !== undefined) return task;
      if (!needsDecision(call)) return undefined;
      const facts = callFacts(call, context);
      const authorization = await authorizeCall(call, context, options);
      if (authorization.decision.effect === 'deny') {
        return refuseCall(
          call,
          context,
          options,
          facts,
          authorization.decision,
          authorization.error ?? new WardenError('WARDEN_POLICY_DENIED'),
        );
      }
      const approved = await releasingQuotasOnFailure(authorization, async () => {
        const allowed = await approveCall(call, context, authorization, options, held, tasks);
        // Answered by the approve stage (pending, delivered by retry): nothing goes or is spent.
        if ('answer' in allowed) return { answer: allowed };
        const recorded = await recordAllowed(call, context, authorization, allowed, options);
        return { allowed, recorded };
      });
      if ('answer' in approved) {
        authorization.quotas?.release();
        return approved.answer;
      }
      const { allowed, recorded } = approved;
      await chargeQuotas(facts, authorization, options.recorder);
      const observer = observeOutcome(facts, allowed, authorization, recorded);
      return advertiseTasks(
        call,
        answerAsTask(call.message, observer, tasks, context),
        options.approvals?.offersTasks() ?? false,
      );
    },
  };
  return stages;
}

/**
 * Stages 6 to 16 for one upstream: the endpoint dispatch (stage 5) hands its exchanges to. Each
 * lane walks the stages it has in order: relay-modern-message.ts (2026-07-28), open-session.ts
 * (initialize), relay-session-message.ts (any other message on a session), relay-server-stream.ts
 * (GET) and end-session.ts (DELETE).
 */
export function createMcpEndpoint(options: McpEndpointOptions): McpEndpoint {
  const relay: ModernRelay = {
    ...options.modern,
    upstream: options.upstream,
    shares: options.sessions,
  };
  return async (request, response, handle) => {
    let rpcId: JsonRpcId | null = null;
    try {
      // 6. read and parse
      const exchange = await readMcpExchange(request, response, handle, options);
      if (exchange.kind === 'post' && isRequest(exchange.message)) rpcId = exchange.message.id;
      // 7. route by revision; stages 8 to 16 then run in the file of the exchange's lane
      if (exchange.kind === 'post' && speaksModernRevision(exchange)) {
        await relayModernMessage(options, relay, exchange);
        return;
      }
      requireSessionfulRevision(exchange.version);
      switch (exchange.kind) {
        case 'post':
          await (isInitialize(exchange.message)
            ? openSession(options, exchange, exchange.message)
            : relaySessionMessage(options, exchange));
          return;
        case 'get':
          handle.markServerStream();
          await relayServerStream(options, exchange);
          return;
        case 'delete':
          await endSession(options, exchange);
      }
    } catch (error) {
      // 16. respond: a refusal, answering the request's id once it is known
      writeError(response, error, handle.requestId, rpcId);
    }
  };
}

export type { ApprovalHolder } from './approve-call.js';
export { authenticateRequest, createAdminAccessCheck } from './authenticate.js';
export type {
  Exchange,
  ExchangeHandle,
  ExchangeStageContext,
  GatewayRoute,
  RouteExchange,
  McpEndpoint,
  McpEndpointOptions,
  RouteHandler,
} from './exchange.js';
export type { MessageStageOptions, MessageStages } from './message-context.js';
