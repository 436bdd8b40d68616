/**
 * The hash chain of one stream (one per gateway replica), with group commit and checkpoints.
 *
 * `record(entry)` resolves only once the record is durably stored, so the gateway forwards a call
 * only after its decision record is committed. Records arriving within `batchWindowMs` share one
 * `repository.append()` (one transaction, one sync), and while an append is in flight the next
 * records gather behind it: durability costs one commit per batch, not per call. Only one append
 * is in flight at a time, because each batch's seqs and hashes continue from the previous
 * batch's committed head.
 *
 * When an append fails, every caller of that batch is rejected with AuditUnavailableError (the
 * gateway refuses those calls: fail closed) and the head does not advance: the failed records are
 * not part of the chain, and the next batch re-reads the head from the store and reuses their
 * seqs. Re-reading, rather than trusting memory, also covers an append that failed after
 * committing (a lost connection): the chain then continues after the records that did land.
 */
import type { AuditCheckpoint, AuditEntry, AuditRecord } from '../domain/audit-record.js';
import { AUDIT_EVENTS } from '../domain/audit-record.js';
import { rememberRecordText } from '../domain/audit-record-text.js';
import {
  canonicalMembers,
  joinCanonicalMembers,
  type CanonicalMember,
} from '../domain/canonical-json.js';
import type { AuditRepository } from '../store/types.js';
import type { CheckpointSigner } from './checkpoint.js';
import { AuditError, AuditUnavailableError } from './errors.js';
import { resumeHashOf } from './pruned-prefix.js';
import { GENESIS_HASH, hashCanonicalText } from './record-hash.js';

export interface AuditChainOptions {
  readonly repository: AuditRepository;
  /** This replica's stream. One writer per stream: two chains on one stream would fork it. */
  readonly stream: string;
  readonly signer: CheckpointSigner;
  /** A checkpoint is appended with the batch that makes this many records since the last. */
  readonly checkpointEvery?: number;
  /** A checkpoint is appended this often when records were added since the last one. */
  readonly checkpointIntervalMs?: number;
  /** Clock for checkpoint times. */
  readonly now?: () => number;
  /** How long the first record of a batch waits for others to join it. */
  readonly batchWindowMs?: number;
  /** Most records per append; a full batch is appended without waiting for the window. */
  readonly maxBatch?: number;
  /** Told when a timer-driven checkpoint fails (no caller is waiting for it). */
  readonly onError?: (error: Error) => void;
  /**
   * Told of each batch once it is durably stored, with how long its append took (metrics). An
   * observer that throws is ignored: watching the log must never fail a record.
   */
  readonly onAppended?: (records: readonly AuditRecord[], latencyMs: number) => void;
  /**
   * Told of each checkpoint once it is durably stored, to publish it to a witness outside the
   * store. Like onAppended, an observer that throws is ignored.
   */
  readonly onCheckpoint?: (checkpoint: AuditCheckpoint) => void;
}

export interface AuditChain {
  readonly stream: string;
  /** Chains and durably stores the entry; rejects with AuditError (AUDIT_UNAVAILABLE, …). */
  record(entry: AuditEntry): Promise<AuditRecord>;
  /**
   * Commits what is pending and returns a checkpoint covering the head: a new one when records
   * were added since the last, else the last one; undefined while the stream is empty.
   */
  checkpoint(): Promise<AuditCheckpoint | undefined>;
  /** Commits what is pending, checkpoints the head, stops the timer; later records are refused. */
  close(): Promise<void>;
  /** Records waiting for their append (not the one in flight). */
  queued(): number;
}

const DEFAULTS = {
  checkpointEvery: 1000,
  checkpointIntervalMs: 10_000,
  batchWindowMs: 2,
  maxBatch: 1000,
} as const;

interface PendingRecord {
  readonly entry: NormalisedEntry;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (error: Error) => void;
}

interface PendingCheckpoint {
  readonly resolve: (checkpoint: AuditCheckpoint | undefined) => void;
  readonly reject: (error: Error) => void;
}

/** What is known to be committed: the head, and the last checkpoint. */
interface ChainState {
  seq: number;
  hash: string;
  lastCheckpoint: AuditCheckpoint | undefined;
}

