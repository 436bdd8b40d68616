/**
 * The order of checks every client message passes through before it reaches an upstream.
 * Transport concerns (HTTP framing, sessions, size limits, Origin/Host) are handled by mcp/;
 * this file is where the security stages are composed, in order.
 *
 *   1. authenticate  identity/: bearer token or client certificate → Identity, else 401/403
 *   2. parse         by the endpoint: one valid JSON-RPC message within the size limit; a session
 *                    is bound to the identity that opened it
 *   2b. classify     domain/mcp-call.ts: the message becomes one typed McpCall (tool call,
 *                    resource read, prompt get, listing, completion, subscription, plumbing, or
 *                    malformed); no later stage reads the raw params
 *   3. authorize     policy/: the pinned tool definition, the tool's own inputSchema, Cedar
 *                    (grants, scopes, hand-written rules, policy states, break-glass), quotas
 *                    (checked, not yet charged); listings are filtered to what the caller may use
 *   3b. approve      approvals/: an approval-gated call (whose quotas would still fit) is held
 *                    for a person; once granted it is decided again — revocations, policy,
 *                    states, break-glass, tool definition, quotas as they are then — and goes
 *                    only if nothing changed the outcome (else WARDEN_APPROVAL_STALE)
 *   4. record        audit/: the decision is durably in the hash-chained log before anything is
 *                    forwarded; if the log cannot take it, the call is refused (fail closed).
 *                    A denial is recorded, then answered with a specific error
 *   4b. charge       policy/: the call's quotas, only once its decision is recorded (an audit
 *                    outage uses up no quota); a call that no longer fits is refused after all
 *                    (WARDEN_QUOTA_EXCEEDED), and that refusal recorded
 *   5. forward       by the endpoint, with Warden's own upstream credential, never the client's
 *   6. record        audit/: the result or error, with latency, when the call ends
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Identity } from '../domain/identity.js';
import type { CallOutcome, CallRecorder } from '../audit/call-recorder.js';
import type { CallFacts } from '../audit/call-entry.js';
import type { Decision } from '../domain/decision.js';
import { startCallSpan } from '../audit/call-spans.js';
import { WardenError } from '../domain/errors.js';
import { isNotification, type JsonRpcMessage } from '../domain/jsonrpc.js';
import {
  classifyMcpCall,
  isRequestCall,
  type McpRequestCall,
  type ToolCall,
} from '../domain/mcp-call.js';
import type { Authorization, MessageAuthorizer } from '../policy/authorize-message.js';
import type { RequestAuthenticator } from '../identity/authenticate-request.js';
import type { RevocationList } from '../identity/revocation-list.js';
import { describeClientCertificate } from '../identity/client-certificate.js';
import { readHeader } from '../http/http-headers.js';
import type { CallObserver, ClientMessageContext, MessageGate } from '../mcp/message-gate.js';
import type { Logger } from './logger.js';

/** What the pipeline needs of the approvals service (approvals/approval-service.ts). */
export interface ApprovalHolder {
  hold(call: {
    readonly requestId: string;
    readonly traceparent: string | undefined;
    readonly identity: Identity;
    readonly upstream: string;
    readonly tool: string;
    readonly arguments: unknown;
    readonly decision: Decision;
    readonly toolDefinitionHash: string | undefined;
    readonly signal: AbortSignal;
    readonly onWaiting?: (info: { approvalId: string; elapsedMs: number }) => void;
    /** The call decided again once granted: what it is bound to now, or a refusal. */
    readonly recheck: () => Promise<{
      readonly policyVersion: string;
      readonly toolDefinitionHash: string | undefined;
    }>;
  }): Promise<{
    readonly approval: { readonly id: string };
    readonly approvers: readonly string[];
  }>;
}

export interface Pipeline extends MessageGate {
  /**
   * Stage 1: who is calling this endpoint (`upstream` undefined: the gateway's own API).
   * Throws a WardenError (401/403/400) when unproven.
   */
  authenticate(request: IncomingMessage, upstream: string | undefined): Promise<Identity>;
}

