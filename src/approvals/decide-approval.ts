/**
 * One approver's vote, applied in one store transaction, so that two approvers acting at the
 * same moment are serialised and the second sees the first's result. The rules:
 *   - only a pending request can be decided;
 *   - the requesting user, and the requesting agent (as a user id or as an agent the decision
 *     came through), can never approve their own call;
 *   - the approver must hold one of the request's approver roles (from the approver registry in
 *     config, never from the request);
 *   - one vote per approver; a deny refuses at once; approvals grant once `approvalsRequired`
 *     distinct approvers have approved (the two-person rule);
 *   - a decision after the timeout marks the request expired instead;
 *   - an approver named rather than authenticated (the CLI's `--as`) decides only while
 *     `approvals.cli_decisions` allows it.
 */
import { WardenError } from '../domain/errors.js';
import type { ApprovalRequest, ApprovalVote } from '../store/types.js';
import {
  decisionEntry,
  recordLate,
  refusedDecisionEntry,
  type VoteOutcome,
} from './approval-records.js';
import { wakeHolders, type ApprovalState } from './approval-state.js';
import { approvingVoters, isoTime } from './approval-view.js';
import { ApprovalError } from './errors.js';
import type { Approver, Verdict } from './held-call.js';
import { approvalUnavailable } from './held-call-errors.js';

/** Applies the vote and records it; rejects with an ApprovalError when the rules refuse it. */
export async function decideApproval(
  state: Pick<
    ApprovalState,
    'store' | 'now' | 'record' | 'onError' | 'environment' | 'holders' | 'cliDecisions'
  >,
  id: string,
  approver: Approver,
  verdict: Verdict,
  reason: string,
): Promise<ApprovalRequest> {
  if (approver.assertedBy !== undefined && !state.cliDecisions) {
    const refusal = new ApprovalError(
      'APPROVAL_CLI_DECISIONS_OFF',
      id,
      'decisions from the command line are turned off (approvals.cli_decisions: false); decide through the admin API (POST /admin/approvals/ID/approve or /deny) with your own token',
    );
    await recordRefusedDecision(state, id, approver, verdict, refusal.code);
    throw refusal;
  }
  const at = state.now();
  let outcome = 'voted' as VoteOutcome;
  let decided: ApprovalRequest | undefined;
  try {
    decided = await state.store.approvals.update(id, (current) => {
      const next = castVote(current, approver, verdict, reason, at);
      outcome = next.outcome;
      return next.request;
    });
  } catch (error) {
    if (error instanceof ApprovalError) throw error;
    throw approvalUnavailable(error);
  }
  if (decided === undefined) {
    throw new ApprovalError('APPROVAL_NOT_FOUND', id, `no approval request has the id ${id}`);
  }
  try {
    await state.record(decisionEntry(decided, approver, outcome, reason, at, state.environment));
  } catch (error) {
    state.onError(error, `could not record the decision on approval ${id}`);
    throw new WardenError(
      'WARDEN_AUDIT_UNAVAILABLE',
      'The decision was stored, but the audit log could not record it; operators are alerted.',
      { cause: error, details: { approvalId: id } },
    );
  } finally {
    // Woken after the record, so the log shows the decision before the call it releases.
    wakeHolders(state.holders, id);
  }
  if (outcome === 'expired') {
    throw new ApprovalError(
      'APPROVAL_EXPIRED',
      id,
      `approval ${id} expired at ${isoTime(decided.expiresAt)} before this decision; the call was refused`,
    );
  }
  return decided;
}

/** The request with the vote applied, and what the vote did; throws when a rule refuses it. */
function castVote(
  current: ApprovalRequest,
  approver: Approver,
  verdict: Verdict,
  reason: string,
  at: number,
): { request: ApprovalRequest; outcome: VoteOutcome } {
  checkVoter(current, approver);
  // Expired is checked after the rules, so only an eligible approver can mark it expired.
  if (at >= current.expiresAt) {
    return { outcome: 'expired', request: { ...current, status: 'expired', decidedAt: at } };
  }
  const vote: ApprovalVote = { approver: approver.user, decision: verdict, reason, at };
  const next = { ...current, votes: [...current.votes, vote] };
  if (verdict === 'deny') {
    return { outcome: 'refused', request: { ...next, status: 'refused', decidedAt: at } };
  }
  if (approvingVoters(next).length >= current.approvalsRequired) {
    return { outcome: 'granted', request: { ...next, status: 'granted', decidedAt: at } };
  }
  return { outcome: 'voted', request: next };
}

/** Throws the ApprovalError that refuses this vote, if any rule does. */
function checkVoter(request: ApprovalRequest, approver: Approver): void {
  const { id } = request;
  if (request.status !== 'pending') {
    const since = request.decidedAt === undefined ? '' : ` since ${isoTime(request.decidedAt)}`;
    const used = request.consumedAt === undefined ? '' : ', and the call was released';
    throw new ApprovalError(
      'APPROVAL_ALREADY_DECIDED',
      id,
      `approval ${id} is already ${request.status}${since}${used}`,
    );
  }
  const requesters = [request.user, request.agent].filter((who) => who !== undefined);
  const actors = [approver.user, ...(approver.via ?? [])];
  if (actors.some((actor) => requesters.some((requester) => sameId(actor, requester)))) {
    throw new ApprovalError(
      'APPROVAL_SELF_APPROVAL',
      id,
      `${approver.user} cannot decide approval ${id}: nobody approves a call they (or their agent) made`,
    );
  }
  if (!approver.roles.some((role) => request.approverRoles.includes(role))) {
    throw new ApprovalError(
      'APPROVAL_NOT_AN_APPROVER',
      id,
      `${approver.user} holds none of the roles that may decide approval ${id} (${request.approverRoles.join(', ') || 'none configured'})`,
    );
  }
  if (request.votes.some((vote) => sameId(vote.approver, approver.user))) {
    throw new ApprovalError(
      'APPROVAL_ALREADY_VOTED',
      id,
      `${approver.user} has already voted on approval ${id}; a second approval must come from someone else`,
    );
  }
}

/**
 * User ids compared for the separation-of-duties rules: letter case and surrounding space
 * ignored, so `Carol@example.com` cannot approve a call of `carol@example.com` or vote twice.
 */
function sameId(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/**
 * A vote the rules refused before it was counted leaves a `request.refused` record, under the
 * request id of the call it was about when that request exists, so the call's story shows who
 * tried to decide it, and from where. The refusal stands whether or not it is recorded.
 */
async function recordRefusedDecision(
  state: Pick<ApprovalState, 'store' | 'now' | 'record' | 'onError' | 'environment'>,
  id: string,
  approver: Approver,
  verdict: Verdict,
  code: string,
): Promise<void> {
  const request = await state.store.approvals.get(id).catch(() => undefined);
  await recordLate(
    state,
    refusedDecisionEntry({ id, request, approver, verdict, code }, state.now(), state.environment),
  );
}
