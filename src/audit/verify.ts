/**
 * Verifies audit streams, from the store or from an export, with nothing but the public key:
 * every record's hash, every link, the seqs, and every checkpoint. Reports, per stream, the
 * first problem in seq order and what kind it is:
 *
 * - `hash_mismatch`: a record's content does not match its hash (any field was edited);
 * - `broken_link`: a record's prevHash is not its predecessor's hash (a record before it was
 *   edited and re-hashed, or replaced);
 * - `sequence_gap`: seqs jump (records deleted), or the stream starts after seq 1 without a
 *   valid `audit.pruned` marker (see pruned-prefix.ts);
 * - `reordered`: the missing seq comes right after (records swapped);
 * - `inserted`: a seq already seen comes again, or a record of another stream appears;
 * - `unknown_event`: an intact record with an event this version does not know;
 * - `bad_checkpoint_signature`: a checkpoint (or a marker's checkpoint) not signed by the key;
 * - `checkpoint_mismatch`: a genuine checkpoint whose head hash is not the record's at its seq;
 * - `truncated`: a genuine checkpoint, or the head the source declares, lies beyond the last
 *   record.
 *
 * Records after the last checkpoint are verified for consistency but are not sealed: a tail
 * cut after the last checkpoint cannot be told from a shorter log (the report says how many).
 */
import type { KeyObject } from 'node:crypto';
import type { AuditCheckpoint, AuditRecord } from '../domain/audit-record.js';
import { AUDIT_EVENTS } from '../domain/audit-record.js';
import { auditKeyId, parsePublicKey, verifyCheckpoint } from './checkpoint.js';
import { prunedCheckpoint, readPrunedPrefix } from './pruned-prefix.js';
import { GENESIS_HASH, hashRecord } from './record-hash.js';

export type AuditProblemKind =
  | 'hash_mismatch'
  | 'broken_link'
  | 'sequence_gap'
  | 'reordered'
  | 'inserted'
  | 'bad_checkpoint_signature'
  | 'checkpoint_mismatch'
  | 'truncated'
  | 'unknown_event';

export interface AuditProblem {
  /** The first bad sequence number. */
  readonly seq: number;
  readonly kind: AuditProblemKind;
  /** What is wrong, for an operator. */
  readonly detail: string;
}

export interface AuditStreamInput {
  readonly stream: string;
  /** In the order the source holds them (seq order when intact). */
  readonly records: AsyncIterable<AuditRecord>;
  readonly checkpoints: readonly AuditCheckpoint[];
  /** The last seq the source says it holds (an export header, the store's head): less is truncation. */
  readonly expectedHeadSeq?: number;
}

export interface VerifyAuditLogInput {
  readonly streams: AsyncIterable<AuditStreamInput> | Iterable<AuditStreamInput>;
  /** The audit public key (SPKI PEM), from a trusted place: never from the log being verified. */
  readonly publicKeyPem: string;
  /** Called with the number of records checked so far, now and then and at the end. */
  readonly onProgress?: ((checked: number) => void) | undefined;
}

export interface StreamReport {
  readonly stream: string;
  readonly ok: boolean;
  readonly recordsChecked: number;
  readonly firstSeq: number | undefined;
  readonly headSeq: number | undefined;
  /** The highest seq covered by a valid checkpoint (or by the marker of an archived prefix). */
  readonly lastCheckpointSeq: number | undefined;
  /** Records after the last checkpoint: consistent, but not sealed by a signature. */
  readonly unsealedRecords: number;
  /** Set when the stream starts after an archived prefix 1…prunedThroughSeq. */
  readonly prunedThroughSeq: number | undefined;
  readonly problem: AuditProblem | undefined;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly keyId: string;
  readonly recordsChecked: number;
  readonly streams: readonly StreamReport[];
}

const PROGRESS_EVERY = 1000;

/** Verifies every stream; a stream's verification stops at its first problem. */
export async function verifyAuditLog(input: VerifyAuditLogInput): Promise<VerifyReport> {
  const publicKey = parsePublicKey(input.publicKeyPem);
  const progress = { checked: 0, report: input.onProgress };
  const streams: StreamReport[] = [];
  for await (const stream of input.streams) {
    streams.push(await verifyStream(stream, publicKey, progress));
  }
  progress.report?.(progress.checked);
  return Object.freeze({
    ok: streams.every((stream) => stream.ok),
    keyId: auditKeyId(publicKey),
    recordsChecked: progress.checked,
    streams: Object.freeze(streams),
  });
}

interface Progress {
  checked: number;
  readonly report: ((checked: number) => void) | undefined;
}

/** The verified chain so far: the last record's seq and the hash its successor must link to. */
interface Head {
  readonly seq: number;
  readonly linkHash: string;
}

