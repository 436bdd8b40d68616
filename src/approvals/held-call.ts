/**
 * The values the approval modules pass between them: the call a pipeline holds, what an
 * approval is bound to, who decides, and what a release hands back.
 */
import type { Decision } from '../domain/decision.js';
import type { Identity } from '../domain/identity.js';
import type { ApprovalRequest } from '../store/types.js';

/** A call that policy says needs approval, as the pipeline holds it. */
export interface HeldCall {
  readonly requestId: string;
  readonly traceId?: string;
  readonly identity: Identity;
  readonly upstream: string;
  readonly tool: string;
  /** The full, unredacted arguments: approvers see them, and the approval is bound to them. */
  readonly arguments: unknown;
  /** The audit log's (keyed) hash of the arguments, as on the call's other records. */
  readonly argumentsHash: string;
  /** effect `approval_required`, with `approval` and `policyVersion` set. */
  readonly decision: Decision;
  readonly toolDefinitionHash: string | undefined;
  /** Aborts when the client cancels or goes away: the request is then withdrawn. */
  readonly signal: AbortSignal;
  /** Called once the request is stored and announced, before the wait (e.g. to tell the person). */
  readonly onAsked?: (request: ApprovalRequest) => void;
  /** Called about every `progressEveryMs` while held (e.g. to send a progress notification). */
  readonly onWaiting?: (info: { approvalId: string; elapsedMs: number }) => void;
  /**
   * Decides the call again once it is granted, before the approval is used: resolves with what
   * the call is bound to now (the policy version and tool definition in force), or rejects with
   * a WardenError (WARDEN_APPROVAL_STALE, a revocation, …) when the call may no longer go. A
   * rejection invalidates the approval, and nothing is released.
   */
  readonly recheck: () => Promise<Pick<ApprovalBinding, 'policyVersion' | 'toolDefinitionHash'>>;
}

export interface ApprovedCall {
  /** The request as consumed (status granted, consumedAt set). */
  readonly approval: ApprovalRequest;
  /** Who approved, in voting order. */
  readonly approvers: string[];
}

/**
 * What an approval is bound to: a grant releases only a call with the same upstream, tool,
 * arguments (canonical JSON text) and hash, tool definition hash and policy version.
 */
export type ApprovalBinding = Pick<
  ApprovalRequest,
  'upstream' | 'tool' | 'arguments' | 'argumentsHash' | 'toolDefinitionHash' | 'policyVersion'
>;

/** Who decides. `roles` come from the approver registry (config), never from the request. */
export interface Approver {
  /** The approver's user id (a token's `sub`). */
  readonly user: string;
  readonly roles: readonly string[];
  /** The agents the decision came through (the admin API client, its delegation chain). */
  readonly via?: readonly string[];
  /**
   * Set when the approver was named rather than authenticated (the CLI's `--as`, on the
   * gateway's host): the OS account and host that made the claim, recorded with the decision.
   */
  readonly assertedBy?: AssertedBy;
}

/** Who claimed to be the approver: the OS user and the host the command ran on. */
export interface AssertedBy {
  readonly osUser: string;
  readonly host: string;
}

export type Verdict = 'approve' | 'deny';
