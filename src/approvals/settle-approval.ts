/**
 * Ends a request nobody granted, or one that may no longer be used: expired (the timeout
 * passed), withdrawn (the client went away), invalidated (the policy or the tool definition
 * changed). Each records what happened; a request already decided is left as it is.
 */
import type { ApprovalRequest } from '../store/types.js';
import {
  expiredEntry,
  invalidatedEntry,
  recordLate,
  withdrawnEntry,
  withdrawnRequestEntry,
} from './approval-records.js';
import { wakeHolders, type ApprovalState } from './approval-state.js';
import type { HeldCall } from './held-call.js';

/** Moves a pending request to `status`; undefined when it was not pending any more. */
export async function settleApproval(
  state: Pick<ApprovalState, 'store' | 'now'>,
  request: ApprovalRequest,
  status: 'expired' | 'withdrawn',
): Promise<ApprovalRequest | undefined> {
  const at = state.now();
  let changed = false as boolean;
  const updated = await state.store.approvals.update(request.id, (current) => {
    changed = current.status === 'pending';
    return changed ? { ...current, status, decidedAt: at } : current;
  });
  return changed ? updated : undefined;
}

/** Marks a still-pending request expired; false when a decision got there first. */
export async function expireApproval(
  state: Pick<ApprovalState, 'store' | 'now' | 'record' | 'onError'>,
  call: HeldCall,
  request: ApprovalRequest,
): Promise<boolean> {
  const settled = await settleOrReport(state, request, 'expired');
  // The call is refused either way (fail closed); the request stays pending but unusable.
  if (settled === 'failed') return true;
  if (settled === undefined) return false;
  await recordLate(state, expiredEntry(call, request, settled.decidedAt ?? state.now()));
  return true;
}

/**
 * Marks a granted request nobody used before its timeout expired (a call delivered by retry that
 * was not made again in time), and records it; false when it was used or changed meanwhile.
 */
export async function expireUnusedGrant(
  state: Pick<ApprovalState, 'store' | 'now' | 'record' | 'onError'>,
  call: HeldCall,
  request: ApprovalRequest,
): Promise<boolean> {
  const at = state.now();
  let changed = false as boolean;
  let updated: ApprovalRequest | undefined;
  try {
    updated = await state.store.approvals.update(request.id, (current) => {
      changed = current.status === 'granted' && current.consumedAt === undefined;
      return changed ? { ...current, status: 'expired' } : current;
    });
  } catch (error) {
    // The call is refused either way (fail closed): the grant stays unused, past its time.
    state.onError(error, `could not mark approval ${request.id} expired`);
    return true;
  }
  if (!changed || updated === undefined) return false;
  await recordLate(state, expiredEntry(call, updated, at));
  return true;
}

/** Marks the request of a client that went away withdrawn, then rejects with its reason. */
export async function withdrawApproval(
  state: Pick<ApprovalState, 'store' | 'now' | 'record' | 'onError'>,
  call: HeldCall,
  request: ApprovalRequest,
): Promise<never> {
  const settled = await settleOrReport(state, request, 'withdrawn');
  if (settled !== 'failed' && settled !== undefined) {
    await recordLate(state, withdrawnEntry(call, request, settled.decidedAt ?? state.now()));
  }
  throw call.signal.reason;
}

/** `settleApproval`, with a store failure reported (and told as 'failed') instead of thrown. */
async function settleOrReport(
  state: Pick<ApprovalState, 'store' | 'now' | 'onError'>,
  request: ApprovalRequest,
  status: 'expired' | 'withdrawn',
): Promise<ApprovalRequest | undefined | 'failed'> {
  try {
    return await settleApproval(state, request, status);
  } catch (error) {
    state.onError(error, `could not mark approval ${request.id} ${status}`);
    return 'failed';
  }
}

/**
 * Marks a pending or granted-but-unused request invalidated, records why, tells approvers and
 * wakes its holder; undefined when it was in neither state (decided, used, or gone).
 */
export async function invalidateApproval(
  state: ApprovalState,
  id: string,
  reason: string,
  call?: HeldCall,
): Promise<ApprovalRequest | undefined> {
  const at = state.now();
  let changed = false as boolean;
  const updated = await state.store.approvals.update(id, (current) => {
    changed =
      current.status === 'pending' ||
      (current.status === 'granted' && current.consumedAt === undefined);
    return changed ? { ...current, status: 'invalidated', decidedAt: at } : current;
  });
  if (!changed || updated === undefined) return undefined;
  await recordLate(
    state,
    invalidatedEntry(
      updated,
      reason,
      at,
      call === undefined ? { environment: state.environment } : { call },
    ),
  );
  try {
    state.notifyInvalidated?.(updated, reason);
  } catch (error) {
    state.onError(error, `announcing the invalidation of approval ${id} failed`);
  }
  wakeHolders(state.holders, id);
  return updated;
}

/**
 * Withdraws the pending requests whose calls `replica` held open: it stopped or died, and the
 * clients' connections went with it, so nothing can ever release those calls. Each is recorded
 * (`approval.refused`, withdrawn, by the replica's end) and approvers are told it is gone.
 * Resolves with the ids withdrawn.
 */
export async function withdrawOrphanedApprovals(
  state: ApprovalState,
  replica: string,
): Promise<string[]> {
  const pending = await state.store.approvals.list({ status: 'pending', limit: 1000 });
  const withdrawn: string[] = [];
  for (const request of pending.filter((candidate) => candidate.heldBy === replica)) {
    const settled = await settleApproval(state, request, 'withdrawn');
    if (settled === undefined) continue;
    withdrawn.push(request.id);
    await state
      .record(
        withdrawnRequestEntry(settled, state.now(), state.environment, {
          by: 'replica_gone',
          replica,
        }),
      )
      .catch((error: unknown) =>
        state.onError(error, `could not record the withdrawal of approval ${request.id}`),
      );
    try {
      state.notifyInvalidated?.(settled, `the replica holding the call (${replica}) stopped`);
    } catch (error) {
      state.onError(error, `announcing the withdrawal of approval ${request.id} failed`);
    }
    wakeHolders(state.holders, request.id);
  }
  return withdrawn;
}

/** Invalidates every pending request `affected` picks; resolves with the ids invalidated. */
export async function invalidatePendingApprovals(
  state: ApprovalState,
  affected: (request: ApprovalRequest) => boolean,
  reason: string,
): Promise<string[]> {
  const pending = await state.store.approvals.list({ status: 'pending', limit: 1000 });
  const invalidated: string[] = [];
  for (const request of pending.filter(affected)) {
    if ((await invalidateApproval(state, request.id, reason)) !== undefined) {
      invalidated.push(request.id);
    }
  }
  return invalidated;
}