async function verifyStream(
  input: AuditStreamInput,
  publicKey: KeyObject,
  progress: Progress,
): Promise<StreamReport> {
  const { stream } = input;
  const checkpoints = [...input.checkpoints].sort((a, b) => a.seq - b.seq);
  let nextCheckpoint = 0;
  let head: Head | undefined;
  let firstSeq: number | undefined;
  let lastCheckpointSeq: number | undefined;
  let prunedThroughSeq: number | undefined;
  let checked = 0;

  const report = (problem: AuditProblem | undefined): StreamReport =>
    Object.freeze({
      stream,
      ok: problem === undefined,
      recordsChecked: checked,
      firstSeq,
      headSeq: head?.seq,
      lastCheckpointSeq,
      unsealedRecords:
        head === undefined ? 0 : Math.min(checked, head.seq - (lastCheckpointSeq ?? 0)),
      prunedThroughSeq,
      problem: problem && Object.freeze(problem),
    });

  /** Checks the checkpoints at or below the verified head; returns the first problem. */
  const checkCheckpointsUpTo = (verified: Head): AuditProblem | undefined => {
    for (; nextCheckpoint < checkpoints.length; nextCheckpoint++) {
      const checkpoint = checkpoints[nextCheckpoint] as AuditCheckpoint;
      if (checkpoint.seq > verified.seq) return undefined;
      // A checkpoint over an archived prefix: its records are in the archive, not here.
      if (firstSeq !== undefined && checkpoint.seq < firstSeq) continue;
      const problem =
        checkSignature(checkpoint, publicKey) ??
        (checkpoint.stream !== stream
          ? mismatch(checkpoint, `the checkpoint belongs to stream ${String(checkpoint.stream)}`)
          : checkpoint.seq !== verified.seq
            ? mismatch(
                checkpoint,
                `no record with seq ${checkpoint.seq} precedes seq ${verified.seq}`,
              )
            : checkpoint.headHash !== verified.linkHash
              ? mismatch(
                  checkpoint,
                  `the signed head hash ${checkpoint.headHash} is not record ${checkpoint.seq}'s hash ${verified.linkHash}`,
                )
              : undefined);
      if (problem) return problem;
      lastCheckpointSeq = checkpoint.seq;
    }
    return undefined;
  };

  const records = lookahead(input.records);
  try {
    for (let record = await records.next(); record; record = await records.next()) {
      checked++;
      progress.checked++;
      if (progress.checked % PROGRESS_EVERY === 0) progress.report?.(progress.checked);

      const problem =
        checkRecord(record, stream, head === undefined ? 1 : head.seq + 1) ??
        (head === undefined
          ? checkFirstRecord(record, publicKey, await records.peek())
          : checkLink(record, head, await records.peek()));
      if (problem) return report(problem);

      if (head === undefined) {
        firstSeq = record.seq;
        const prefix = record.seq > 1 ? readPrunedPrefix(record) : undefined;
        if (prefix) {
          prunedThroughSeq = prefix.throughSeq;
          lastCheckpointSeq = prefix.throughSeq;
        }
        head = { seq: record.seq, linkHash: prefix?.lastHash ?? record.hash };
      } else {
        head = { seq: record.seq, linkHash: record.hash };
      }
      const checkpointProblem = checkCheckpointsUpTo(head);
      if (checkpointProblem) return report(checkpointProblem);
    }
  } finally {
    await records.close();
  }

  // Checkpoints beyond the last record: genuine ones mean records were cut off.
  for (const checkpoint of checkpoints.slice(nextCheckpoint)) {
    const endSeq: number = head?.seq ?? 0;
    if (firstSeq !== undefined && checkpoint.seq < firstSeq) continue;
    const problem =
      checkSignature(checkpoint, publicKey) ??
      ({
        seq: endSeq + 1,
        kind: 'truncated',
        detail:
          head === undefined
            ? `the stream has no records, but a signed checkpoint covers seq ${checkpoint.seq}`
            : `the records end at seq ${endSeq}, but a signed checkpoint covers seq ${checkpoint.seq}`,
      } satisfies AuditProblem);
    return report(problem);
  }
  const expected = input.expectedHeadSeq;
  if (expected !== undefined && (head?.seq ?? 0) < expected) {
    return report({
      seq: (head?.seq ?? 0) + 1,
      kind: 'truncated',
      detail: `the records end at seq ${head?.seq ?? 0}, but the source declares its head at seq ${expected}`,
    });
  }
  return report(undefined);
}

