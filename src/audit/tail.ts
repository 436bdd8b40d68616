/**
 * Tailing the audit log: the last records over every stream, then, when followed, the records
 * appended since, read per stream after the last seq seen (each replica writes its own stream,
 * so a per-stream cursor misses nothing and repeats nothing, whatever the clocks say).
 */
import type { AuditRecord } from '../domain/audit-record.js';
import { AUDIT_QUERY_MAX_LIMIT, type AuditRepository } from '../store/types.js';
import { compareTimeline } from './timeline.js';

type TailSource = Pick<AuditRepository, 'streams' | 'head' | 'readStream'>;

export interface AuditTail {
  /** The last `count` records of the log, oldest first; sets each stream's cursor to its head. */
  latest(count: number): Promise<AuditRecord[]>;
  /** The records appended since the previous call (or since `latest`), oldest first. */
  poll(): Promise<AuditRecord[]>;
}

/** Most records one poll reads per stream: a burst beyond it is read by the next polls. */
const POLL_PAGE = 1000;

export function createAuditTail(repository: TailSource): AuditTail {
  /** Per stream, the highest seq already returned. */
  const cursors = new Map<string, number>();

  return {
    async latest(count) {
      const wanted = Math.min(Math.max(0, Math.floor(count)), AUDIT_QUERY_MAX_LIMIT);
      const records: AuditRecord[] = [];
      for (const stream of await repository.streams()) {
        const head = await repository.head(stream);
        if (!head) continue;
        cursors.set(stream, head.seq);
        if (wanted === 0) continue;
        const fromSeq = Math.max(0, head.seq - wanted + 1);
        const page = await repository.readStream(stream, fromSeq, wanted);
        records.push(...page.filter((record) => record.seq <= head.seq));
      }
      return wanted === 0 ? [] : records.sort(compareTimeline).slice(-wanted);
    },

    async poll() {
      const records: AuditRecord[] = [];
      for (const stream of await repository.streams()) {
        const after = cursors.get(stream) ?? 0;
        const page = await repository.readStream(stream, after + 1, POLL_PAGE);
        const fresh = page.filter((record) => record.seq > after);
        if (fresh.length === 0) continue;
        cursors.set(stream, Math.max(...fresh.map((record) => record.seq)));
        records.push(...fresh);
      }
      return records.sort(compareTimeline);
    },
  };
}
