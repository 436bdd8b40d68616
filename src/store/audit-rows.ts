/**
 * Audit records and checkpoints as rows, shared by both backends: validation before SQL, the
 * indexed columns copied out of a record, the query filters as SQL conditions, and the way back.
 *
 * The `record` column holds the record's canonical JSON, produced once here; it is what the chain
 * hashed, and reading parses that text, never the indexed copies.
 */
import type { AuditCheckpoint, AuditRecord } from '../domain/audit-record.js';
import { recordText } from '../domain/audit-record-text.js';
import { canonicalJson } from '../domain/canonical-json.js';
import { StoreError, describeCause } from './errors.js';
import type { Row } from './row-mapping.js';
import {
  AUDIT_QUERY_DEFAULT_LIMIT,
  AUDIT_QUERY_MAX_LIMIT,
  type AuditQuery,
  type AuditSigningKey,
} from './types.js';

export type AuditValue = string | number | null;

/** Column order of every audit_records INSERT, in both backends. */
export const AUDIT_RECORD_COLUMNS = [
  'stream',
  'seq',
  'time_ms',
  'event',
  'request_id',
  'trace_id',
  'user_id',
  'agent_id',
  'roles',
  'tool',
  'upstream',
  'effect',
  'record',
  'prev_hash',
  'hash',
] as const;

/** Column order of every audit_checkpoints INSERT. */
export const AUDIT_CHECKPOINT_COLUMNS = ['stream', 'seq', 'record'] as const;

/** Column order of every audit_keys INSERT and SELECT. */
export const AUDIT_KEY_COLUMNS = 'key_id, private_key_pem, public_key_pem, created_at';

/** What every record or checkpoint SELECT reads: the key (for error messages) and the JSON. */
export const AUDIT_STORED_COLUMNS = 'stream, seq, record';

/** The secondary ordering of a timeline, after time: deterministic across streams. */
export const AUDIT_TIMELINE_ORDER = 'time_ms, stream, seq';
/** The same timeline read from its end. */
const AUDIT_TIMELINE_ORDER_NEWEST = 'time_ms DESC, stream DESC, seq DESC';

/** A date (UTC midnight), or a date and time with an explicit zone. */
const ISO_TIME =
  /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** ISO 8601 → epoch ms; a zone-less time is refused (it would mean a different instant per host). */
export function parseAuditTime(field: string, value: unknown): number {
  const ms = typeof value === 'string' && ISO_TIME.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isSafeInteger(ms)) {
    throw invalid(
      `${field} must be an ISO 8601 date, or date and time with Z or an offset; got ${describe(value)}`,
    );
  }
  return ms;
}

/** A record as INSERT parameters, in AUDIT_RECORD_COLUMNS order. */
export function toAuditRecordParams(record: AuditRecord): AuditValue[] {
  const stream = checkStream(record.stream);
  assertSeq('seq', record.seq, 1);
  const timeMs = parseAuditTime('time', record.time);
  const event: unknown = record.event;
  if (typeof event !== 'string' || event === '') {
    throw invalid(`event must be a non-empty string, got ${describe(event)}`);
  }
  if (typeof record.prevHash !== 'string' || typeof record.hash !== 'string') {
    throw invalid(`record ${record.stream}#${record.seq} lacks its prevHash or hash`);
  }
  const roles = record.roles;
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) {
    throw invalid(`roles must be an array of strings, got ${describe(roles)}`);
  }
  return [
    stream,
    record.seq,
    timeMs,
    toIndexText(event),
    optionalText('requestId', record.requestId),
    optionalText('traceId', record.traceId),
    optionalText('user', record.user),
    optionalText('agent', record.agent),
    roles === undefined ? null : canonicalJson(roles.map(toIndexText)),
    optionalText('tool', record.tool),
    optionalText('upstream', record.upstream),
    optionalText('decision.effect', record.decision?.effect),
    serialise(`record ${record.stream}#${record.seq}`, record, recordText),
    toIndexText(record.prevHash),
    toIndexText(record.hash),
  ];
}

/** A checkpoint as INSERT parameters, in AUDIT_CHECKPOINT_COLUMNS order. */
export function toAuditCheckpointParams(checkpoint: AuditCheckpoint): [string, number, string] {
  const stream = checkStream(checkpoint.stream);
  assertSeq('checkpoint seq', checkpoint.seq, 1);
  return [
    stream,
    checkpoint.seq,
    serialise(`checkpoint ${checkpoint.stream}#${checkpoint.seq}`, checkpoint),
  ];
}

