/**
 * The wire errors a held call ends with when it is not released: refused, stale, expired, or
 * the approval store unavailable (fail closed).
 */
import { WardenError } from '../domain/errors.js';
import type { ApprovalRequest } from '../store/types.js';

export function approvalUnavailable(cause: unknown): WardenError {
  return new WardenError('WARDEN_APPROVAL_UNAVAILABLE', undefined, { cause });
}

export function approvalRefusal(approvalId: string, reason: string): WardenError {
  return new WardenError('WARDEN_APPROVAL_REFUSED', `The call was refused: ${reason}.`, {
    details: { approvalId, reason },
  });
}

/** The refusal of a request an approver denied, with the approver's reason. */
export function approverRefusal(request: ApprovalRequest): WardenError {
  const deny = request.votes.findLast((vote) => vote.decision === 'deny');
  const reason = deny?.reason || 'an approver refused the call';
  return new WardenError('WARDEN_APPROVAL_REFUSED', `An approver refused this call: ${reason}`, {
    details: { approvalId: request.id, reason },
  });
}

export function approvalStale(approvalId: string, reason: string): WardenError {
  return new WardenError(
    'WARDEN_APPROVAL_STALE',
    `The call was approved but not forwarded: ${reason}. Call again to be decided under the rules in force now.`,
    { details: { approvalId, reason } },
  );
}

export function approvalExpired(approvalId: string): WardenError {
  return new WardenError('WARDEN_APPROVAL_EXPIRED', undefined, { details: { approvalId } });
}
