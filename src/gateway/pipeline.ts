/**
 * The order of checks every client message passes through before it reaches an upstream.
 * Transport concerns (HTTP framing, sessions, size limits, Origin/Host) are handled by mcp/;
 * this file is where the security stages are composed, in order.
 *
 *   1. authenticate  identity/: bearer token or client certificate → Identity, else 401/403
 *   2. parse         by the endpoint: one valid JSON-RPC message within the size limit; a session
 *                    is bound to the identity that opened it
 *   3. authorize     policy/: the pinned tool definition, the tool's own inputSchema, Cedar
 *                    (grants, scopes, hand-written rules, policy states, break-glass), quotas;
 *                    listings are filtered to what the caller may use
 *   4. record        audit/: the decision is durably in the hash-chained log before anything is
 *                    forwarded; if the log cannot take it, the call is refused (fail closed).
 *                    A denial is recorded, then answered with a specific error
 *   4b. approve      approvals/: an approval-gated call (whose quotas would still fit) is held
 *                    for a person; once granted it is decided again — revocations, policy,
 *                    states, break-glass, tool definition, quotas as they are then — and goes
 *                    only if nothing changed the outcome (else WARDEN_APPROVAL_STALE)
 *   5. forward       by the endpoint, with Warden's own upstream credential, never the client's
 *   6. record        audit/: the result or error, with latency, when the call ends
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Identity } from '../domain/identity.js';
import type { CallRecorder } from '../audit/call-recorder.js';
import type { CallFacts } from '../audit/call-entry.js';
import type { Decision } from '../domain/decision.js';
import { startCallSpan } from '../audit/call-spans.js';
import { WardenError } from '../domain/errors.js';
import type { JsonRpcMessage, JsonRpcRequest } from '../domain/jsonrpc.js';
import type { Authorization, MessageAuthorizer } from '../policy/authorize-message.js';
import { isNotification, isRequest } from '../domain/jsonrpc.js';
import type { RequestAuthenticator } from '../identity/authenticate-request.js';
import type { RevocationList } from '../identity/revocation-list.js';
import { describeClientCertificate } from '../identity/client-certificate.js';
import { readHeader } from '../mcp/http-headers.js';
import type { ClientMessageContext, MessageGate } from '../mcp/message-gate.js';
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
  revocations?: Pick<RevocationList, 'find'>;
}): Pipeline {
  const { authenticator, authorizer, recorder, logger, approvals, failsOpen } = options;
  /**
   * A granted call, decided again at release. Anything that would now refuse it, or a policy or
   * tool definition other than the one the approver saw, refuses it (WARDEN_APPROVAL_STALE).
   */
  const decideAgain = async (
    request: JsonRpcRequest,
    ctx: ClientMessageContext,
    asked: Authorization,
  ): Promise<{ policyVersion: string; toolDefinitionHash: string | undefined }> => {
    const revoked = revocationOf(options.revocations, ctx.identity);
    if (revoked !== undefined) throw staleApproval(`${revoked} while the call waited`);
    const again = await authorizer.reauthorize(request, ctx.identity, ctx.upstreamName);
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
   * out); once granted, its quotas are charged and it proceeds as allowed, recorded as such.
   */
  const holdForApproval = async (
    request: JsonRpcRequest,
    ctx: ClientMessageContext,
    authorization: Authorization,
  ): Promise<Decision> => {
    const { decision } = authorization;
    const refuseUnavailable = async (cause?: unknown): Promise<never> => {
      // The approval service could not record the request: the log must still show the
      // refusal. If the log is down too, the recorder has raised its alert; the caller is
      // still told what it needs to know: the approval could not be asked for.
      await recorder
        .recordDecision(callFacts(request, ctx), {
          ...decision,
          effect: 'deny',
          reasons: ['approval required, but the approval service is unavailable (fail closed)'],
        })
        .catch(() => undefined);
      throw new WardenError('WARDEN_APPROVAL_UNAVAILABLE', undefined, { cause });
    };
    if (!approvals) return refuseUnavailable();
    const progressRef = readProgressToken(request);
    // Withdrawn when the client goes away or sends notifications/cancelled for this request.
    const cancellation = new AbortController();
    const key = heldKey(ctx.sessionId, request.id);
    heldCalls.set(key, cancellation);
    const onGone = () => cancellation.abort(ctx.signal?.reason);
    ctx.signal?.addEventListener('abort', onGone, { once: true });
    const approved = await approvals
      .hold({
        requestId: ctx.requestId,
        traceparent: ctx.traceparent,
        identity: ctx.identity,
        upstream: ctx.upstreamName,
        tool: typeof request.params?.['name'] === 'string' ? request.params['name'] : '',
        arguments: request.params?.['arguments'] ?? {},
        decision,
        toolDefinitionHash: authorization.toolDefinitionHash,
        signal: cancellation.signal,
        recheck: () => decideAgain(request, ctx, authorization),
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
    const refused = await authorizer.chargeQuotas(request, ctx.identity, ctx.upstreamName);
    const allowed: Decision = {
      effect: 'allow',
      reasons: [
        `approved by ${approved.approvers.join(' and ')} (approval ${approved.approval.id})`,
      ],
      policies: decision.policies,
      ...(decision.policyVersion !== undefined && { policyVersion: decision.policyVersion }),
      ...(decision.approval !== undefined && { approval: decision.approval }),
    };
    if (refused) {
      const facts = callFacts(request, ctx);
      await recorder.recordDecision(facts, refused.decision);
      throw refused.error ?? new WardenError('WARDEN_QUOTA_EXCEEDED');
    }
    return allowed;
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
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          {
            requestId: context.requestId,
            upstream: context.upstreamName,
            session: context.sessionId,
            agent: context.identity.agent,
            user: context.identity.user,
            method: 'method' in message ? message.method : undefined,
          },
          'client message',
        );
      }
      // Only within a session (bound to the identity that opened it): nobody else can cancel.
      if (
        context.sessionId !== undefined &&
        isNotification(message) &&
        message.method === 'notifications/cancelled'
      ) {
        // A client cancelling a call held for approval withdraws its approval request.
        heldCalls.get(heldKey(context.sessionId, message.params?.['requestId']))?.abort();
      }
      // Requests are calls with an outcome worth recording; notifications and replies are not.
      if (!isRequest(message) || message.method === 'ping') return undefined;
      const facts = callFacts(message, context);
      const authorization = await authorizeWith(authorizer, logger, message, context);
      const { decision } = authorization;
      if (decision.effect === 'deny') {
        await recorder.recordDecision(facts, decision);
        startCallSpan(facts, decision).failed(authorization.error);
        throw authorization.error ?? new WardenError('WARDEN_POLICY_DENIED');
      }
      let allowed = decision;
      if (decision.effect === 'approval_required') {
        allowed = await holdForApproval(message, context, authorization).catch(
          async (error: unknown) => {
            // Refused at release (stale, revoked, over quota): the log says why, nothing is sent.
            if (error instanceof WardenError && error.code === 'WARDEN_APPROVAL_STALE') {
              const reasons = [String(error.details?.['reason'] ?? error.message)];
              await recorder.recordDecision(facts, { ...decision, effect: 'deny', reasons });
            }
            throw error;
          },
        );
      }
      // The upstream gets the form the policy judged, and the log records that form.
      const forward = authorization.rewriteRequest;
      const recorded = await recorder.recordDecision(
        forward === undefined ? facts : callFacts(forward, context),
        allowed,
        {
          failOpen: failsOpen?.(context.upstreamName, toolName(message)) ?? false,
        },
      );
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

function callFacts(message: JsonRpcRequest, context: ClientMessageContext): CallFacts {
  return {
    requestId: context.requestId,
    traceparent: context.traceparent,
    identity: context.identity,
    upstream: context.upstreamName,
    method: message.method,
    params: message.params,
  };
}

function heldKey(sessionId: string | undefined, rpcId: unknown): string {
  return `${sessionId ?? ''}\u0000${JSON.stringify(rpcId ?? null)}`;
}

function toolName(request: JsonRpcRequest): string | undefined {
  const name = request.params?.['name'];
  return request.method === 'tools/call' && typeof name === 'string' ? name : undefined;
}

/** The client's progress token, if it asked for progress on this request. */
function readProgressToken(request: JsonRpcRequest): string | number | undefined {
  const meta = request.params?.['_meta'];
  if (meta === null || typeof meta !== 'object') return undefined;
  const token = (meta as Record<string, unknown>)['progressToken'];
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

/** A failure inside the policy stage denies (fail closed); it never lets the call through. */
async function authorizeWith(
  authorizer: MessageAuthorizer,
  logger: Logger,
  message: JsonRpcRequest,
  context: ClientMessageContext,
): Promise<Authorization> {
  try {
    return await authorizer.authorize(
      message,
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
