/**
 * Releases a granted call: it is decided again under the rules in force now, and its approval
 * is consumed — once, and only for the call it is bound to.
 */
import { WardenError } from '../domain/errors.js';
import type { ApprovalRequest } from '../store/types.js';
import type { ApprovalState } from './approval-state.js';
import { approvingVoters, isoTime } from './approval-view.js';
import type { ApprovalBinding, ApprovedCall, HeldCall } from './held-call.js';
import { approvalRefusal, approvalStale, approvalUnavailable } from './held-call-errors.js';
import { invalidateApproval } from './settle-approval.js';

/**
 * Uses a granted approval for the call it is bound to; succeeds once. Rejects with
 * WARDEN_APPROVAL_REFUSED when it is not granted, was used already, or is bound to anything
 * else, and with WARDEN_APPROVAL_STALE when the tool definition or policy version changed.
 */
export async function consumeApproval(
  state: Pick<ApprovalState, 'store' | 'now'>,
  id: string,
  binding: ApprovalBinding,
): Promise<ApprovalRequest> {
  const at = state.now();
  let consumed: ApprovalRequest | undefined;
  try {
    consumed = await state.store.approvals.update(id, (current) => {
      if (current.status !== 'granted') {
        throw approvalRefusal(id, `the approval is ${current.status}`);
      }
      if (current.consumedAt !== undefined) {
        throw approvalRefusal(
          id,
          `the approval was already used at ${isoTime(current.consumedAt)}`,
        );
      }
      const mismatch = bindingMismatch(current, binding);
      if (mismatch === 'tool definition' || mismatch === 'policy version') {
        throw approvalStale(id, `the ${mismatch} changed after the approval was asked for`);
      }
      if (mismatch !== undefined) {
        throw approvalRefusal(id, `the approval was given for a different ${mismatch}`);
      }
      return { ...current, consumedAt: at };
    });
  } catch (error) {
    if (error instanceof WardenError) throw error;
    throw approvalUnavailable(error);
  }
  if (consumed === undefined) throw approvalRefusal(id, 'no such approval request');
  return consumed;
}

/**
 * A granted request is decided again before its approval is used: the call goes only if the
 * rules in force now still lead to the same question the approver answered. When they do not,
 * the approval is invalidated and nothing is released.
 */
export async function releaseApproval(
  state: ApprovalState,
  call: HeldCall,
  request: ApprovalRequest,
): Promise<ApprovedCall> {
  let current: Pick<ApprovalBinding, 'policyVersion' | 'toolDefinitionHash'>;
  try {
    current = await call.recheck();
  } catch (error) {
    const reason =
      error instanceof WardenError && typeof error.details?.['reason'] === 'string'
        ? error.details['reason']
        : error instanceof WardenError
          ? error.code
          : 'the call could not be decided again';
    await invalidateOrReport(state, request.id, reason, call);
    throw error;
  }
  // A client that gave up while the call was decided again is told nothing more: not used, so
  // nothing is sent that it believes failed.
  call.signal.throwIfAborted();
  let approval: ApprovalRequest;
  try {
    approval = await consumeApproval(state, request.id, { ...bindingOf(request), ...current });
  } catch (error) {
    if (error instanceof WardenError && error.code === 'WARDEN_APPROVAL_STALE') {
      const reason = String(error.details?.['reason'] ?? 'stale');
      await invalidateOrReport(state, request.id, reason, call);
    }
    throw error;
  }
  return { approval, approvers: approvingVoters(approval) };
}

/** What a stored request binds its approval to. */
export function bindingOf(request: ApprovalRequest): ApprovalBinding {
  return {
    upstream: request.upstream,
    tool: request.tool,
    arguments: request.arguments,
    argumentsHash: request.argumentsHash,
    toolDefinitionHash: request.toolDefinitionHash,
    policyVersion: request.policyVersion,
  };
}

async function invalidateOrReport(
  state: ApprovalState,
  id: string,
  reason: string,
  call: HeldCall,
): Promise<void> {
  await invalidateApproval(state, id, reason, call).catch((cause: unknown) =>
    state.onError(cause, `could not mark approval ${id} invalidated`),
  );
}

/** What differs between an approval and the call presented for it, if anything. */
function bindingMismatch(approval: ApprovalRequest, call: ApprovalBinding): string | undefined {
  if (approval.upstream !== call.upstream || approval.tool !== call.tool) return 'tool';
  if (approval.arguments !== call.arguments || approval.argumentsHash !== call.argumentsHash) {
    return 'set of arguments';
  }
  if (approval.toolDefinitionHash !== call.toolDefinitionHash) return 'tool definition';
  if (approval.policyVersion !== call.policyVersion) return 'policy version';
  return undefined;
}
