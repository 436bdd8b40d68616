/**
 * Retention: archive the old part of each stream to a verifiable export, then prune it from the
 * store, leaving an `audit.pruned` marker (see pruned-prefix.ts) so the rest still verifies.
 *
 * A stream can only be cut at a signed checkpoint, so each stream is archived through its last
 * checkpoint whose records (every one up to it) are older than the cut-off; the records after it
 * stay, even if some of them are old too. The caller writes the export, makes it durable and
 * checks it (`checkAuditArchive`) before it prunes anything (`pruneArchivedStreams`).
 */
import type { Writable } from 'node:stream';
import type { AuditCheckpoint, AuditRecord } from '../domain/audit-record.js';
import type { AuditRepository } from '../store/types.js';
import { AuditError } from './errors.js';
import { readAuditExport, writeAuditExport, type AuditExportSummary } from './export.js';
import { createPrunedMarker, readPrunedPrefix } from './pruned-prefix.js';
import { readStreamRecords } from './read-stream.js';
import { verifyAuditLog, type VerifyReport } from './verify.js';

type ArchiveSource = Pick<AuditRepository, 'streams' | 'head' | 'checkpoints' | 'readStream'>;

/** What an archive run takes out of one stream. */
export interface StreamArchivePlan {
  readonly stream: string;
  /** The stream's first stored record (1, or an earlier archive's marker). */
  readonly firstSeq: number;
  /** Records through this seq go to the archive and are pruned. */
  readonly throughSeq: number;
  /** The seq an earlier archive pruned through (0 when none): this run removes the seqs after. */
  readonly previouslyArchivedSeq: number;
  /** The checkpoints in (previouslyArchivedSeq, throughSeq], oldest first; the last is at throughSeq. */
  readonly checkpoints: readonly AuditCheckpoint[];
}

/**
 * Per stream, how far an archive of the records older than `beforeMs` can go: through the last
 * signed checkpoint that every record up to it precedes. Streams with nothing to archive are left
 * out.
 */
export async function planAuditArchive(
  repository: ArchiveSource,
  beforeMs: number,
): Promise<StreamArchivePlan[]> {
  const plans: StreamArchivePlan[] = [];
  for (const stream of await repository.streams()) {
    const [first] = await repository.readStream(stream, 0, 1);
    const head = await repository.head(stream);
    if (!first || !head) continue;
    const previouslyArchivedSeq = readPrunedPrefix(first) ? first.seq : 0;
    const candidates = (await repository.checkpoints(stream)).filter(
      (checkpoint) => checkpoint.seq > previouslyArchivedSeq && checkpoint.seq <= head.seq,
    );
    const lastCandidate = candidates.at(-1);
    if (!lastCandidate) continue;
    const olderThroughSeq = await lastSeqOlderThan(repository, stream, first, {
      beforeMs,
      upToSeq: lastCandidate.seq,
    });
    const checkpoints = candidates.filter((checkpoint) => checkpoint.seq <= olderThroughSeq);
    const last = checkpoints.at(-1);
    if (!last) continue;
    plans.push({
      stream,
      firstSeq: first.seq,
      throughSeq: last.seq,
      previouslyArchivedSeq,
      checkpoints,
    });
  }
  return plans;
}

/**
 * The highest seq (at most `upToSeq`) such that every record from the stream's start through it
 * is older than `beforeMs`. An earlier archive's marker carries the time that archive ran, not
 * the time of the records it stands for, so it does not count.
 */
async function lastSeqOlderThan(
  repository: Pick<AuditRepository, 'readStream'>,
  stream: string,
  first: AuditRecord,
  limits: { readonly beforeMs: number; readonly upToSeq: number },
): Promise<number> {
  let older = first.seq - 1;
  for await (const record of readStreamRecords(repository, stream, {
    fromSeq: first.seq,
    throughSeq: limits.upToSeq,
  })) {
    const isMarker = record.seq === first.seq && readPrunedPrefix(record) !== undefined;
    if (!isMarker && !(Date.parse(record.time) < limits.beforeMs)) break;
    older = record.seq;
  }
  return older;
}

/**
 * Writes the JSONL export of the planned prefixes: for each stream, its records from the first
 * stored one through `throughSeq` and the checkpoints among them. It verifies on its own, offline.
 */
