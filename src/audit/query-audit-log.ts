/**
 * Finding records in the audit log as a forensic timeline: by user, agent, role, tool, upstream,
 * event, decision, request, stream and time; the first or the last matches, always printed
 * oldest first.
 */
import type { AuditRecord } from '../domain/audit-record.js';
import { OperationError } from '../domain/errors.js';
import {
  AUDIT_QUERY_DEFAULT_LIMIT,
  AUDIT_QUERY_MAX_LIMIT,
  type AuditQuery,
  type AuditRepository,
} from '../store/types.js';

export { AUDIT_QUERY_DEFAULT_LIMIT, AUDIT_QUERY_MAX_LIMIT };
export type { AuditQuery };

/** A shorter id is too likely to match many calls to be worth a search of the whole log. */
export const MIN_REQUEST_ID_PREFIX = 4;
/** Ambiguous prefixes name at most this many of the calls they match. */
const MAX_CANDIDATES_NAMED = 10;

/**
 * The matching records, oldest first, at most `query.limit` (AUDIT_QUERY_DEFAULT_LIMIT): the
 * first matches, or with `query.newest` the last ones.
 */
export async function queryAuditLog(
  repository: Pick<AuditRepository, 'query'>,
  query: AuditQuery,
): Promise<AuditRecord[]> {
  const records = await repository.query(query);
  return query.newest === true ? records.reverse() : records;
}

/**
 * Every stored record of one call (they share its request id), oldest first. An id no record
 * has is taken as the start of one (the 8 characters `audit tail` and `audit query` print):
 * the records of the one call it starts, none when it starts none, and an OPERATION_INVALID
 * error naming the candidates when it starts several.
 */
export async function findCallRecords(
  repository: Pick<AuditRepository, 'query'>,
  requestId: string,
): Promise<AuditRecord[]> {
  const exact = await repository.query({ requestId, limit: AUDIT_QUERY_MAX_LIMIT });
  if (exact.length > 0 || [...requestId].length < MIN_REQUEST_ID_PREFIX) return exact;
  const candidates = await requestIdsStartingWith(repository, requestId);
  if (candidates.length > 1) {
    const named = candidates.slice(0, MAX_CANDIDATES_NAMED).join(', ');
    const count =
      candidates.length > MAX_CANDIDATES_NAMED
        ? `more than ${MAX_CANDIDATES_NAMED}`
        : `${candidates.length}`;
    throw new OperationError(
      'OPERATION_INVALID',
      `${count} request ids start with ${requestId}: ${named}; give more of the id`,
    );
  }
  const [only] = candidates;
  return only === undefined
    ? []
    : repository.query({ requestId: only, limit: AUDIT_QUERY_MAX_LIMIT });
}

/** Up to MAX_CANDIDATES_NAMED + 1 distinct request ids starting with `prefix`, oldest first. */
async function requestIdsStartingWith(
  repository: Pick<AuditRepository, 'query'>,
  prefix: string,
): Promise<string[]> {
  const records = await repository.query({
    requestIdPrefix: prefix,
    limit: AUDIT_QUERY_MAX_LIMIT,
  });
  const ids = new Set<string>();
  for (const { requestId } of records) {
    if (requestId?.startsWith(prefix) !== true) continue;
    ids.add(requestId);
    if (ids.size > MAX_CANDIDATES_NAMED) break;
  }
  return [...ids];
}
