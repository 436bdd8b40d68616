/** The policy stage's answer on one call, and how it is built from a decision or a refusal. */
import type { Decision } from '../domain/decision.js';
import { WardenError, type ErrorCode } from '../domain/errors.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../domain/jsonrpc.js';
import { refusalCodeOf } from './policy-engine.js';

export interface Authorization {
  readonly decision: Decision;
  /** For a denial: what the caller is told. */
  readonly error?: WardenError;
  /** For listings: the answer, filtered to what the caller may use. */
  readonly rewrite?: (response: JsonRpcResponse) => Promise<JsonRpcResponse>;
  /** tools/call: the hash of the definition the call was decided against (bound into approvals). */
  readonly toolDefinitionHash?: string;
  /**
   * The request to forward in place of the client's: the same request with its resource URI in
   * the normal form the policy judged (normalise-uri.ts), so the upstream reads what was allowed.
   */
  readonly rewriteRequest?: JsonRpcRequest;
  /**
   * tools/call, allowed or held for approval: its quotas, found to fit (a dry run) but not yet
   * charged. The pipeline charges them once the decision is recorded, so a call the log could not
   * take uses up no quota; or releases them when the call does not go ahead.
   */
  readonly quotas?: QuotaClaim;
}

/** A call's quotas, checked but not yet charged. */
export interface QuotaClaim {
  /**
   * Charges the quotas in force now, atomically in the store. A refusal (WARDEN_QUOTA_EXCEEDED)
   * when a concurrent call took the room since the check; undefined when charged.
   */
  charge(): Promise<Authorization | undefined>;
  /** Gives the claim up uncharged: the call does not go ahead. */
  release(): void;
}

/** A refusal with its code; `extra` goes into the error's details beside the reasons. */
export function refuse(
  code: ErrorCode,
  reasons: string[],
  extra: Record<string, unknown> = {},
): Authorization {
  return {
    decision: { effect: 'deny', reasons, policies: [] },
    error: new WardenError(code, undefined, { details: { reasons, ...extra } }),
  };
}

/** The authorization a policy decision gives: a denial carries the code that says why. */
export function authorizationOf(decision: Decision): Authorization {
  if (decision.effect !== 'deny') return { decision };
  const code =
    refusalCodeOf(decision) ??
    (decision.evaluationFailed ? 'WARDEN_POLICY_ERROR' : 'WARDEN_POLICY_DENIED');
  return {
    decision,
    error: new WardenError(code, undefined, { details: { reasons: decision.reasons } }),
  };
}
