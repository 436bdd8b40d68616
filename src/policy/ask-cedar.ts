/**
 * Asking Cedar about one slice of the policy set: which permits (and forbids) a request
 * satisfies, and, for an explanation, which of the slice's grant checks hold. Policy sets are
 * prepared (parsed) once under an id and evaluated by that id per call.
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type {
  AuthorizationAnswer,
  StatefulAuthorizationCall,
} from '@cedar-policy/cedar-wasm/nodejs';
import {
  buildContext,
  entitiesOf,
  holdsOnlyCedarText,
  resourceOf,
  type ContextShape,
} from './cedar-request.js';
import { NAMESPACE } from './cedar-schema.js';
import type { CompiledGrant } from './compile-grants.js';
import { PolicyLoadError } from './policy-load-error.js';
import type { PolicyRequest } from './policy-engine.js';

/** Which policies of a slice a request satisfies, or why they could not be evaluated. */
export type SliceAnswer =
  | { readonly failure: string }
  | {
      readonly allowed: boolean;
      readonly determining: readonly string[];
      /** Policies Cedar skipped because they raised an evaluation error. */
      readonly errors: readonly { readonly policyId: string; readonly message: string }[];
    };

/** A slice as Cedar evaluates it. */
export interface CedarSlice extends ContextShape {
  readonly setId: string;
  readonly grants: readonly CompiledGrant[];
  /** Whether a policy of the slice asks which upstream a resource belongs to. */
  readonly needsResourceEntity: boolean;
  /** The id of the slice's grant checks as a set of their own, once prepared. */
  explainSetId?: string;
}

/** Why a request holding a lone UTF-16 surrogate is denied (see holdsOnlyCedarText). */
const NOT_TEXT = 'the request holds a lone UTF-16 surrogate, which is not text Cedar can read';

/** Parses a policy set into Cedar's cache under `setId`; throws PolicyLoadError. */
export function prepareCedarSet(setId: string, policies: Record<string, string>): void {
  const answer = cedar.preparsePolicySet(setId, { staticPolicies: policies });
  if (answer.type === 'failure') {
    throw new PolicyLoadError(answer.errors.map((error) => `${setId}: ${error.message}`));
  }
}

/** Cedar's answer for the slice. */
export function askCedar(request: PolicyRequest, slice: CedarSlice, region: string): SliceAnswer {
  let answer: AuthorizationAnswer | undefined;
  try {
    answer = evaluate(request, slice, slice.setId, region);
  } catch (error) {
    return { failure: String(error) };
  }
  if (answer === undefined) return { failure: NOT_TEXT };
  if (answer.type === 'failure') {
    return { failure: answer.errors.map((e) => e.message).join('; ') };
  }
  const { decision, diagnostics } = answer.response;
  return {
    allowed: decision === 'allow',
    determining: diagnostics.reason,
    errors: diagnostics.errors.map((e) => ({ policyId: e.policyId, message: e.error.message })),
  };
}

/**
 * The ids of the slice's grant checks (`<grant>!<n>` policies) that hold for the request. None
 * when Cedar cannot evaluate it: the explanation then errs on the side of the denial.
 */
export function checksCedarFinds(
  request: PolicyRequest,
  slice: CedarSlice,
  region: string,
): ReadonlySet<string> {
  if (slice.explainSetId === undefined) {
    const set: Record<string, string> = {};
    for (const grant of slice.grants) {
      for (const { policy: check } of grant.checks) set[check.id] = check.text;
    }
    slice.explainSetId = `${slice.setId}!explain`;
    prepareCedarSet(slice.explainSetId, set);
  }
  try {
    const answer = evaluate(request, slice, slice.explainSetId, region);
    if (answer?.type === 'success') return new Set(answer.response.diagnostics.reason);
  } catch {
    // As when Cedar answers with a failure: no check counts as passed.
  }
  return new Set();
}

/** Cedar's answer; undefined (never asked) when the call holds text Cedar cannot read. */
function evaluate(
  request: PolicyRequest,
  slice: CedarSlice,
  setId: string,
  region: string,
): AuthorizationAnswer | undefined {
  const call: StatefulAuthorizationCall = {
    principal: { type: `${NAMESPACE}::Agent`, id: request.identity.agent },
    action: { type: `${NAMESPACE}::Action`, id: request.action },
    resource: resourceOf(request),
    context: buildContext(request, slice, region),
    preparsedPolicySetId: setId,
    entities: entitiesOf(request, slice.needsResourceEntity),
  };
  return holdsOnlyCedarText(call) ? cedar.statefulIsAuthorized(call) : undefined;
}
