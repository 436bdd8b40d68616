/**
 * A call delivered by retry (`approvals.delivery: retry`): answered at once while its approval
 * is pending, so no client timeout applies, and released when the same call is made again once
 * it is granted. The same call is the same agent and user, upstream, tool and keyed arguments
 * hash. A grant releases one call, once (consumeApproval, in one store transaction), so two
 * retries racing after the grant cannot both go.
 */
import type { ApprovalRequest } from '../store/types.js';
import type { ApprovalState } from './approval-state.js';
import type { ApprovedCall, HeldCall } from './held-call.js';
import {
  approvalExpired,
  approvalStale,
  approvalUnavailable,
  approverRefusal,
} from './held-call-errors.js';
import { releaseApproval } from './release-approval.js';
import { askForApproval } from './request-approval.js';
import { expireApproval, expireUnusedGrant } from './settle-approval.js';

/** Still waiting for a person (the same request every time), or granted and released now. */
export type RetryAnswer =
  | { readonly status: 'pending'; readonly approval: ApprovalRequest }
  | ({ readonly status: 'released' } & ApprovedCall);

/**
 * Answers one attempt at an approval-gated call. The newest request for the same call decides,
 * until it expires: pending → the same pending answer (no second request); granted → decided
 * again and released (WARDEN_APPROVAL_STALE when the rules changed, WARDEN_APPROVAL_REFUSED when
 * another attempt used it first); refused → WARDEN_APPROVAL_REFUSED; invalidated →
 * WARDEN_APPROVAL_STALE. A request that timed out, pending or granted but not made again in
 * time, is told once (WARDEN_APPROVAL_EXPIRED). Otherwise — none yet, used, expired, withdrawn, or changed
 * arguments — a new request is asked for.
 */
export async function answerRetriedCall(
  state: ApprovalState,
  call: HeldCall,
): Promise<RetryAnswer> {
  const latest = await findLatestRequest(state, call);
  if (latest !== undefined && latest.consumedAt === undefined) {
    const live = state.now() < latest.expiresAt;
    switch (latest.status) {
      case 'pending':
        if (live) return { status: 'pending', approval: latest };
        if (await expireApproval(state, call, latest)) throw approvalExpired(latest.id);
        return answerRetriedCall(state, call); // a decision won the race: read it
      case 'granted':
        if (live) return { status: 'released', ...(await releaseApproval(state, call, latest)) };
        if (await expireUnusedGrant(state, call, latest)) throw approvalExpired(latest.id);
        return answerRetriedCall(state, call); // another attempt used it meanwhile: read again
      case 'refused':
        if (live) throw approverRefusal(latest);
        break;
      case 'invalidated':
        if (live) {
          throw approvalStale(
            latest.id,
            'the policy or the tool definition changed after the approval was asked for',
          );
        }
        break;
      case 'expired':
      case 'withdrawn':
        break;
    }
  }
  return { status: 'pending', approval: await askForApproval(state, call) };
}

export async function findLatestRequest(
  state: Pick<ApprovalState, 'store'>,
  call: HeldCall,
): Promise<ApprovalRequest | undefined> {
  try {
    return await state.store.approvals.findLatest({
      agent: call.identity.agent,
      user: call.identity.user,
      upstream: call.upstream,
      tool: call.tool,
      argumentsHash: call.argumentsHash,
    });
  } catch (error) {
    throw approvalUnavailable(error);
  }
}
