/**
 * The audit records of an approval, every one with the call's requestId so that
 * `warden audit show` tells the whole story: `approval.requested`, `approval.granted` (one per
 * approve vote), `approval.refused`, `approval.expired` and `approval.invalidated`.
 */
import { identityFields } from '../audit/call-entry.js';
import type { AuditEntry } from '../domain/audit-record.js';
import type { ApprovalRequest } from '../store/types.js';
import type { ApprovalState } from './approval-state.js';
import { approvingVoters, isoTime } from './approval-view.js';
import type { Approver, HeldCall } from './held-call.js';

/** What one vote did: counted (still pending), granted, refused, or found the request expired. */
export type VoteOutcome = 'voted' | 'granted' | 'refused' | 'expired';

/** Records an event whose outcome stands whether or not it is recorded (the call is refused). */
export async function recordLate(
  state: Pick<ApprovalState, 'record' | 'onError'>,
  entry: AuditEntry,
): Promise<void> {
  try {
    await state.record(entry);
  } catch (error) {
    state.onError(error, `could not record ${entry.event} for request ${entry.requestId ?? '?'}`);
  }
}

/** `approval.requested`: approval.approvers names the roles that may approve. */
export function requestedEntry(call: HeldCall, request: ApprovalRequest): AuditEntry {
  return {
    ...heldCallEntryBase(call, request),
    event: 'approval.requested',
    time: isoTime(request.createdAt),
    argumentsHash: request.argumentsHash,
    decision: call.decision,
    approval: {
      id: request.id,
      approvers: request.approverRoles,
      argumentsHash: request.argumentsHash,
    },
    details: {
      expiresAt: isoTime(request.expiresAt),
      approvalsRequired: request.approvalsRequired,
    },
  };
}

/**
 * The record of one vote: `approval.granted` for every approve vote, with details
 * `{ votes, required, final }` (`final: false` while a two-person approval stays pending);
 * `approval.refused` for a deny; `approval.expired` for a vote that came too late. A vote by an
 * asserted approver (the CLI's `--as`) also carries `assertedBy: { osUser, host }`.
 */
export function decisionEntry(
  request: ApprovalRequest,
  approver: Approver,
  outcome: VoteOutcome,
  reason: string,
  at: number,
  environment: string | undefined,
): AuditEntry {
  const base = { time: isoTime(at), ...requestEntryBase(request, environment) };
  const approval = (approvers: readonly string[]) => ({
    id: request.id,
    approvers,
    decidedAt: isoTime(at),
    argumentsHash: request.argumentsHash,
  });
  const { assertedBy } = approver;
  const asserted =
    assertedBy === undefined
      ? {}
      : { assertedBy: { osUser: assertedBy.osUser, host: assertedBy.host } };
  switch (outcome) {
    case 'expired':
      return {
        ...base,
        event: 'approval.expired',
        approval: { id: request.id, argumentsHash: request.argumentsHash },
        details: { noticedBy: approver.user, ...asserted },
      };
    case 'refused':
      return {
        ...base,
        event: 'approval.refused',
        approval: approval([approver.user]),
        details: { reason, ...asserted },
      };
    case 'voted':
    case 'granted': {
      const final = outcome === 'granted';
      const voters = approvingVoters(request);
      return {
        ...base,
        event: 'approval.granted',
        approval: approval(final ? voters : [approver.user]),
        details: {
          votes: voters.length,
          required: request.approvalsRequired,
          final,
          ...(reason !== '' && { reason }),
          ...asserted,
        },
      };
    }
  }
}

/**
 * `request.refused` for a vote the rules refused before it was counted (CLI decisions turned
 * off): who claimed to decide, from which OS account and host, and the verdict they asked for.
 */
export function refusedDecisionEntry(
  refused: {
    readonly id: string;
    readonly request: ApprovalRequest | undefined;
    readonly approver: Approver;
    readonly verdict: 'approve' | 'deny';
    readonly code: string;
  },
  at: number,
  environment: string | undefined,
): AuditEntry {
  const { id, request, approver, verdict, code } = refused;
  const { assertedBy } = approver;
  return {
    ...(request === undefined
      ? environment === undefined
        ? {}
        : { environment }
      : requestEntryBase(request, environment)),
    event: 'request.refused',
    time: isoTime(at),
    errorCode: code,
    details: {
      operation: 'approvals.decide',
      approvalId: id,
      verdict,
      approver: approver.user,
      ...(assertedBy !== undefined && {
        assertedBy: { osUser: assertedBy.osUser, host: assertedBy.host },
      }),
    },
  };
}

/** `approval.expired`, noticed by the holder when the timeout passed. */
export function expiredEntry(call: HeldCall, request: ApprovalRequest, at: number): AuditEntry {
  return {
    ...heldCallEntryBase(call, request),
    event: 'approval.expired',
    time: isoTime(at),
    approval: { id: request.id, argumentsHash: request.argumentsHash },
  };
}

/** `approval.refused` for a request the client withdrew (it cancelled or went away). */
export function withdrawnEntry(call: HeldCall, request: ApprovalRequest, at: number): AuditEntry {
  const decidedAt = isoTime(at);
  return {
    ...heldCallEntryBase(call, request),
    event: 'approval.refused',
    time: decidedAt,
    approval: {
      id: request.id,
      approvers: [],
      decidedAt,
      argumentsHash: request.argumentsHash,
    },
    details: { withdrawn: true, by: 'client' },
  };
}

/**
 * `approval.refused` for a request withdrawn without its held call at hand: its task was
 * cancelled (`{ by: 'client', via: 'tasks/cancel' }`), or the replica holding its call died
 * (`{ by: 'replica_gone', replica }`).
 */
export function withdrawnRequestEntry(
  request: ApprovalRequest,
  at: number,
  environment: string | undefined,
  why: Readonly<Record<string, string>>,
): AuditEntry {
  const decidedAt = isoTime(at);
  return {
    ...requestEntryBase(request, environment),
    event: 'approval.refused',
    time: decidedAt,
    approval: { id: request.id, approvers: [], decidedAt, argumentsHash: request.argumentsHash },
    details: { withdrawn: true, ...why },
  };
}

/** `approval.invalidated`, from the held call when it is at hand, else from the request. */
export function invalidatedEntry(
  request: ApprovalRequest,
  reason: string,
  at: number,
  from: { call: HeldCall } | { environment: string | undefined },
): AuditEntry {
  return {
    ...('call' in from
      ? heldCallEntryBase(from.call, request)
      : requestEntryBase(request, from.environment)),
    event: 'approval.invalidated',
    time: isoTime(at),
    approval: { id: request.id, argumentsHash: request.argumentsHash },
    details: { reason },
  };
}

/**
 * The facts every record of a held call shares. Under the request id that asked for the
 * approval: a call delivered by retry is made again under another, which its `call.allowed`
 * names, and the approval's story stays in one place.
 */
function heldCallEntryBase(call: HeldCall, request: ApprovalRequest) {
  return {
    requestId: request.requestId,
    ...(call.traceId !== undefined && { traceId: call.traceId }),
    ...identityFields(call.identity),
    upstream: request.upstream,
    tool: request.tool,
  };
}

/** The facts every record about a request shares, when the held call is not at hand. */
function requestEntryBase(request: ApprovalRequest, environment: string | undefined) {
  return {
    requestId: request.requestId,
    ...(environment !== undefined && { environment }),
    ...(request.user !== undefined && { user: request.user }),
    agent: request.agent,
    roles: request.roles,
    ...(request.model !== undefined && { model: request.model }),
    upstream: request.upstream,
    tool: request.tool,
  };
}
