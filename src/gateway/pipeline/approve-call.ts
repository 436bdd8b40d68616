/**
 * Approve (approvals/): an approval-gated call waits for a person, delivered as
 * `approvals.delivery` says. `hold`: the call is held open (progress notifications for a client
 * that asked for them); a client that cancels, times out or goes away withdraws its request, and
 * nothing is forwarded after. `retry`: answered at once with a pending tool result, so no client
 * timeout applies; the same call made again once granted goes, once. `task` (and `auto`): a
 * client that asks for an MCP task gets one (answer-approval-task.ts); any other, `retry`. Either way a
 * granted call is decided again — revocations, policy, states, break-glass, tool definition,
 * quotas as they are then — and goes only if nothing changed the outcome (else
 * WARDEN_APPROVAL_STALE, recorded).
 */
import { ApprovalHandedOver } from '../../approvals/errors.js';
import type { Decision } from '../../domain/decision.js';
import { WardenError } from '../../domain/errors.js';
import type { Identity } from '../../domain/identity.js';
import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from '../../domain/jsonrpc.js';
import type { McpCall, McpRequestCall, ToolCall } from '../../domain/mcp-call.js';
import type { RevocationList } from '../../identity/revocation-list.js';
import type { CallObserver, ClientMessageContext } from '../../mcp/message-gate.js';
import type { Authorization } from '../../policy/authorize-message.js';
import type { ApprovalRequest } from '../../store/types.js';
import {
  bindReleasedTask,
  createdTaskAnswer,
  isTaskReplay,
  taskAugmentationOf,
  type ApprovalTasks,
} from './answer-approval-task.js';
import { answerWithToolError } from './answer-with-tool-error.js';
import { callFacts, type MessageStageOptions } from './message-context.js';
import type { TaskBook } from './task-book.js';

/** The `_meta` key of a pending answer (retry delivery): `{ id, status, expiresAt }`. */
export const APPROVAL_META_KEY = 'warden/approval';

/** An approval-gated call, as the pipeline hands it to the approvals service. */
export interface ApprovalGatedCall {
  readonly requestId: string;
  readonly traceparent: string | undefined;
  readonly identity: Identity;
  readonly upstream: string;
  readonly tool: string;
  readonly arguments: unknown;
  readonly decision: Decision;
  readonly toolDefinitionHash: string | undefined;
  readonly signal: AbortSignal;
  /** The call decided again once granted: what it is bound to now, or a refusal. */
  readonly recheck: () => Promise<{
    readonly policyVersion: string;
    readonly toolDefinitionHash: string | undefined;
  }>;
}

/** A granted call, released: its approval (asked for under `requestId`) and who approved. */
export interface ReleasedCall {
  readonly approval: {
    readonly id: string;
    readonly requestId: string;
    readonly createdAt: number;
    readonly expiresAt: number;
  };
  readonly approvers: readonly string[];
}

/** What the pipeline needs of the approvals service (approvals/approval-service.ts). */
export interface ApprovalHolder extends ApprovalTasks {
  /**
   * How a gated call waits: held open, answered pending and made again, or (`task`, which
   * `auto` is) as an MCP task for a client that asks for one, else as `retry`.
   */
  deliveryFor(decision: Decision): 'hold' | 'retry' | 'task';
  /** Whether `task` delivery can happen at all (relayed `initialize` results then say so). */
  offersTasks(): boolean;
  /** `approvals.notify_elicitation`: tell a person whose client elicits that a call is held. */
  notifiesByElicitation(): boolean;
  hold(
    call: ApprovalGatedCall & {
      readonly onAsked?: (request: ApprovalRequest) => void;
      readonly onWaiting?: (info: { approvalId: string; elapsedMs: number }) => void;
    },
  ): Promise<ReleasedCall>;
  answerRetry(call: ApprovalGatedCall): Promise<
    | {
        readonly status: 'pending';
        readonly approval: {
          readonly id: string;
          readonly createdAt: number;
          readonly expiresAt: number;
        };
      }
    | ({ readonly status: 'released' } & ReleasedCall)
  >;
}

