/**
 * Waits for a held call's request to be decided. Decisions made in this process wake the holder
 * at once; decisions made elsewhere (the CLI, another replica) are seen by reading the request
 * every `pollIntervalMs`. While it waits, the holder is told of progress every
 * `progressEveryMs`; when the timeout passes, the request expires; when the client goes away,
 * it is withdrawn.
 */
import type { ApprovalRequest } from '../store/types.js';
import { createAlarm } from './alarm.js';
import { addHolder, removeHolder, type ApprovalState } from './approval-state.js';
import type { ApprovedCall, HeldCall } from './held-call.js';
import {
  approvalExpired,
  approvalRefusal,
  approvalStale,
  approvalUnavailable,
  approverRefusal,
} from './held-call-errors.js';
import { ApprovalHandedOver } from './errors.js';
import { releaseApproval } from './release-approval.js';
import { expireApproval, withdrawApproval } from './settle-approval.js';

/**
 * Resolves when the request is granted and the call released; rejects when it is refused,
 * invalidated, expired or withdrawn, or when the request vanished from the store.
 */
export async function awaitDecision(
  state: ApprovalState,
  call: HeldCall,
  request: ApprovalRequest,
): Promise<ApprovedCall> {
  const { id } = request;
  const alarm = createAlarm();
  addHolder(state.holders, id, alarm.ring);
  call.signal.addEventListener('abort', alarm.ring, { once: true });
  const progress = startProgress(state, call, request);
  let failing = false;
  try {
    for (;;) {
      if (call.signal.aborted) {
        // A stopping gateway hands the call over rather than withdrawing it.
        if (isShutdown(call.signal.reason)) throw await handOver(state, request);
        return await withdrawApproval(state, call, request);
      }
      let current: ApprovalRequest | undefined = request;
      try {
        current = await state.store.approvals.get(id);
        failing = false;
      } catch (error) {
        // Keep waiting: the store may come back before the timeout, which still refuses.
        if (!failing) state.onError(error, `reading approval ${id} failed; still waiting`);
        failing = true;
      }
      if (current === undefined) throw approvalUnavailable(new Error(`approval ${id} vanished`));
      switch (current.status) {
        case 'granted':
          return await releaseApproval(state, call, request);
        case 'invalidated':
          throw approvalStale(id, 'the policy or the tool definition changed while it waited');
        case 'refused':
          throw approverRefusal(current);
        case 'expired':
          throw approvalExpired(id);
        case 'withdrawn':
          throw approvalRefusal(id, 'the approval request was withdrawn');
        case 'pending':
          if (state.now() >= current.expiresAt) {
            if (await expireApproval(state, call, request)) throw approvalExpired(id);
            continue; // a decision won the race: read it
          }
      }
      await alarm.sleep(
        Math.min(state.pollIntervalMs, Math.max(0, request.expiresAt - state.now())),
      );
    }
  } finally {
    if (progress !== undefined) clearInterval(progress);
    call.signal.removeEventListener('abort', alarm.ring);
    removeHolder(state.holders, id, alarm.ring);
    alarm.cancel();
  }
}

/** Calls the holder's `onWaiting` every `progressEveryMs`, if it has one. */
function startProgress(
  state: Pick<ApprovalState, 'now' | 'onError' | 'progressEveryMs'>,
  call: HeldCall,
  request: ApprovalRequest,
): NodeJS.Timeout | undefined {
  if (call.onWaiting === undefined) return undefined;
  return setInterval(() => {
    try {
      call.onWaiting?.({ approvalId: request.id, elapsedMs: state.now() - request.createdAt });
    } catch (error) {
      state.onError(error, `the progress callback of approval ${request.id} failed`);
    }
  }, state.progressEveryMs);
}

function isShutdown(reason: unknown): boolean {
  return (reason as { code?: unknown } | undefined)?.code === 'WARDEN_SHUTTING_DOWN';
}

/**
 * The request stays pending for any replica to release, held by none: the client is told to
 * make the call again. When it was decided meanwhile, the decision stands and is told by the
 * retry as well.
 */
async function handOver(
  state: Pick<ApprovalState, 'store'>,
  request: ApprovalRequest,
): Promise<ApprovalHandedOver> {
  await state.store.approvals.update(request.id, (current) =>
    current.status === 'pending' ? { ...current, heldBy: undefined } : current,
  );
  return new ApprovalHandedOver(request.id, request.expiresAt);
}