export function createAuditChain(options: AuditChainOptions): AuditChain {
  const { repository, stream, signer } = options;
  const checkpointEvery = positive(options.checkpointEvery, DEFAULTS.checkpointEvery);
  const batchWindowMs = Math.max(0, options.batchWindowMs ?? DEFAULTS.batchWindowMs);
  const maxBatch = positive(options.maxBatch, DEFAULTS.maxBatch);
  const now = options.now ?? Date.now;

  let state: ChainState | undefined;
  let pending: PendingRecord[] = [];
  let checkpointWaiters: PendingCheckpoint[] = [];
  let intervalDue = false;
  let windowTimer: NodeJS.Timeout | undefined;
  let draining: Promise<void> | undefined;
  let closed = false;

  const intervalTimer = setInterval(
    () => {
      intervalDue = true;
      startDrain();
    },
    positive(options.checkpointIntervalMs, DEFAULTS.checkpointIntervalMs),
  );
  intervalTimer.unref();

  async function loadState(): Promise<ChainState> {
    const [head, checkpoints] = await Promise.all([
      repository.head(stream),
      repository.checkpoints(stream),
    ]);
    const lastCheckpoint = checkpoints.reduce<AuditCheckpoint | undefined>(
      (last, checkpoint) => (last === undefined || checkpoint.seq > last.seq ? checkpoint : last),
      undefined,
    );
    return head
      ? { seq: head.seq, hash: resumeHashOf(head), lastCheckpoint }
      : { seq: 0, hash: GENESIS_HASH, lastCheckpoint };
  }

  function scheduleBatch(): void {
    if (draining) return; // the running drain takes what gathered behind its append
    if (pending.length >= maxBatch) {
      startDrain();
    } else {
      windowTimer ??= setTimeout(startDrain, batchWindowMs);
    }
  }

  function startDrain(): void {
    if (windowTimer) {
      clearTimeout(windowTimer);
      windowTimer = undefined;
    }
    if (draining) return;
    draining = drain()
      .catch((error: unknown) => options.onError?.(error as Error))
      .finally(() => {
        draining = undefined;
        // Records that arrived during the last append but after the loop's final check.
        if (pending.length > 0 || checkpointWaiters.length > 0) startDrain();
      });
  }

  async function drain(): Promise<void> {
    while (pending.length > 0 || checkpointWaiters.length > 0 || intervalDue) {
      await appendBatch();
    }
  }

  /** Appends the next batch (possibly empty) with the checkpoint it is due, settling its callers. */
  async function appendBatch(): Promise<void> {
    const batch = pending.slice(0, maxBatch);
    pending = pending.slice(batch.length);
    // Forced checkpoints cover everything recorded before checkpoint() was called, so they wait
    // until the batch that empties the queue.
    const waiters = pending.length === 0 ? checkpointWaiters : [];
    if (waiters.length > 0) checkpointWaiters = [];
    const timed = intervalDue;
    intervalDue = false;

    try {
      const current = (state ??= await loadState());
      const records: AuditRecord[] = [];
      let prevHash = current.hash;
      for (const [index, { entry }] of batch.entries()) {
        // The entry's members were serialised once (normaliseEntry): only the chain's are added.
        const chained = { stream, seq: current.seq + index + 1, prevHash };
        const hash = hashCanonicalText(joinCanonicalMembers(entry.members, chained));
        const record: AuditRecord = Object.freeze({ ...entry.data, ...chained, hash });
        rememberRecordText(record, joinCanonicalMembers(entry.members, { ...chained, hash }));
        records.push(record);
        prevHash = hash;
      }
      const headSeq = current.seq + records.length;
      const sinceCheckpoint = headSeq - (current.lastCheckpoint?.seq ?? 0);
      const checkpoint =
        sinceCheckpoint >= checkpointEvery || (sinceCheckpoint > 0 && (waiters.length > 0 || timed))
          ? signer.signCheckpoint({
              stream,
              seq: headSeq,
              headHash: prevHash,
              time: new Date(now()).toISOString(),
            })
          : undefined;
      if (records.length > 0 || checkpoint) {
        const started = performance.now();
        await repository.append(records, checkpoint);
        current.seq = headSeq;
        current.hash = prevHash;
        if (records.length > 0) tellAppended(records, performance.now() - started);
        if (checkpoint) {
          current.lastCheckpoint = checkpoint;
          tellCheckpoint(checkpoint);
        }
      }
      batch.forEach(({ resolve }, index) => resolve(records[index] as AuditRecord));
      for (const waiter of waiters) waiter.resolve(current.lastCheckpoint);
    } catch (cause) {
      state = undefined; // re-read the head before the next batch: see the module comment
      fail(batch, waiters, timed, cause);
    }
  }

  function tellAppended(records: readonly AuditRecord[], latencyMs: number): void {
    try {
      options.onAppended?.(records, latencyMs);
    } catch {
      // The records are stored; a failing observer only loses its own view of them.
    }
  }

  function tellCheckpoint(checkpoint: AuditCheckpoint): void {
    try {
      options.onCheckpoint?.(checkpoint);
    } catch {
      // The checkpoint is stored; the witness reports its own failures.
    }
  }

  function fail(
    batch: readonly PendingRecord[],
    waiters: readonly PendingCheckpoint[],
    timed: boolean,
    cause: unknown,
  ): void {
    const error = new AuditUnavailableError(
      `the audit store did not take ${batch.length} record(s) of stream ${stream}`,
      { cause },
    );
    for (const { reject } of batch) reject(error);
    for (const { reject } of waiters) reject(error);
    if (timed && batch.length === 0 && waiters.length === 0) options.onError?.(error);
  }

  return Object.freeze({
    stream,
    queued: () => pending.length,

    record(entry: AuditEntry): Promise<AuditRecord> {
      if (closed) {
        return Promise.reject(new AuditError('AUDIT_CLOSED', 'the audit chain is closed'));
      }
      let normalised: NormalisedEntry;
      try {
        normalised = normaliseEntry(entry);
      } catch (error) {
        return Promise.reject(error);
      }
      return new Promise<AuditRecord>((resolve, reject) => {
        pending.push({ entry: normalised, resolve, reject });
        scheduleBatch();
      });
    },

    checkpoint(): Promise<AuditCheckpoint | undefined> {
      return new Promise((resolve, reject) => {
        checkpointWaiters.push({ resolve, reject });
        startDrain();
      });
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(intervalTimer);
      const final = new Promise<AuditCheckpoint | undefined>((resolve, reject) => {
        checkpointWaiters.push({ resolve, reject });
      });
      startDrain();
      await final;
    },
  });
}