/** The stored record, parsed from its canonical JSON (the indexed columns are only copies). */
export function toAuditRecord(row: Row): AuditRecord {
  return parseStored(row, 'record') as AuditRecord;
}

export function toAuditCheckpoint(row: Row): AuditCheckpoint {
  return parseStored(row, 'checkpoint') as AuditCheckpoint;
}

export function toAuditSigningKey(row: Row): AuditSigningKey {
  const read = (column: string): string => {
    const value = row[column];
    if (typeof value !== 'string') throw unreadable(`column ${column} of audit_keys`);
    return value;
  };
  return {
    keyId: read('key_id'),
    privateKeyPem: read('private_key_pem'),
    publicKeyPem: read('public_key_pem'),
  };
}

export function assertAuditSigningKey(key: AuditSigningKey): void {
  for (const field of ['keyId', 'privateKeyPem', 'publicKeyPem'] as const) {
    if (typeof key[field] !== 'string' || key[field] === '') {
      throw invalid(`the audit signing key's ${field} must be a non-empty string`);
    }
  }
}

/** A stream name as its column holds it; rejects anything but a non-empty string. */
export function checkStream(stream: unknown): string {
  if (typeof stream !== 'string' || stream === '') {
    throw invalid(`stream must be a non-empty string, got ${describe(stream)}`);
  }
  return toIndexText(stream);
}

/** Rejects a seq that is not an integer ≥ `min` before it reaches SQL. */
export function assertSeq(field: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${field} must be an integer ≥ ${min}, got ${describe(value)}`);
  }
}

/** Rejects a page size outside 1..AUDIT_QUERY_MAX_LIMIT. */
export function checkLimit(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
    throw invalid(`limit must be a positive integer, got ${describe(limit)}`);
  }
  if (limit > AUDIT_QUERY_MAX_LIMIT) {
    throw invalid(`limit must be at most ${AUDIT_QUERY_MAX_LIMIT}; page with afterSeq or fromSeq`);
  }
  return limit;
}

/** How one dialect spells a parameter and a role test; everything else is shared SQL. */
export interface AuditQueryDialect {
  /** The placeholder of the n-th parameter (1-based): `?` or `$n`. */
  placeholder(index: number): string;
  /** A condition true when the `roles` column (a JSON array) holds the role in `placeholder`. */
  hasRole(placeholder: string): string;
}

/** The SELECT for an AuditQuery: every filter validated and bound, never spliced into the SQL. */
export function buildAuditQuery(
  query: AuditQuery,
  dialect: AuditQueryDialect,
): { text: string; values: AuditValue[] } {
  const conditions: string[] = [];
  const values: AuditValue[] = [];
  const bind = (value: AuditValue): string => {
    values.push(value);
    return dialect.placeholder(values.length);
  };
  const equals: [keyof AuditQuery, string][] = [
    ['stream', 'stream'],
    ['user', 'user_id'],
    ['agent', 'agent_id'],
    ['tool', 'tool'],
    ['upstream', 'upstream'],
    ['event', 'event'],
    ['effect', 'effect'],
    ['requestId', 'request_id'],
  ];
  for (const [field, column] of equals) {
    const value = query[field];
    if (value === undefined) continue;
    if (typeof value !== 'string')
      throw invalid(`${field} must be a string, got ${describe(value)}`);
    conditions.push(`${column} = ${bind(toIndexText(value))}`);
  }
  if (query.requestIdPrefix !== undefined) {
    const prefix = query.requestIdPrefix;
    if (typeof prefix !== 'string' || prefix === '') {
      throw invalid(`requestIdPrefix must be a non-empty string, got ${describe(prefix)}`);
    }
    // substr compares exactly on both backends (LIKE is case-blind in SQLite, and its
    // wildcards would need escaping); the length is bound as a number, never spliced.
    const text = toIndexText(prefix);
    conditions.push(`substr(request_id, 1, ${bind([...text].length)}) = ${bind(text)}`);
  }
  if (query.role !== undefined) {
    if (typeof query.role !== 'string') throw invalid(`role must be a string`);
    conditions.push(dialect.hasRole(bind(toIndexText(query.role))));
  }
  if (query.from !== undefined)
    conditions.push(`time_ms >= ${bind(parseAuditTime('from', query.from))}`);
  if (query.to !== undefined) conditions.push(`time_ms < ${bind(parseAuditTime('to', query.to))}`);
  if (query.afterSeq !== undefined) {
    assertSeq('afterSeq', query.afterSeq, 0);
    conditions.push(`seq > ${bind(query.afterSeq)}`);
  }
  const limit = checkLimit(query.limit ?? AUDIT_QUERY_DEFAULT_LIMIT);
  const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
  const order = query.newest === true ? AUDIT_TIMELINE_ORDER_NEWEST : AUDIT_TIMELINE_ORDER;
  return {
    text: `SELECT ${AUDIT_STORED_COLUMNS} FROM audit_records ${where} ORDER BY ${order} LIMIT ${bind(limit)}`,
    values,
  };
}

/**
 * The streams holding records, by a loose index scan: one index probe per stream instead of a
 * scan of every record. The same SQL runs on SQLite and PostgreSQL.
 */
export const AUDIT_STREAMS_SQL = `
  WITH RECURSIVE streams(stream) AS (
    SELECT min(stream) FROM audit_records
    UNION ALL
    SELECT (SELECT min(later.stream) FROM audit_records later WHERE later.stream > streams.stream)
    FROM streams WHERE streams.stream IS NOT NULL
  )
  SELECT stream FROM streams WHERE stream IS NOT NULL ORDER BY stream`;

function optionalText(field: string, value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string') throw invalid(`${field} must be a string, got ${describe(value)}`);
  return toIndexText(value);
}

/** A lone UTF-16 surrogate: in unicode mode the class matches only unpaired ones. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/gu;

export function toIndexText(value: string): string {
  return value.replace(LONE_SURROGATE, '\uFFFD').replaceAll('\0', '\uFFFD');
}

function serialise<T>(what: string, value: T, write: (value: T) => string = canonicalJson): string {
  try {
    return write(value);
  } catch (cause) {
    throw new StoreError('STORE_INVALID_VALUE', `${what} is not JSON: ${describeCause(cause)}`, {
      cause,
    });
  }
}

function parseStored(row: Row, what: string): unknown {
  const text = row['record'];
  if (typeof text === 'string') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Reported below with the row's key, so verify can name the damaged record.
    }
  }
  throw unreadable(`the stored ${what} ${String(row['stream'])}#${String(row['seq'])}`);
}

