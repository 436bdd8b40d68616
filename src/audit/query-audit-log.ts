/**
 * Finding records in the audit log as a forensic timeline: by user, agent, role, tool, upstream,
 * event, decision, request, stream and time, oldest first.
 */
import type { AuditRecord } from '../domain/audit-record.js';
import {
  AUDIT_QUERY_DEFAULT_LIMIT,
  AUDIT_QUERY_MAX_LIMIT,
  type AuditQuery,
  type AuditRepository,
} from '../store/types.js';

export { AUDIT_QUERY_DEFAULT_LIMIT, AUDIT_QUERY_MAX_LIMIT };
export type { AuditQuery };

/** The matching records, oldest first, at most `query.limit` (AUDIT_QUERY_DEFAULT_LIMIT). */
export function queryAuditLog(
  repository: Pick<AuditRepository, 'query'>,
  query: AuditQuery,
): Promise<AuditRecord[]> {
  return repository.query(query);
}

/** Every stored record of one call (they share its request id), oldest first. */
export function findCallRecords(
  repository: Pick<AuditRepository, 'query'>,
  requestId: string,
): Promise<AuditRecord[]> {
  return repository.query({ requestId, limit: AUDIT_QUERY_MAX_LIMIT });
}