/** ISO 8601 with a zone, as stores index it: a zone-less time means a different instant per host. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;
/** Fields a store copies into indexed text columns: they must be strings when present. */
const TEXT_FIELDS = ['requestId', 'traceId', 'user', 'agent', 'tool', 'upstream'] as const;

/** An entry as plain JSON data, with its members' canonical text. */
interface NormalisedEntry {
  readonly data: AuditEntry;
  readonly members: readonly CanonicalMember[];
}

/**
 * Checks the entry as a store would and reduces it to plain JSON data, so that what is hashed is
 * exactly what a store keeps and gives back (no undefined members, no Dates, no shared objects).
 * Checking here refuses a malformed entry to its own caller, instead of letting the store refuse
 * the whole batch it would share with other callers.
 */
function normaliseEntry(entry: AuditEntry): NormalisedEntry {
  const invalid = (problem: string): AuditError =>
    new AuditError('AUDIT_INVALID_ENTRY', `cannot record ${String(entry.event)}: ${problem}`);
  if (!(AUDIT_EVENTS as readonly string[]).includes(entry.event)) {
    throw invalid('unknown audit event');
  }
  if (
    typeof entry.time !== 'string' ||
    !ISO_TIME.test(entry.time) ||
    Number.isNaN(Date.parse(entry.time))
  ) {
    throw invalid('time must be ISO 8601 with Z or an offset');
  }
  for (const field of TEXT_FIELDS) {
    if (entry[field] !== undefined && typeof entry[field] !== 'string') {
      throw invalid(`${field} must be a string`);
    }
  }
  if (
    entry.roles !== undefined &&
    !(Array.isArray(entry.roles) && entry.roles.every((role) => typeof role === 'string'))
  ) {
    throw invalid('roles must be an array of strings');
  }
  // Chain fields are the chain's to assign, whatever the caller passed.
  const plain = {
    ...entry,
    stream: undefined,
    seq: undefined,
    prevHash: undefined,
    hash: undefined,
  };
  try {
    const members = canonicalMembers(plain);
    return { data: JSON.parse(joinCanonicalMembers(members)) as AuditEntry, members };
  } catch (cause) {
    throw new AuditError('AUDIT_INVALID_ENTRY', `the ${entry.event} entry is not JSON data`, {
      cause,
    });
  }
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}
