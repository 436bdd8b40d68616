/**
 * Grants that name a tool the upstream does not list. Such a grant loads (the config cannot know
 * an upstream's tools) and never allows anything: every call to an unlisted tool is refused. Found
 * when the gateway first sees an upstream's listing, and by `warden policy validate --live`.
 */
import { findClosestName } from '../config/closest-name.js';
import type { PolicyConfig } from '../config/policy-config.js';

export interface UnlistedGrant {
  /** The grant's id, as the audit log and explanations name it. */
  readonly grant: string;
  /** Where it is written in warden.yaml (`roles.finance.grants.0`). */
  readonly keyPath: string;
  readonly upstream: string;
  readonly tool: string;
  /** A listed tool with a close name, when there is one: the likely intent. */
  readonly closest: string | undefined;
}

/** The grants of `policy` naming a tool of `upstream` by name that `listed` does not contain. */
export function findUnlistedGrants(
  policy: Pick<PolicyConfig, 'grants'>,
  upstream: string,
  listed: ReadonlySet<string>,
): UnlistedGrant[] {
  return policy.grants.flatMap((grant): UnlistedGrant[] => {
    const { target } = grant;
    if (target.kind !== 'tool' || target.upstream !== upstream || target.name === '*') return [];
    if (listed.has(target.name)) return [];
    return [
      {
        grant: grant.id,
        keyPath: grant.keyPath,
        upstream,
        tool: target.name,
        closest: findClosestName(target.name, listed),
      },
    ];
  });
}

/** `roles.finance.grants.0 names payments.issue_paymnt (did you mean issue_payment?)`. */
export function describeUnlistedGrant(unlisted: UnlistedGrant): string {
  const hint = unlisted.closest === undefined ? '' : ` (did you mean ${unlisted.closest}?)`;
  return `${unlisted.keyPath} grants ${unlisted.upstream}.${unlisted.tool}, which ${unlisted.upstream} does not list${hint}`;
}
