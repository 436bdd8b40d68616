/**
 * A chained record's canonical JSON, kept from when the chain built it: the chain hashes that
 * text and the store writes the same bytes, instead of each serialising the record again.
 * Only the chain remembers text, and only for the frozen records it hands out.
 */
import type { AuditRecord } from './audit-record.js';
import { canonicalJson } from './canonical-json.js';

const texts = new WeakMap<AuditRecord, string>();

export function rememberRecordText(record: AuditRecord, text: string): void {
  texts.set(record, text);
}

/** The text the chain hashed, or the record's canonical JSON when no chain built it. */
export function recordText(record: AuditRecord): string {
  return texts.get(record) ?? canonicalJson(record);
}
