/** Rows of policy_bundles as both backends read and write them (BIGINT comes back as text). */
import { assertEpochMs, type Row } from './row-mapping.js';
import type { PolicyBundle } from './types.js';

/** Column order of every policy_bundles INSERT and SELECT. */
export const POLICY_BUNDLE_COLUMNS = 'id, content_hash, policy_version, text, pushed_at, pushed_by';

export const DEFAULT_BUNDLE_LIST_LIMIT = 20;

/** A bundle as statement parameters, in POLICY_BUNDLE_COLUMNS order. */
export function toPolicyBundleParams(bundle: PolicyBundle): (string | number)[] {
  assertEpochMs('pushedAt', bundle.pushedAt);
  return [
    bundle.id,
    bundle.contentHash,
    bundle.policyVersion,
    bundle.text,
    bundle.pushedAt,
    bundle.pushedBy,
  ];
}

export function toPolicyBundle(row: Row): PolicyBundle {
  return {
    id: Number(row['id']),
    contentHash: String(row['content_hash']),
    policyVersion: String(row['policy_version']),
    text: String(row['text']),
    pushedAt: Number(row['pushed_at']),
    pushedBy: String(row['pushed_by']),
  };
}