export function writeAuditArchive(
  repository: Pick<AuditRepository, 'readStream' | 'checkpoints'>,
  plans: readonly StreamArchivePlan[],
  out: Writable,
  options: { readonly publicKeyPem: string; readonly now?: () => number },
): Promise<AuditExportSummary> {
  const byStream = new Map(plans.map((plan) => [plan.stream, plan]));
  const planOf = (stream: string): StreamArchivePlan => {
    const plan = byStream.get(stream);
    if (!plan)
      throw new AuditError('AUDIT_EXPORT_INVALID', `stream ${stream} is not being archived`);
    return plan;
  };
  // The repository as the archive sees it: each stream ending at its planned seq.
  const prefixes: ArchiveSource = {
    streams: async () => plans.map((plan) => plan.stream),
    head: async (stream) => {
      const { throughSeq } = planOf(stream);
      const [record] = await repository.readStream(stream, throughSeq, 1);
      if (record?.seq !== throughSeq) {
        throw new AuditError(
          'AUDIT_EXPORT_INVALID',
          `stream ${stream} has no record at seq ${throughSeq} to archive through`,
        );
      }
      return record;
    },
    checkpoints: async (stream) => {
      const { firstSeq, throughSeq } = planOf(stream);
      return (await repository.checkpoints(stream)).filter(
        (checkpoint) => checkpoint.seq >= firstSeq && checkpoint.seq <= throughSeq,
      );
    },
    readStream: async (stream, fromSeq, limit) => {
      const { throughSeq } = planOf(stream);
      return (await repository.readStream(stream, fromSeq, limit)).filter(
        (record) => record.seq <= throughSeq,
      );
    },
  };
  return writeAuditExport(prefixes, out, {
    publicKeyPem: options.publicKeyPem,
    streams: plans.map((plan) => plan.stream),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}

/**
 * Reads the written archive back and verifies it with the trusted key: each planned stream must
 * be intact and sealed by a checkpoint at its `throughSeq`. Rejects with AUDIT_EXPORT_INVALID
 * otherwise: nothing may be pruned that the archive does not prove.
 */
export async function checkAuditArchive(
  path: string,
  plans: readonly StreamArchivePlan[],
  publicKeyPem: string,
): Promise<VerifyReport> {
  const file = await readAuditExport(path);
  const report = await verifyAuditLog({ streams: file.streams, publicKeyPem });
  for (const plan of plans) {
    const stream = report.streams.find((candidate) => candidate.stream === plan.stream);
    const problem = !stream
      ? 'is missing'
      : stream.problem
        ? `does not verify at seq ${stream.problem.seq}: ${stream.problem.kind}: ${stream.problem.detail}`
        : stream.headSeq !== plan.throughSeq || stream.lastCheckpointSeq !== plan.throughSeq
          ? `ends at seq ${String(stream.headSeq)}, sealed through ${String(stream.lastCheckpointSeq)}, not at seq ${plan.throughSeq}`
          : undefined;
    if (problem !== undefined) {
      throw new AuditError(
        'AUDIT_EXPORT_INVALID',
        `the archive ${path}: stream ${plan.stream} ${problem}`,
      );
    }
  }
  return report;
}

/** How far to prune in one transaction: the store's write lock is held throughout. */
const RECORDS_PER_PRUNE = 50_000;

/**
 * Prunes each planned prefix, a checkpoint at a time (about RECORDS_PER_PRUNE records per
 * transaction, so a gateway writing beside it waits little), each step storing the marker of the
 * prefix pruned so far. Only after the archive is written, synced and checked. Returns how many
 * stored rows were deleted per stream.
 */
export async function pruneArchivedStreams(
  repository: Pick<AuditRepository, 'prune'>,
  plans: readonly StreamArchivePlan[],
  options: { readonly now?: () => number } = {},
): Promise<Map<string, number>> {
  const now = options.now ?? Date.now;
  const deleted = new Map<string, number>();
  for (const plan of plans) {
    let total = 0;
    for (const checkpoint of pruneSteps(plan)) {
      const marker = createPrunedMarker({
        checkpoint,
        time: new Date(now()).toISOString(),
        // The records this archive run removed up to this marker.
        prunedRecords: checkpoint.seq - plan.previouslyArchivedSeq,
      });
      total += await repository.prune(plan.stream, checkpoint.seq, marker);
    }
    deleted.set(plan.stream, total);
  }
  return deleted;
}

/** The checkpoints to prune through, in order: steps of about RECORDS_PER_PRUNE, ending at throughSeq. */
function pruneSteps(plan: StreamArchivePlan): AuditCheckpoint[] {
  const steps: AuditCheckpoint[] = [];
  let at = plan.previouslyArchivedSeq;
  const remaining = [...plan.checkpoints];
  while (remaining.length > 0) {
    // The furthest checkpoint within one step, or the next one if even that is further.
    let index = 0;
    while (
      index + 1 < remaining.length &&
      (remaining[index + 1]?.seq ?? 0) - at <= RECORDS_PER_PRUNE
    ) {
      index++;
    }
    const step = remaining[index] as AuditCheckpoint;
    steps.push(step);
    at = step.seq;
    remaining.splice(0, index + 1);
  }
  return steps;
}
