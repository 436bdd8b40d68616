/**
 * An AuditRepository in memory that behaves like the SQLite and PostgreSQL ones where the audit
 * core depends on it: records are kept as the canonical JSON they were hashed from and read back
 * parsed (never the caller's objects); an append is one transaction (a conflicting seq or
 * checkpoint stores nothing); every call settles on a later tick, as I/O does; pruning keeps
 * the head and the checkpoints. Test hooks can hold, fail or count appends and edit stored rows
 * behind the chain's back, as someone with database access would.
 */
import type { AuditCheckpoint, AuditRecord } from '../../src/domain/audit-record.js';
import { canonicalJson } from '../../src/domain/canonical-json.js';
import { StoreError } from '../../src/store/errors.js';
import {
  AUDIT_QUERY_DEFAULT_LIMIT,
  AUDIT_QUERY_MAX_LIMIT,
  type AuditQuery,
  type AuditRepository,
  type AuditSigningKey,
} from '../../src/store/types.js';

interface StoredStream {
  /** seq → canonical JSON of the record. */
  readonly records: Map<number, string>;
  /** seq → canonical JSON of the checkpoint. */
  readonly checkpoints: Map<number, string>;
}

export interface AppendCall {
  readonly records: readonly AuditRecord[];
  readonly checkpoint: AuditCheckpoint | undefined;
}

export interface MemoryAuditRepository extends AuditRepository {
  /** Every append attempted, committed or not, in order. */
  readonly appendCalls: AppendCall[];
  /** The next `count` appends reject with STORE_QUERY_FAILED and store nothing. */
  failAppends(count: number): void;
  /** Holds appends (they neither commit nor settle) until the returned function is called. */
  holdAppends(): () => void;
  /** Overwrites a stored record with any JSON value, as an attacker with the database would. */
  tamperRecord(stream: string, seq: number, edit: (record: AuditRecord) => unknown): void;
  deleteRecord(stream: string, seq: number): void;
  /** Stores a record as is, without any check (e.g. an archive marker in place of a record). */
  putRecord(record: AuditRecord): void;
  close(): void;
}

