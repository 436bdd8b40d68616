/**
 * Reads the store facts the checks need, through the operations a CLI session offers: nothing
 * here writes a row.
 */
import type { ApprovalFact, SigningKeyFact, StoreFacts } from './finding.js';

/** The reads doctor makes; the CLI binds them to an operator session. */
export interface StoreFactSource {
  /** Undefined when no built-in issuer is configured (it has no keys). */
  readonly listSigningKeys: (() => Promise<readonly SigningKeyFact[]>) | undefined;
  listApprovals(): Promise<
    readonly {
      readonly upstream: string;
      readonly tool: string;
      readonly grants: readonly string[];
      readonly createdAt: number;
    }[]
  >;
  /** Whether a record matching the filter exists from `from` (ISO 8601) on. */
  hasAuditRecords(query: { readonly from: string; readonly effect?: string }): Promise<boolean>;
}

export async function gatherStoreFacts(
  source: StoreFactSource,
  now: number,
  windowDays: number,
): Promise<StoreFacts> {
  const since = now - windowDays * 86_400_000;
  const from = new Date(since).toISOString();
  const [signingKeys, approvals, auditRecordsInWindow, denialsInWindow] = await Promise.all([
    source.listSigningKeys?.(),
    source.listApprovals(),
    source.hasAuditRecords({ from }),
    source.hasAuditRecords({ from, effect: 'deny' }),
  ]);
  return {
    signingKeys: signingKeys?.map(({ kid, state, createdAt }) => ({ kid, state, createdAt })),
    approvals: approvals
      .filter((approval) => approval.createdAt >= since)
      .map((approval): ApprovalFact => ({
        tool: `${approval.upstream}.${approval.tool}`,
        grants: approval.grants,
        createdAt: approval.createdAt,
      })),
    auditRecordsInWindow,
    denialsInWindow,
  };
}