function unreadable(what: string): StoreError {
  return new StoreError(
    'STORE_QUERY_FAILED',
    `${what} is not readable text; the database holds data this Warden cannot read`,
  );
}

function invalid(message: string): StoreError {
  return new StoreError('STORE_INVALID_VALUE', message);
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return Array.isArray(value)
    ? 'an array'
    : typeof value === 'number'
      ? String(value)
      : typeof value;
}

/**
 * The checks of AuditRepository.prune that need the stream's current head (undefined when the
 * stream holds no records): throws STORE_INVALID_VALUE when the prune must not happen.
 */
export function checkPrune(
  stream: string,
  throughSeq: number,
  head: number | undefined,
  withMarker: boolean,
): void {
  if (head === undefined) {
    if (withMarker)
      throw invalid(`cannot archive stream ${JSON.stringify(stream)}: it has no records`);
    return;
  }
  if (withMarker ? throughSeq > head : throughSeq >= head) {
    throw invalid(
      `cannot prune stream ${JSON.stringify(stream)} through seq ${throughSeq}: its head is seq ${head}; ` +
        (withMarker
          ? 'a marker can only stand in for records that exist'
          : 'without an audit.pruned marker the head is always kept, so the chain can continue'),
    );
  }
}

/** A prune's marker as INSERT parameters, after checking it stands in for exactly this prefix. */
export function toPruneMarkerParams(
  stream: string,
  throughSeq: number,
  marker: AuditRecord,
): AuditValue[] {
  const params = toAuditRecordParams(marker);
  if (marker.event !== 'audit.pruned' || params[0] !== stream || marker.seq !== throughSeq) {
    throw invalid(
      `a prune marker must be the audit.pruned record of stream ${JSON.stringify(stream)} at seq ${throughSeq}`,
    );
  }
  return params;
}
