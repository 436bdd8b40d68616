/**
 * Human approvals for sensitive calls. A call whose decision is `approval_required` is held:
 * `hold` stores an approval request, records `approval.requested` durably, announces it
 * (`notify`), and waits until approvers decide (`decide`, from the admin API or the CLI), the
 * timeout passes, or the client goes away. `answerRetry` asks the same without waiting, and
 * releases the call when it is made again once granted (delivered by retry, or as an MCP task
 * whose status is the request's: approval-task.ts). A granted approval releases exactly the
 * call it was given for, once.
 *
 * The service composes one module per concern, each a set of plain functions over the explicit
 * `ApprovalState` (approval-state.ts):
 *   - request-approval.ts: the request's creation and its `approval.requested` record;
 *   - await-decision.ts: waiting (holders woken in this process, polling for the rest,
 *     progress, the timeout, the client going away);
 *   - decide-approval.ts: a vote under the separation-of-duties rules, in one transaction;
 *   - retry-approval.ts: a call delivered by retry, answered pending or released;
 *   - release-approval.ts: the recheck at release, consuming the approval, its binding;
 *   - settle-approval.ts: expiring, withdrawing, invalidating;
 *   - approval-records.ts: the audit records of every step.
 */
import { randomUUID } from 'node:crypto';
import type { ApprovalsConfig } from '../config/config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import type { ApprovalRequest, ApprovalStatus, Store } from '../store/types.js';
import type { ApprovalState } from './approval-state.js';
import { cancelApprovalTask } from './approval-task.js';
import { decideApproval } from './decide-approval.js';
import type {
  ApprovalBinding,
  ApprovedCall,
  Approver,
  AssertedBy,
  HeldCall,
  Verdict,
} from './held-call.js';
import { bindingOf, consumeApproval } from './release-approval.js';
import { requestApproval } from './request-approval.js';
import { answerRetriedCall, type RetryAnswer } from './retry-approval.js';
import { invalidatePendingApprovals, withdrawOrphanedApprovals } from './settle-approval.js';

export type { ApprovalBinding, ApprovedCall, Approver, AssertedBy, HeldCall, RetryAnswer, Verdict };
export { bindingOf };

const DEFAULT_PROGRESS_EVERY_MS = 5000;

export interface ApprovalServiceOptions {
  readonly store: Pick<Store, 'approvals'>;
  /** `cliDecisions` defaults to true: asserted approvers may decide. */
  readonly config: Pick<ApprovalsConfig, 'pollIntervalMs'> &
    Partial<Pick<ApprovalsConfig, 'cliDecisions'>>;
  readonly now: () => number;
  readonly newId?: () => string;
  /** Appends one audit record durably; rejects when it cannot. */
  readonly record: (entry: AuditEntry) => Promise<void>;
  /** Announces a new request (webhooks, console); must not throw. */
  readonly notify: (request: ApprovalRequest) => void;
  /** Tells approvers a request they may have seen can no longer be decided; must not throw. */
  readonly notifyInvalidated?: (request: ApprovalRequest, reason: string) => void;
  /** Told about failures that do not change the outcome (a late audit record, a poll). */
  readonly onError?: (error: unknown, message: string) => void;
  readonly progressEveryMs?: number;
  /** Stamped on the records `decide` makes (hold takes it from the caller's identity). */
  readonly environment?: string;
  /** This replica's name, written on the requests whose calls it holds open. */
  readonly replica?: string;
}

export interface ApprovalService {
  /**
   * Holds the call until it is approved (resolves), refused (WARDEN_APPROVAL_REFUSED), expired
   * (WARDEN_APPROVAL_EXPIRED) or withdrawn by the client (rejects with the signal's reason). When
   * the request cannot be stored or `approval.requested` cannot be recorded, rejects with
   * WARDEN_APPROVAL_UNAVAILABLE at once (fail closed).
   */
  hold(call: HeldCall): Promise<ApprovedCall>;
  /**
   * One attempt at a call delivered by retry: resolves pending (with the request, new or the
   * same as before) without waiting, or released once its approval is granted; rejects as
   * `hold` does when it is refused, stale or expired (retry-approval.ts).
   */
  answerRetry(call: HeldCall): Promise<RetryAnswer>;
  /**
   * Uses a granted approval for the call it is bound to; succeeds once. Rejects with
   * WARDEN_APPROVAL_REFUSED when it is not granted, was used already, or is bound to anything else.
   */
  consume(id: string, binding: ApprovalBinding): Promise<ApprovalRequest>;
  /**
   * One approver's vote; rejects with an ApprovalError when the rules refuse it, or when the
   * approver is asserted (`assertedBy`) and `config.cliDecisions` is false.
   */
  decide(
    id: string,
    approver: Approver,
    verdict: Verdict,
    reason: string,
  ): Promise<ApprovalRequest>;
  /**
   * Invalidates every pending request `affected` picks (the policy or a tool's definition
   * changed): each is marked invalidated, recorded as `approval.invalidated` with `reason`,
   * announced to approvers, and its held call is refused with WARDEN_APPROVAL_STALE.
   * Resolves with the ids invalidated.
   */
  invalidatePending(
    affected: (request: ApprovalRequest) => boolean,
    reason: string,
  ): Promise<string[]>;
  /**
   * Withdraws the request behind a task its client cancelled (`tasks/cancel`), recorded as
   * `approval.refused`; undefined when it was not pending any more.
   */
  cancelTask(request: ApprovalRequest): Promise<ApprovalRequest | undefined>;
  /**
   * Withdraws the pending requests whose calls `replica` held open (it stopped or died), each
   * recorded; resolves with their ids.
   */
  withdrawHeldBy(replica: string): Promise<string[]>;
  /** Newest first (at most 100). */
  list(status?: ApprovalStatus): Promise<ApprovalRequest[]>;
  get(id: string): Promise<ApprovalRequest | undefined>;
}

export function createApprovalService(options: ApprovalServiceOptions): ApprovalService {
  const state = approvalStateOf(options);
  const { store } = state;
  return {
    hold: (call) => requestApproval(state, call),
    answerRetry: (call) => answerRetriedCall(state, call),
    consume: (id, binding) => consumeApproval(state, id, binding),
    decide: (id, approver, verdict, reason) => decideApproval(state, id, approver, verdict, reason),
    invalidatePending: (affected, reason) => invalidatePendingApprovals(state, affected, reason),
    withdrawHeldBy: (replica) => withdrawOrphanedApprovals(state, replica),
    cancelTask: (request) => cancelApprovalTask(state, request),
    list: (status) => store.approvals.list(status === undefined ? {} : { status }),
    get: (id) => store.approvals.get(id),
  };
}

/** The options normalised into the service's state, with no holders yet. */
function approvalStateOf(options: ApprovalServiceOptions): ApprovalState {
  return Object.freeze({
    store: options.store,
    now: options.now,
    newId: options.newId ?? randomUUID,
    record: options.record,
    notify: options.notify,
    notifyInvalidated: options.notifyInvalidated,
    onError: options.onError ?? (() => undefined),
    pollIntervalMs: options.config.pollIntervalMs,
    progressEveryMs: options.progressEveryMs ?? DEFAULT_PROGRESS_EVERY_MS,
    environment: options.environment,
    cliDecisions: options.config.cliDecisions ?? true,
    replica: options.replica,
    holders: new Map(),
  });
}
