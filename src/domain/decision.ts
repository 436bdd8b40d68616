/** A security decision as a value: what was decided, why, and by which policies. */

export type Effect = 'allow' | 'deny' | 'approval_required';

/** What an approval-gated grant asks of its approvers. */
export interface ApprovalRequirement {
  /** Roles an approver must hold (any one). */
  readonly approverRoles: readonly string[];
  readonly approvalsRequired: 1 | 2;
  readonly timeoutMs: number;
  /** The grants that asked for approval, and their scopes. */
  readonly grants: readonly string[];
  readonly scopes: readonly string[];
}

export interface Decision {
  readonly effect: Effect;
  /** Plain words: which rule allowed it, or which constraint failed. */
  readonly reasons: readonly string[];
  /** Ids of the policies that determined the effect. */
  readonly policies: readonly string[];
  /** Policies that could not be evaluated (an evaluation error never allows). */
  readonly errors?: readonly string[];
  /** Set when the engine could not evaluate the request at all: a fail-closed denial. */
  readonly evaluationFailed?: true;
  /** Present when the caller's roles run in monitor mode and enforcement would have denied. */
  readonly monitored?: { readonly effect: 'deny'; readonly reasons: readonly string[] };
  /** Present when effect is approval_required. */
  readonly approval?: ApprovalRequirement;
  /** The policy set version that decided (a hash), bound into approvals. */
  readonly policyVersion?: string;
  /** Break-glass grants that let this call through (alerts fire on every use). */
  readonly breakglass?: readonly string[];
}
