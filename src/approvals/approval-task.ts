/**
 * An approval seen as an MCP task (2025-11-25, `approvals.delivery: task`): a task-augmented
 * `tools/call` that needs approval is answered with a task whose id names its approval request,
 * and the task's status is read from that request in the store, so any replica can tell it.
 * Only the call's result, once made, lives in the memory of the replica that made it.
 */
import type { WardenError } from '../domain/errors.js';
import type { TaskStatus } from '../mcp/task-messages.js';
import type { ApprovalRequest } from '../store/types.js';
import { recordLate, withdrawnRequestEntry } from './approval-records.js';
import type { ApprovalState } from './approval-state.js';
import { approvingVoters, isoTime } from './approval-view.js';
import {
  approvalExpired,
  approvalRefusal,
  approvalStale,
  approverRefusal,
} from './held-call-errors.js';
import { settleApproval } from './settle-approval.js';

/** Marks the gateway's own task ids: anything else is the upstream's task, and goes there. */
const TASK_ID_PREFIX = 'warden-approval-';

export function taskIdOf(approvalId: string): string {
  return `${TASK_ID_PREFIX}${approvalId}`;
}

/** The approval a task id names, when it is one of the gateway's. */
export function approvalIdOfTask(taskId: unknown): string | undefined {
  if (typeof taskId !== 'string' || !taskId.startsWith(TASK_ID_PREFIX)) return undefined;
  const id = taskId.slice(TASK_ID_PREFIX.length);
  return id === '' ? undefined : id;
}

/**
 * What the request tells of its task: a status, or `release` when only making the call (or
 * finding it too late) can tell — granted and not used yet, or pending past its timeout. A
 * pending request is `working`, not `input_required`: the input awaited is a person's, not the
 * client's.
 */
export function readApprovalTask(
  request: ApprovalRequest,
  now: number,
): { readonly status: TaskStatus; readonly statusMessage: string } | 'release' {
  const { id } = request;
  switch (request.status) {
    case 'pending':
      if (now >= request.expiresAt) return 'release';
      return {
        status: 'working',
        statusMessage: `waiting for approval ${id}: a person must approve it (until ${isoTime(request.expiresAt)})`,
      };
    case 'granted':
      if (request.consumedAt === undefined) return 'release';
      return {
        status: 'completed',
        statusMessage: `approved by ${approvingVoters(request).join(' and ')} (approval ${id}); the call was made`,
      };
    case 'refused':
    case 'expired':
    case 'invalidated':
      return { status: 'failed', statusMessage: taskFailureOf(request).message };
    case 'withdrawn':
      return { status: 'cancelled', statusMessage: `approval ${id} was withdrawn` };
  }
}

/** The error `tasks/result` answers for a task that ended without its call being made. */
export function taskFailureOf(request: ApprovalRequest): WardenError {
  switch (request.status) {
    case 'refused':
      return approverRefusal(request);
    case 'expired':
      return approvalExpired(request.id);
    case 'invalidated':
      return approvalStale(
        request.id,
        'the policy or the tool definition changed after the approval was asked for',
      );
    default:
      return approvalRefusal(request.id, 'the task was cancelled and its approval withdrawn');
  }
}

/**
 * `tasks/cancel`: the approval request is withdrawn, as a held call's is when its client goes
 * away, and recorded so. Undefined when it was no longer pending (nothing to withdraw).
 */
export async function cancelApprovalTask(
  state: Pick<ApprovalState, 'store' | 'now' | 'record' | 'onError' | 'environment'>,
  request: ApprovalRequest,
): Promise<ApprovalRequest | undefined> {
  const settled = await settleApproval(state, request, 'withdrawn');
  if (settled === undefined) return undefined;
  await recordLate(
    state,
    withdrawnRequestEntry(settled, settled.decidedAt ?? state.now(), state.environment, {
      by: 'client',
      via: 'tasks/cancel',
    }),
  );
  return settled;
}