export function createPipeline(options: {
  authenticator: RequestAuthenticator;
  authorizer: MessageAuthorizer;
  recorder: CallRecorder;
  logger: Logger;
  /** Holds approval-gated calls; without it they are refused (WARDEN_APPROVAL_UNAVAILABLE). */
  approvals?: ApprovalHolder;
  /** Whether a tool is configured to fail open (non-sensitive tools only) when the log is down. */
  failsOpen?: (upstream: string, tool: string | undefined) => boolean;
  /** Revocations in force now: a held call whose token, agent or user is revoked never goes. */
  revocations?: Pick<RevocationList, 'find' | 'refresh'>;
}): Pipeline {
  const { authenticator, authorizer, recorder, logger, approvals, failsOpen } = options;
  /**
   * A granted call, decided again at release. Anything that would now refuse it, or a policy or
   * tool definition other than the one the approver saw, refuses it (WARDEN_APPROVAL_STALE).
   */
  const decideAgain = async (
    call: ToolCall,
    ctx: ClientMessageContext,
    asked: Authorization,
  ): Promise<{ policyVersion: string; toolDefinitionHash: string | undefined }> => {
    // From the store, not the last poll: a revocation made a moment ago still stops the call.
    await options.revocations?.refresh();
    const revoked = revocationOf(options.revocations, ctx.identity);
    if (revoked !== undefined) throw staleApproval(`${revoked} while the call waited`);
    const again = await authorizer.reauthorize(call, ctx.identity, ctx.upstreamName);
    const { decision } = again;
    if (decision.effect === 'deny') {
      throw staleApproval(
        `the call is now refused: ${decision.reasons.join('; ') || 'no rule allows it'}`,
        again.error?.code,
      );
    }
    if (decision.policyVersion !== asked.decision.policyVersion) {
      throw staleApproval('the policy changed after the approval was asked for');
    }
    if (again.toolDefinitionHash !== asked.toolDefinitionHash) {
      throw staleApproval("the tool's definition changed after the approval was asked for");
    }
    return {
      policyVersion: decision.policyVersion ?? '',
      toolDefinitionHash: again.toolDefinitionHash,
    };
  };
  /** Calls held for approval, by session and JSON-RPC id, so a cancellation can withdraw them. */
  const heldCalls = new Map<string, AbortController>();
  /**
   * Stage 3b: an approval-gated call waits for a human (progress keeps the client from timing
   * out); once granted and decided again, it proceeds as allowed, recorded as such.
   */
  const holdForApproval = async (
    call: McpRequestCall,
    ctx: ClientMessageContext,
    authorization: Authorization,
  ): Promise<Decision> => {
    const { decision } = authorization;
    const facts = callFacts(call, ctx);
    const refuseUnavailable = async (cause?: unknown): Promise<never> => {
      // The approval service could not record the request: the log must still show the
      // refusal. If the log is down too, the recorder has raised its alert; the caller is
      // still told what it needs to know: the approval could not be asked for.
      await recorder
        .recordDecision(facts, {
          ...decision,
          effect: 'deny',
          reasons: ['approval required, but the approval service is unavailable (fail closed)'],
        })
        .catch(() => undefined);
      throw new WardenError('WARDEN_APPROVAL_UNAVAILABLE', undefined, { cause });
    };
    // Only a tool call is ever gated (policy-engine.ts); anything else cannot be held.
    if (!approvals || call.kind !== 'tool_call') return refuseUnavailable();
    // Withdrawn when the client goes away or sends notifications/cancelled for this request.
    const cancellation = new AbortController();
    const key = heldKey(ctx.sessionId, call.message.id);
    heldCalls.set(key, cancellation);
    const onGone = () => cancellation.abort(ctx.signal?.reason);
    ctx.signal?.addEventListener('abort', onGone, { once: true });
    // The client's own progress token, if it asked for progress on this call.
    const progressRef = call.progressToken;
    const approved = await approvals
      .hold({
        requestId: ctx.requestId,
        traceparent: ctx.traceparent,
        identity: ctx.identity,
        upstream: ctx.upstreamName,
        tool: call.name,
        arguments: call.arguments,
        decision,
        toolDefinitionHash: authorization.toolDefinitionHash,
        signal: cancellation.signal,
        recheck: () => decideAgain(call, ctx, authorization),
        onWaiting: ({ approvalId, elapsedMs }) => {
          if (progressRef === undefined) return;
          ctx.interim?.notify({
            jsonrpc: '2.0',
            method: 'notifications/progress',
            params: {
              progressToken: progressRef,
              progress: Math.floor(elapsedMs / 1000),
              message: `waiting for a human approval (${approvalId})`,
            },
          });
        },
      })
      .catch((error: unknown) =>
        error instanceof WardenError && error.code === 'WARDEN_APPROVAL_UNAVAILABLE'
          ? refuseUnavailable(error)
          : Promise.reject(error),
      )
      .finally(() => {
        heldCalls.delete(key);
        ctx.signal?.removeEventListener('abort', onGone);
      });
    return {
      effect: 'allow',
      reasons: [
        `approved by ${approved.approvers.join(' and ')} (approval ${approved.approval.id})`,
      ],
      policies: decision.policies,
      ...(decision.policyVersion !== undefined && { policyVersion: decision.policyVersion }),
      ...(decision.approval !== undefined && { approval: decision.approval }),
    };
  };

  /** Stages 3 to 4b for one request; resolves once the call may be forwarded. */
  const admitRequest = async (
    call: McpRequestCall,
    context: ClientMessageContext,
  ): Promise<CallObserver> => {
    const facts = callFacts(call, context);
    const authorization = await authorizeWith(authorizer, logger, call, context);
    const { decision, quotas } = authorization;
    if (decision.effect === 'deny') {
      await recorder.recordDecision(facts, decision);
      startCallSpan(facts, decision).failed(authorization.error);
      throw authorization.error ?? new WardenError('WARDEN_POLICY_DENIED');
    }
    // The upstream gets the form the policy judged, and the log records that form.
    const forward = authorization.rewriteRequest;
    const forwardFacts =
      forward === undefined ? facts : callFacts(classifyMcpCall(forward), context);
    let allowed = decision;
    let recorded: CallOutcome;
    try {
      if (decision.effect === 'approval_required') {
        allowed = await holdForApproval(call, context, authorization).catch(
          async (error: unknown) => {
            // Refused at release (stale, revoked): the log says why, nothing is sent.
            if (error instanceof WardenError && error.code === 'WARDEN_APPROVAL_STALE') {
              const reasons = [String(error.details?.['reason'] ?? error.message)];
              await recorder.recordDecision(facts, { ...decision, effect: 'deny', reasons });
            }
            throw error;
          },
        );
      }
      recorded = await recorder.recordDecision(forwardFacts, allowed, {
        failOpen: failsOpen?.(context.upstreamName, toolNameOf(call)) ?? false,
      });
    } catch (error) {
      // The call does not go ahead: its quotas stay unspent.
      quotas?.release();
      throw error;
    }
    // Charged only now that the log holds the decision: a call it could not take costs nothing.
    const overQuota = await quotas?.charge();
    if (overQuota !== undefined) {
      // A concurrent call took the room since the check: refused after all, and recorded so.
      await recorder.recordDecision(facts, overQuota.decision);
      startCallSpan(facts, overQuota.decision).failed(overQuota.error);
      throw overQuota.error ?? new WardenError('WARDEN_QUOTA_EXCEEDED');
    }
    const span = startCallSpan(facts, allowed);
    const { rewrite } = authorization;
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
  };

  return {
    authenticate(request, upstream) {
      return authenticator.authenticate({
        // headersDistinct keeps every Authorization header: Node would silently keep the first.
        authorization: request.headersDistinct['authorization'],
        url: request.url ?? '/',
        upstream,
        clientCertificate: verifiedClientCertificate(request),
        declaredModel: readDeclaredModel(request),
      });
    },
    async admitClientMessage(message: JsonRpcMessage, context: ClientMessageContext) {
      // Stage 2b: what the message asks for, read once; every later stage reads this value.
      const call = classifyMcpCall(message);
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          {
            requestId: context.requestId,
            upstream: context.upstreamName,
            session: context.sessionId,
            agent: context.identity.agent,
            user: context.identity.user,
            method: 'method' in message ? message.method : undefined,
            kind: call.kind,
          },
          'client message',
        );
      }
      // Only within a session (bound to the identity that opened it): nobody else can cancel.
      if (context.sessionId !== undefined && call.kind === 'cancellation') {
        // A client cancelling a call held for approval withdraws its approval request.
        heldCalls.get(heldKey(context.sessionId, call.requestId))?.abort();
      }
      // A notification is never decided, so it must not be able to name what a request does:
      // `tools/call` without an id would reach the upstream with no policy in its way.
      if (isNotification(message) && !message.method.startsWith('notifications/')) {
        throw new WardenError(
          'WARDEN_INVALID_MESSAGE',
          `Invalid JSON-RPC message: "${message.method.slice(0, 100)}" is not a notification method; a request needs an id.`,
        );
      }
      // Requests are calls with an outcome worth recording; notifications and replies are not.
      if (!isRequestCall(call) || call.message.method === 'ping') return undefined;
      return admitRequest(call, context);
    },
  };
}

