/**
 * Archiving without breaking verification. When a stream's records 1…T are archived (exported,
 * then deleted), the stored stream keeps one marker in their place:
 *
 *   { event: 'audit.pruned', seq: T, prevHash: H_T, hash: <its own hash>,
 *     details: { throughSeq: T, lastHash: H_T, prunedRecords,
 *                checkpoint: { time, keyId, signature } } }
 *
 * where H_T is the hash of the archived record T. The marker stands in for record T: record T+1
 * still links to H_T (its prevHash is unchanged), so the marker's `prevHash` is H_T and a
 * verifier continues the chain from `details.lastHash`, not from the marker's own hash.
 *
 * Anyone can write such a marker, so it carries proof: T must be the seq of a signed checkpoint,
 * and `details.checkpoint` is that checkpoint's time, key id and signature. The verifier checks
 * the signature over { stream, seq: T, headHash: H_T, time, keyId }, so a marker cannot claim a
 * prefix ending anywhere but at a checkpointed head, nor a head hash the key never signed, and
 * archiving needs no private key (the checkpoint is copied). Records 1…T live on in the archive
 * export, which verifies on its own.
 *
 * What this cannot show, from the stream alone: someone with write access deleting further, up
 * to a later checkpoint, and writing a marker from that checkpoint. Keep each archive export
 * (its last seq must meet the next one's marker) and record archiving runs as events.
 */
import type { AuditCheckpoint, AuditRecord } from '../domain/audit-record.js';
import { hashRecord } from './record-hash.js';

/** The details of an `audit.pruned` marker. */
export interface PrunedPrefix {
  readonly throughSeq: number;
  readonly lastHash: string;
  readonly prunedRecords?: number;
  /** The signed checkpoint at `throughSeq` (its stream, seq and headHash are the marker's). */
  readonly checkpoint: {
    readonly time: string;
    readonly keyId: string;
    readonly signature: string;
  };
}

/**
 * The marker that replaces records 1…checkpoint.seq of `checkpoint.stream`; `time` is when the
 * archive ran. Store it in the same transaction that deletes those records.
 */
export function createPrunedMarker(options: {
  readonly checkpoint: AuditCheckpoint;
  readonly time: string;
  readonly prunedRecords?: number;
}): AuditRecord {
  const { checkpoint } = options;
  const details: PrunedPrefix = {
    throughSeq: checkpoint.seq,
    lastHash: checkpoint.headHash,
    ...(options.prunedRecords === undefined ? {} : { prunedRecords: options.prunedRecords }),
    checkpoint: {
      time: checkpoint.time,
      keyId: checkpoint.keyId,
      signature: checkpoint.signature,
    },
  };
  const unhashed = {
    event: 'audit.pruned' as const,
    time: options.time,
    details: details as unknown as Readonly<Record<string, unknown>>,
    stream: checkpoint.stream,
    seq: checkpoint.seq,
    prevHash: checkpoint.headHash,
  };
  return Object.freeze({ ...unhashed, hash: hashRecord(unhashed) });
}

/**
 * The marker's claims when `record` is a well-formed `audit.pruned` marker (seq = throughSeq,
 * prevHash = lastHash), else undefined. Only a stream's first record can be a marker: anywhere
 * else the verifier treats `audit.pruned` as an ordinary record.
 */
export function readPrunedPrefix(record: AuditRecord): PrunedPrefix | undefined {
  if (record.event !== 'audit.pruned') return undefined;
  const details = record.details as Partial<PrunedPrefix> | undefined;
  const checkpoint = details?.checkpoint as Partial<PrunedPrefix['checkpoint']> | undefined;
  if (
    typeof details?.throughSeq !== 'number' ||
    typeof details.lastHash !== 'string' ||
    typeof checkpoint?.time !== 'string' ||
    typeof checkpoint.keyId !== 'string' ||
    typeof checkpoint.signature !== 'string' ||
    details.throughSeq !== record.seq ||
    details.lastHash !== record.prevHash
  ) {
    return undefined;
  }
  return details as PrunedPrefix;
}

/** The checkpoint a marker carries, for signature verification. */
export function prunedCheckpoint(record: AuditRecord, prefix: PrunedPrefix): AuditCheckpoint {
  return {
    stream: record.stream,
    seq: prefix.throughSeq,
    headHash: prefix.lastHash,
    time: prefix.checkpoint.time,
    keyId: prefix.checkpoint.keyId,
    signature: prefix.checkpoint.signature,
  };
}

/**
 * The hash a chain resuming after `head` links to: the marker's `lastHash` when everything up to
 * the head was archived, else the head's hash.
 */
export function resumeHashOf(head: AuditRecord): string {
  return readPrunedPrefix(head)?.lastHash ?? head.hash;
}