/** The approve stage's outcome: the decision the call goes under, or an answer given here. */
export type ApprovalOutcome = Decision | (CallObserver & { readonly answer: JsonRpcResponse });

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
 * approvers' once the call has been decided again; or, for a call delivered by retry or as a
 * task whose approval is pending, the pending answer or the task (nothing forwarded). A call
 * refused at release is recorded so.
 */
export async function approveCall(
  call: McpRequestCall,
  context: ClientMessageContext,
  authorization: Authorization,
  options: Pick<MessageStageOptions, 'approvals' | 'recorder' | 'authorizer' | 'revocations'>,
  held: HeldCalls,
  tasks?: TaskBook,
): Promise<ApprovalOutcome> {
  const { decision } = authorization;
  if (decision.effect !== 'approval_required') return decision;
  const delivery = isTaskReplay(call.message, tasks)
    ? 'retry' // a task's call, made on a poll once granted: never held
    : options.approvals?.deliveryFor(decision);
  // A task for a client that asked for one; `task` delivery is `retry` for any other.
  const asTask =
    delivery === 'task' && taskAugmentationOf(call.message, context) !== undefined
      ? tasks
      : undefined;
  const waiting =
    delivery === 'retry' || delivery === 'task'
      ? answerWithoutHolding(call, context, authorization, options, asTask)
      : holdForApproval(call, context, authorization, options, held);
  return waiting.catch(async (error: unknown) => {
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
  });
}

async function holdForApproval(
  call: McpRequestCall,
  ctx: ClientMessageContext,
  authorization: Authorization,
  options: Pick<MessageStageOptions, 'approvals' | 'recorder' | 'authorizer' | 'revocations'>,
  held: HeldCalls,
): Promise<ApprovalOutcome> {
  const { approvals } = options;
  const { decision } = authorization;
  const refuseUnavailable = (cause?: unknown) =>
    refuseApprovalUnavailable(call, ctx, decision, options, cause);
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
  const approved = await recordingUnavailable(
    approvals.hold({
      ...gatedCallOf(call, ctx, authorization, options, cancellation.signal),
      ...(ctx.elicits === true &&
        approvals.notifiesByElicitation() && {
          onAsked: (request: ApprovalRequest) => ctx.interim?.notify(approvalNotice(call, request)),
        }),
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
    }),
    refuseUnavailable,
  )
    .catch((error: unknown) => {
      // The gateway is stopping: the request stays pending for any replica, and the client is
      // told to call again, as with retry delivery.
      if (error instanceof ApprovalHandedOver) return error;
      throw error;
    })
    .finally(() => {
      held.delete(key);
      ctx.signal?.removeEventListener('abort', onGone);
    });
  if (approved instanceof ApprovalHandedOver) {
    return pendingAnswer(call.message.id, {
      id: approved.approvalId,
      expiresAt: approved.expiresAt,
    });
  }
  return approvedDecision(decision, approved, ctx.requestId);
}

/**
 * Retry and task delivery: the call is answered at once while its approval is pending, with a
 * pending tool result, or, for a task-augmented call (`asTask`), with a task bound to the
 * approval (answer-approval-task.ts answers its polls). It goes when it is made again once
 * granted: the same call (retry), or the first poll after the grant (task). No wait, so no
 * client timeout, and nothing held that a client which gave up could still release. Granted
 * already (the same call asked before): it goes now, and for a task its reply becomes the task.
 */
async function answerWithoutHolding(
  call: McpRequestCall,
  ctx: ClientMessageContext,
  authorization: Authorization,
  options: Pick<MessageStageOptions, 'approvals' | 'recorder' | 'authorizer' | 'revocations'>,
  asTask: TaskBook | undefined,
): Promise<ApprovalOutcome> {
  const { approvals } = options;
  const { decision } = authorization;
  const refuseUnavailable = (cause?: unknown) =>
    refuseApprovalUnavailable(call, ctx, decision, options, cause);
  if (!approvals || call.kind !== 'tool_call') return refuseUnavailable();
  const signal = ctx.signal ?? new AbortController().signal;
  const answer = await recordingUnavailable(
    approvals.answerRetry(gatedCallOf(call, ctx, authorization, options, signal)),
    refuseUnavailable,
  );
  if (answer.status === 'pending') {
    return asTask === undefined
      ? pendingAnswer(call.message.id, answer.approval)
      : createdTaskAnswer(call.message.id, answer.approval);
  }
  if (asTask !== undefined) bindReleasedTask(call.message, answer.approval, ctx, asTask);
  return approvedDecision(decision, answer, ctx.requestId);
}

