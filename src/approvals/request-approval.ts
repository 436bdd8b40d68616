/**
 * Asks for an approval: stores the request for a held call, records `approval.requested`
 * durably (approvers may decide only a call the log shows), announces it, then (for a call that
 * is held) waits for the decision. When the request cannot be stored or recorded, the call is
 * refused at once.
 */
import { canonicalJson } from '../domain/canonical-json.js';
import type { ApprovalRequest } from '../store/types.js';
import { requestedEntry } from './approval-records.js';
import type { ApprovalState } from './approval-state.js';
import { awaitDecision } from './await-decision.js';
import type { ApprovedCall, HeldCall } from './held-call.js';
import { approvalUnavailable } from './held-call-errors.js';
import { releaseApproval } from './release-approval.js';
import { findLatestRequest } from './retry-approval.js';
import { settleApproval } from './settle-approval.js';

/** Asks for the approval, then holds the call until it is decided. */
export async function requestApproval(state: ApprovalState, call: HeldCall): Promise<ApprovedCall> {
  const handedOver = await findHandedOver(state, call);
  if (handedOver?.status === 'granted') return releaseApproval(state, call, handedOver);
  if (handedOver !== undefined) {
    // Held here from now on: if this replica stops too, the request is handed over again.
    const adopted = await state.store.approvals.update(handedOver.id, (current) =>
      current.status === 'pending' ? { ...current, heldBy: state.replica } : current,
    );
    return awaitDecision(state, call, told(call, adopted ?? handedOver));
  }
  return awaitDecision(state, call, told(call, await askForApproval(state, call, state.replica)));
}

/** Tells the holder its request is asked (a failure to tell changes nothing). */
function told(call: HeldCall, request: ApprovalRequest): ApprovalRequest {
  try {
    call.onAsked?.(request);
  } catch {
    // Telling the person is a courtesy: the call waits for its approver either way.
  }
  return request;
}

/**
 * The request a stopping replica handed over for this same call (same agent, user, tool and
 * arguments), still live and unused: pending and held by no replica, or granted meanwhile. The
 * call made again waits for that request, or goes at once, instead of asking anew.
 */
async function findHandedOver(
  state: ApprovalState,
  call: HeldCall,
): Promise<ApprovalRequest | undefined> {
  const latest = await findLatestRequest(state, call);
  if (latest === undefined || latest.consumedAt !== undefined) return undefined;
  if (state.now() >= latest.expiresAt) return undefined;
  if (latest.status === 'pending' && latest.heldBy === undefined) return latest;
  if (latest.status === 'granted') return latest;
  return undefined;
}

/** Stores, records and announces the pending request for the call; resolves with it. */
export async function askForApproval(
  state: ApprovalState,
  call: HeldCall,
  heldBy?: string,
): Promise<ApprovalRequest> {
  call.signal.throwIfAborted();
  const request = { ...newApprovalRequest(state, call), heldBy };
  try {
    await state.store.approvals.create(request);
  } catch (error) {
    throw approvalUnavailable(error);
  }
  try {
    await state.record(requestedEntry(call, request));
  } catch (error) {
    // Nobody may approve a call that was refused: take the request off the pending list.
    await settleApproval(state, request, 'withdrawn').catch((cause: unknown) =>
      state.onError(cause, `could not withdraw approval ${request.id} after its record failed`),
    );
    throw approvalUnavailable(error);
  }
  // A client gone already needs no approver: the wait withdraws the request at once.
  if (!call.signal.aborted) {
    try {
      state.notify(request);
    } catch (error) {
      state.onError(error, `announcing approval ${request.id} failed`);
    }
  }
  return request;
}

/** The pending request for a held call, bound to its arguments, tool and policy version. */
function newApprovalRequest(
  state: Pick<ApprovalState, 'now' | 'newId'>,
  call: HeldCall,
): ApprovalRequest {
  const { decision, identity } = call;
  const requirement = decision.approval;
  if (decision.effect !== 'approval_required' || requirement === undefined) {
    throw new TypeError('hold() needs a decision with effect approval_required and its approval');
  }
  if (decision.policyVersion === undefined) {
    throw new TypeError('hold() needs the policyVersion the approval is bound to');
  }
  const createdAt = state.now();
  return {
    id: state.newId(),
    requestId: call.requestId,
    status: 'pending',
    createdAt,
    expiresAt: createdAt + requirement.timeoutMs,
    decidedAt: undefined,
    consumedAt: undefined,
    user: identity.user,
    agent: identity.agent,
    roles: identity.roles,
    model: identity.declaredModel,
    upstream: call.upstream,
    tool: call.tool,
    arguments: canonicalJson(call.arguments),
    argumentsHash: call.argumentsHash,
    toolDefinitionHash: call.toolDefinitionHash,
    policyVersion: decision.policyVersion,
    grants: requirement.grants,
    scopes: requirement.scopes,
    approverRoles: requirement.approverRoles,
    approvalsRequired: requirement.approvalsRequired,
    votes: [],
  };
}