/** Integrity of the record on its own: its hash, its stream, its event. */
function checkRecord(
  record: AuditRecord,
  stream: string,
  expectedSeq: number,
): AuditProblem | undefined {
  const seq = Number.isSafeInteger(record.seq) ? record.seq : expectedSeq;
  if (typeof record.hash !== 'string' || hashRecord(record) !== record.hash) {
    return {
      seq,
      kind: 'hash_mismatch',
      detail: `record ${String(record.seq)} does not match its hash: it was modified`,
    };
  }
  if (!Number.isSafeInteger(record.seq) || record.seq < 1) {
    return {
      seq,
      kind: 'hash_mismatch',
      detail: `record has no valid seq (${String(record.seq)})`,
    };
  }
  if (record.stream !== stream) {
    return {
      seq,
      kind: 'inserted',
      detail: `record ${seq} of stream ${String(record.stream)} appears in stream ${stream}`,
    };
  }
  if (!(AUDIT_EVENTS as readonly string[]).includes(record.event)) {
    return {
      seq,
      kind: 'unknown_event',
      detail: `record ${seq} has unknown event "${record.event}"`,
    };
  }
  return undefined;
}

/** The first record starts the chain at seq 1, or is the marker of an archived prefix. */
function checkFirstRecord(
  record: AuditRecord,
  publicKey: KeyObject,
  next: AuditRecord | undefined,
): AuditProblem | undefined {
  if (record.seq === 1) {
    return record.prevHash === GENESIS_HASH
      ? undefined
      : { seq: 1, kind: 'broken_link', detail: 'record 1 does not start from the genesis hash' };
  }
  if (next?.seq === 1) {
    return { seq: 1, kind: 'reordered', detail: `record ${record.seq} comes before record 1` };
  }
  const prefix = readPrunedPrefix(record);
  if (!prefix) {
    return {
      seq: 1,
      kind: 'sequence_gap',
      detail: `the stream starts at seq ${record.seq}: records 1–${record.seq - 1} are missing and no audit.pruned marker accounts for them`,
    };
  }
  if (!verifyCheckpoint(prunedCheckpoint(record, prefix), publicKey)) {
    return {
      seq: record.seq,
      kind: 'bad_checkpoint_signature',
      detail: `the audit.pruned marker's checkpoint at seq ${record.seq} is not signed by the audit key ${auditKeyId(publicKey)}`,
    };
  }
  return undefined;
}

/** A record after the first: the next seq, linked to its predecessor. */
function checkLink(
  record: AuditRecord,
  head: Head,
  next: AuditRecord | undefined,
): AuditProblem | undefined {
  const expected = head.seq + 1;
  if (record.seq === expected) {
    return record.prevHash === head.linkHash
      ? undefined
      : {
          seq: record.seq,
          kind: 'broken_link',
          detail: `record ${record.seq} does not link to record ${head.seq}: its prevHash is not that record's hash`,
        };
  }
  if (record.seq < expected) {
    return {
      seq: record.seq,
      kind: 'inserted',
      detail: `seq ${record.seq} comes again after seq ${head.seq}: a record was inserted`,
    };
  }
  if (next?.seq === expected) {
    return {
      seq: expected,
      kind: 'reordered',
      detail: `record ${record.seq} comes before record ${expected}: records were reordered`,
    };
  }
  return {
    seq: expected,
    kind: 'sequence_gap',
    detail:
      record.seq === expected + 1
        ? `record ${expected} is missing (deleted)`
        : `records ${expected}–${record.seq - 1} are missing (deleted)`,
  };
}

function checkSignature(
  checkpoint: AuditCheckpoint,
  publicKey: KeyObject,
): AuditProblem | undefined {
  if (verifyCheckpoint(checkpoint, publicKey)) return undefined;
  const keyId = auditKeyId(publicKey);
  return {
    seq: checkpoint.seq,
    kind: 'bad_checkpoint_signature',
    detail:
      checkpoint.keyId === keyId
        ? `the checkpoint at seq ${checkpoint.seq} has an invalid signature`
        : `the checkpoint at seq ${checkpoint.seq} names key ${String(checkpoint.keyId)}, not the audit key ${keyId}`,
  };
}

function mismatch(checkpoint: AuditCheckpoint, detail: string): AuditProblem {
  return { seq: checkpoint.seq, kind: 'checkpoint_mismatch', detail };
}

interface Lookahead<T> {
  next(): Promise<T | undefined>;
  peek(): Promise<T | undefined>;
  close(): Promise<void>;
}

/** One-item lookahead over an async iterable, to tell a swap from a gap. */
function lookahead<T>(iterable: AsyncIterable<T>): Lookahead<T> {
  const iterator = iterable[Symbol.asyncIterator]();
  let buffered: Promise<IteratorResult<T>> | undefined;
  let done = false;
  const pull = (): Promise<IteratorResult<T>> => {
    buffered ??= iterator.next();
    return buffered;
  };
  return {
    async next() {
      const result = await pull();
      buffered = undefined;
      if (result.done) done = true;
      return result.done ? undefined : result.value;
    },
    async peek() {
      const result = await pull();
      return result.done ? undefined : result.value;
    },
    async close() {
      if (!done) await iterator.return?.();
    },
  };
}