export function createMemoryAuditRepository(): MemoryAuditRepository {
  const streams = new Map<string, StoredStream>();
  let signingKey: AuditSigningKey | undefined;
  const appendCalls: AppendCall[] = [];
  let failuresLeft = 0;
  let hold: Promise<void> | undefined;
  let closed = false;

  const streamOf = (name: string): StoredStream => {
    let stream = streams.get(name);
    if (!stream) {
      stream = { records: new Map(), checkpoints: new Map() };
      streams.set(name, stream);
    }
    return stream;
  };

  /** Settles on a later tick, like a database round trip; rejects after close(). */
  const io = async <T>(work: () => T): Promise<T> => {
    await new Promise((resolve) => setImmediate(resolve));
    if (closed) throw new StoreError('STORE_CLOSED', 'the store is closed');
    return work();
  };

  const parse = <T>(text: string): T => JSON.parse(text) as T;

  const ordered = (stream: StoredStream): AuditRecord[] =>
    [...stream.records.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, text]) => parse<AuditRecord>(text));

  return {
    appendCalls,

    async append(records, checkpoint) {
      appendCalls.push({ records: [...records], checkpoint });
      const held = hold;
      if (held) await held;
      return io(() => {
        if (failuresLeft > 0) {
          failuresLeft--;
          throw new StoreError('STORE_QUERY_FAILED', 'cannot append audit records: disk I/O error');
        }
        // Validate the whole batch before storing any of it: one transaction.
        const seen = new Set<string>();
        for (const record of records) {
          if (!Number.isSafeInteger(record.seq) || record.seq < 1 || !record.stream) {
            throw new StoreError(
              'STORE_INVALID_VALUE',
              `bad record key ${record.stream}#${record.seq}`,
            );
          }
          const key = `${record.stream}\u0000${record.seq}`;
          if (seen.has(key) || streams.get(record.stream)?.records.has(record.seq)) {
            throw new StoreError('STORE_CONFLICT', `record ${record.stream}#${record.seq} exists`);
          }
          seen.add(key);
        }
        if (checkpoint && streams.get(checkpoint.stream)?.checkpoints.has(checkpoint.seq)) {
          throw new StoreError(
            'STORE_CONFLICT',
            `checkpoint ${checkpoint.stream}#${checkpoint.seq} exists`,
          );
        }
        const texts = records.map((record) => canonicalJson(record));
        records.forEach((record, index) =>
          streamOf(record.stream).records.set(record.seq, texts[index] as string),
        );
        if (checkpoint) {
          streamOf(checkpoint.stream).checkpoints.set(checkpoint.seq, canonicalJson(checkpoint));
        }
      });
    },

    head: (stream) =>
      io(() => {
        const stored = streams.get(stream);
        if (!stored || stored.records.size === 0) return undefined;
        const seq = Math.max(...stored.records.keys());
        return parse<AuditRecord>(stored.records.get(seq) as string);
      }),

    query: (query: AuditQuery) =>
      io(() => {
        const limit = query.limit ?? AUDIT_QUERY_DEFAULT_LIMIT;
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > AUDIT_QUERY_MAX_LIMIT) {
          throw new StoreError(
            'STORE_INVALID_VALUE',
            `limit must be 1 to ${AUDIT_QUERY_MAX_LIMIT}`,
          );
        }
        const from = query.from === undefined ? -Infinity : Date.parse(query.from);
        const to = query.to === undefined ? Infinity : Date.parse(query.to);
        return [...streams.entries()]
          .filter(([name]) => query.stream === undefined || name === query.stream)
          .flatMap(([, stream]) => ordered(stream))
          .filter(
            (r) =>
              (query.user === undefined || r.user === query.user) &&
              (query.agent === undefined || r.agent === query.agent) &&
              (query.role === undefined || (r.roles ?? []).includes(query.role)) &&
              (query.tool === undefined || r.tool === query.tool) &&
              (query.upstream === undefined || r.upstream === query.upstream) &&
              (query.event === undefined || r.event === query.event) &&
              (query.effect === undefined || r.decision?.effect === query.effect) &&
              (query.requestId === undefined || r.requestId === query.requestId) &&
              (query.requestIdPrefix === undefined ||
                r.requestId?.startsWith(query.requestIdPrefix) === true) &&
              (query.afterSeq === undefined || r.seq > query.afterSeq) &&
              Date.parse(r.time) >= from &&
              Date.parse(r.time) < to,
          )
          .sort(
            (a, b) =>
              (query.newest === true ? -1 : 1) *
              (Date.parse(a.time) - Date.parse(b.time) ||
                (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0) ||
                a.seq - b.seq),
          )
          .slice(0, limit);
      }),

    readStream: (stream, fromSeq, limit) =>
      io(() => {
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > AUDIT_QUERY_MAX_LIMIT) {
          throw new StoreError(
            'STORE_INVALID_VALUE',
            `limit must be 1 to ${AUDIT_QUERY_MAX_LIMIT}`,
          );
        }
        const stored = streams.get(stream);
        return stored
          ? ordered(stored)
              .filter((r) => r.seq >= fromSeq)
              .slice(0, limit)
          : [];
      }),

    streams: () =>
      io(() =>
        [...streams.entries()]
          .filter(([, stream]) => stream.records.size > 0)
          .map(([name]) => name)
          .sort(),
      ),

    checkpoints: (stream) =>
      io(() => {
        const stored = streams.get(stream);
        if (!stored) return [];
        return [...stored.checkpoints.entries()]
          .sort(([a], [b]) => a - b)
          .map(([, text]) => parse<AuditCheckpoint>(text));
      }),

    prune: (stream, throughSeq) =>
      io(() => {
        const stored = streams.get(stream);
        if (!stored) return 0;
        if (throughSeq >= Math.max(...stored.records.keys())) {
          throw new StoreError('STORE_INVALID_VALUE', 'pruning would delete the head');
        }
        let deleted = 0;
        for (const seq of [...stored.records.keys()]) {
          if (seq <= throughSeq) {
            stored.records.delete(seq);
            deleted++;
          }
        }
        return deleted;
      }),

    signingKey: () => io(() => signingKey),

    saveSigningKey: (key) =>
      io(() => {
        signingKey ??= { ...key };
        return signingKey;
      }),

    failAppends(count) {
      failuresLeft = count;
    },

    holdAppends() {
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve));
      return () => {
        hold = undefined;
        release();
      };
    },

    tamperRecord(stream, seq, edit) {
      const stored = streams.get(stream)?.records;
      const text = stored?.get(seq);
      if (!stored || text === undefined) throw new Error(`no record ${stream}#${seq}`);
      stored.set(seq, canonicalJson(edit(parse<AuditRecord>(text))));
    },

    deleteRecord(stream, seq) {
      streams.get(stream)?.records.delete(seq);
    },

    putRecord(record) {
      streamOf(record.stream).records.set(record.seq, canonicalJson(record));
    },

    close() {
      closed = true;
    },
  };
}