/** Which revocation, if any, now covers the credential the call was made with. */
function revocationOf(
  revocations: Pick<RevocationList, 'find'> | undefined,
  identity: Identity,
): string | undefined {
  if (revocations === undefined) return undefined;
  const { credential } = identity;
  const revocation = revocations.find({
    tokenId: credential.kind === 'jwt' ? credential.tokenId : undefined,
    agent: identity.agent,
    user: identity.user,
    issuedAt: credential.kind === 'jwt' ? credential.issuedAt : undefined,
  });
  if (revocation === undefined) return undefined;
  const what = { token: 'the token', agent: 'the agent', user: 'the user' }[revocation.kind];
  return `${what} was revoked`;
}

function staleApproval(reason: string, refusedWith?: string): WardenError {
  return new WardenError(
    'WARDEN_APPROVAL_STALE',
    `The call was approved but not forwarded: ${reason}. Call again to be decided under the rules in force now.`,
    { details: { reason, ...(refusedWith !== undefined && { refusedWith }) } },
  );
}

function callFacts(call: McpRequestCall, context: ClientMessageContext): CallFacts {
  return {
    requestId: context.requestId,
    traceparent: context.traceparent,
    identity: context.identity,
    upstream: context.upstreamName,
    call,
  };
}

function heldKey(sessionId: string | undefined, rpcId: unknown): string {
  return `${sessionId ?? ''}\u0000${JSON.stringify(rpcId ?? null)}`;
}

