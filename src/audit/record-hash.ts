/**
 * The hash that chains audit records: SHA-256 (hex) of the RFC 8785 canonical JSON of the record
 * without its `hash` field. Canonical JSON, never JSON.stringify, so a record read back from any
 * store or export (keys in any order) hashes the same.
 */
import { createHash } from 'node:crypto';
import type { AuditRecord } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';

/** The `prevHash` of a stream's first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** The record as hashed: everything but `hash`. */
export type UnhashedAuditRecord = Omit<AuditRecord, 'hash'>;

/** SHA-256 (hex) of the canonical JSON of `record`; a `hash` field, if present, is ignored. */
export function hashRecord(record: UnhashedAuditRecord | AuditRecord): string {
  // canonicalJson drops undefined members: this hashes the record without `hash`.
  return hashCanonicalText(canonicalJson({ ...record, hash: undefined }));
}

/** The hash of a record already written as canonical JSON without its `hash` member. */
export function hashCanonicalText(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
