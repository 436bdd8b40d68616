/**
 * Approve (approvals/): an approval-gated call is held for a person (progress notifications keep
 * the client from timing out). Once granted it is decided again — revocations, policy, states,
 * break-glass, tool definition, quotas as they are then — and goes only if nothing changed the
 * outcome (else WARDEN_APPROVAL_STALE, recorded). A client that cancels, or goes away, withdraws
 * its approval request.
 */
import type { Decision } from '../../domain/decision.js';
import { WardenError } from '../../domain/errors.js';
import type { Identity } from '../../domain/identity.js';
import type { McpCall, McpRequestCall, ToolCall } from '../../domain/mcp-call.js';
import type { RevocationList } from '../../identity/revocation-list.js';
import type { ClientMessageContext } from '../../mcp/message-gate.js';
import type { Authorization } from '../../policy/authorize-message.js';
import { callFacts, type MessageStageOptions } from './message-context.js';

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

/** Calls held for approval, by session and JSON-RPC id, so a cancellation can withdraw them. */
export type HeldCalls = Map<string, AbortController>;

export function createHeldCalls(): HeldCalls {
  return new Map();
}

/**
 * A client cancelling a call held for approval withdraws its approval request. Only within a
 * session (bound to the identity that opened it): nobody else can cancel.
 */
export function withdrawCancelledApproval(
  call: McpCall,
  context: ClientMessageContext,
  held: HeldCalls,
): void {
  if (context.sessionId === undefined || call.kind !== 'cancellation') return;
  held.get(heldKey(context.sessionId, call.requestId))?.abort();
}

/**
 * The decision the call goes ahead under: the policy's, or for an approval-gated call, the
 * approvers' once the call has been decided again. A call refused at release is recorded so.
 */
export async function approveCall(
  call: McpRequestCall,
  context: ClientMessageContext,
  authorization: Authorization,
  options: Pick<MessageStageOptions, 'approvals' | 'recorder' | 'authorizer' | 'revocations'>,
  held: HeldCalls,
): Promise<Decision> {
  const { decision } = authorization;
  if (decision.effect !== 'approval_required') return decision;
  return holdForApproval(call, context, authorization, options, held).catch(
    async (error: unknown) => {
      // Refused at release (stale, revoked): the log says why, nothing is sent.
      if (error instanceof WardenError && error.code === 'WARDEN_APPROVAL_STALE') {
        const reasons = [String(error.details?.['reason'] ?? error.message)];
        await options.recorder.recordDecision(
          callFacts(call, context),
          { ...decision, effect: 'deny', reasons },
          { errorCode: error.code },
        );
      }
      throw error;
    },
  );
}

async function holdForApproval(
  call: McpRequestCall,
  ctx: ClientMessageContext,
  authorization: Authorization,
  options: Pick<MessageStageOptions, 'approvals' | 'recorder' | 'authorizer' | 'revocations'>,
  held: HeldCalls,
): Promise<Decision> {
  const { approvals, recorder } = options;
  const { decision } = authorization;
  const refuseUnavailable = async (cause?: unknown): Promise<never> => {
    // The approval service could not record the request: the log must still show the
    // refusal. If the log is down too, the recorder has raised its alert; the caller is
    // still told what it needs to know: the approval could not be asked for.
    await recorder
      .recordDecision(
        callFacts(call, ctx),
        {
          ...decision,
          effect: 'deny',
          reasons: ['approval required, but the approval service is unavailable (fail closed)'],
        },
        { errorCode: 'WARDEN_APPROVAL_UNAVAILABLE' },
      )
      .catch(() => undefined);
    throw new WardenError('WARDEN_APPROVAL_UNAVAILABLE', undefined, { cause });
  };
  // Only a tool call is ever gated (policy-engine.ts); anything else cannot be held.
  if (!approvals || call.kind !== 'tool_call') return refuseUnavailable();
  // Withdrawn when the client goes away or sends notifications/cancelled for this request.
  const cancellation = new AbortController();
  const key = heldKey(ctx.sessionId, call.message.id);
  held.set(key, cancellation);
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
      recheck: () => decideAgain(call, ctx, authorization, options),
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
      held.delete(key);
      ctx.signal?.removeEventListener('abort', onGone);
    });
  return {
    effect: 'allow',
    reasons: [`approved by ${approved.approvers.join(' and ')} (approval ${approved.approval.id})`],
    policies: decision.policies,
    ...(decision.policyVersion !== undefined && { policyVersion: decision.policyVersion }),
    ...(decision.approval !== undefined && { approval: decision.approval }),
  };
}

/**
 * A granted call, decided again at release. Anything that would now refuse it, or a policy or
 * tool definition other than the one the approver saw, refuses it (WARDEN_APPROVAL_STALE).
 */
async function decideAgain(
  call: ToolCall,
  ctx: ClientMessageContext,
  asked: Authorization,
  { authorizer, revocations }: Pick<MessageStageOptions, 'authorizer' | 'revocations'>,
): Promise<{ policyVersion: string; toolDefinitionHash: string | undefined }> {
  // From the store, not the last poll: a revocation made a moment ago still stops the call.
  await revocations?.refresh();
  const revoked = revocationOf(revocations, ctx.identity);
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

function heldKey(sessionId: string | undefined, rpcId: unknown): string {
  return `${sessionId ?? ''}\u0000${JSON.stringify(rpcId ?? null)}`;
}