/** The gated call as the approvals service takes it; `signal` withdraws it. */
function gatedCallOf(
  call: ToolCall,
  ctx: ClientMessageContext,
  authorization: Authorization,
  options: Pick<MessageStageOptions, 'authorizer' | 'revocations'>,
  signal: AbortSignal,
): ApprovalGatedCall {
  return {
    requestId: ctx.requestId,
    traceparent: ctx.traceparent,
    identity: ctx.identity,
    upstream: ctx.upstreamName,
    tool: call.name,
    arguments: call.arguments,
    decision: authorization.decision,
    toolDefinitionHash: authorization.toolDefinitionHash,
    signal,
    recheck: () => decideAgain(call, ctx, authorization, options),
  };
}

/** The approval service unavailable is refused (and recorded) by `refuse`; others pass on. */
function recordingUnavailable<T>(
  waiting: Promise<T>,
  refuse: (cause: unknown) => Promise<never>,
): Promise<T> {
  return waiting.catch((error: unknown) =>
    error instanceof WardenError && error.code === 'WARDEN_APPROVAL_UNAVAILABLE'
      ? refuse(error)
      : Promise.reject(error),
  );
}

/** The id prefix of the gateway's own elicitation requests: their answers end at the gateway. */
export const APPROVAL_NOTICE_ID_PREFIX = 'warden-approval-notice-';

/**
 * An elicitation request that tells the person their call waits for an approver. It asks for
 * nothing (an empty form): whatever they answer, the call waits for the approval alone.
 */
function approvalNotice(call: ToolCall, request: ApprovalRequest): JsonRpcRequest {
  const roles = request.approverRoles.join(' or ');
  return {
    jsonrpc: '2.0',
    id: `${APPROVAL_NOTICE_ID_PREFIX}${request.id}`,
    method: 'elicitation/create',
    params: {
      mode: 'form',
      message:
        `Your call to ${call.name} is waiting for approval ${request.id} by a person ` +
        `(${roles}). It goes ahead only once approved, until ` +
        `${new Date(request.expiresAt).toISOString()}; nothing is needed from you.`,
      requestedSchema: { type: 'object', properties: {} },
    },
  };
}

/** The tool result of a call whose approval is pending: what to do, and until when. */
function pendingAnswer(
  id: JsonRpcId,
  approval: { readonly id: string; readonly expiresAt: number },
): ApprovalOutcome {
  const expiresAt = new Date(approval.expiresAt).toISOString();
  const text =
    `Held for approval ${approval.id}; a person must approve it. Call again with the same ` +
    `arguments once approved (until ${expiresAt}).`;
  return answerWithToolError(id, text, {
    [APPROVAL_META_KEY]: { id: approval.id, status: 'pending', expiresAt },
  });
}

/**
 * The decision a released call goes under. Its reasons name the approval, and for a retried
 * call the request that asked for it, so the call's story links to the approval's.
 */
function approvedDecision(asked: Decision, released: ReleasedCall, requestId: string): Decision {
  const { approval, approvers } = released;
  const askedIn =
    approval.requestId === requestId ? '' : `, asked for in request ${approval.requestId}`;
  return {
    effect: 'allow',
    reasons: [`approved by ${approvers.join(' and ')} (approval ${approval.id}${askedIn})`],
    policies: asked.policies,
    ...(asked.policyVersion !== undefined && { policyVersion: asked.policyVersion }),
    ...(asked.approval !== undefined && { approval: asked.approval }),
  };
}

/**
 * The approval service could not record the request: the log must still show the refusal. If
 * the log is down too, the recorder has raised its alert; the caller is still told what it
 * needs to know: the approval could not be asked for.
 */
async function refuseApprovalUnavailable(
  call: McpRequestCall,
  ctx: ClientMessageContext,
  decision: Decision,
  { recorder }: Pick<MessageStageOptions, 'recorder'>,
  cause?: unknown,
): Promise<never> {
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
  const what = {
    token: 'the token',
    agent: 'the agent',
    user: 'the user',
    certificate: 'the certificate',
  }[revocation.kind];
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