function toolNameOf(call: McpRequestCall): string | undefined {
  return call.kind === 'tool_call' ? call.name : undefined;
}

/** A failure inside the policy stage denies (fail closed); it never lets the call through. */
async function authorizeWith(
  authorizer: MessageAuthorizer,
  logger: Logger,
  call: McpRequestCall,
  context: ClientMessageContext,
): Promise<Authorization> {
  try {
    return await authorizer.authorize(
      call,
      context.identity,
      context.upstreamName,
      context.listTools,
    );
  } catch (error) {
    logger.error({ err: error, requestId: context.requestId }, 'policy stage failed; denying');
    const reasons = ['the policy stage failed, so the call is refused'];
    return {
      decision: { effect: 'deny', reasons, policies: [], errors: [String(error)] },
      error: new WardenError('WARDEN_POLICY_ERROR', undefined, { details: { reasons } }),
    };
  }
}

/** A client certificate counts only when the TLS layer verified it against the client CA. */
function verifiedClientCertificate(request: IncomingMessage) {
  const socket = request.socket as Partial<TLSSocket>;
  if (socket.authorized !== true || typeof socket.getPeerX509Certificate !== 'function')
    return undefined;
  const certificate = socket.getPeerX509Certificate();
  return certificate === undefined ? undefined : describeClientCertificate(certificate);
}

/** The model the client says it is, from X-Agent-Model. */
function readDeclaredModel(request: IncomingMessage): string | undefined {
  const text = readHeader(request, 'x-agent-model');
  // Declared, never trusted: keep it short and printable for the log.
  return text === undefined ? undefined : text.slice(0, 200).replace(/[^\x20-\x7e]/g, '');
}
