/**
 * Reading audit streams out of a repository in pages, for verify and export: the only place
 * that walks a stream, so both see records the same way (seq order, up to a fixed head).
 */
import type { AuditCheckpoint, AuditRecord } from '../domain/audit-record.js';
import type { AuditRepository } from '../store/types.js';
import type { AuditStreamInput } from './verify.js';

export const DEFAULT_PAGE_SIZE = 1000;

/** The records of `stream` in seq order, from `fromSeq` through `throughSeq` (both inclusive). */
export async function* readStreamRecords(
  repository: Pick<AuditRepository, 'readStream'>,
  stream: string,
  options: {
    readonly fromSeq?: number;
    readonly throughSeq?: number;
    readonly pageSize?: number;
  } = {},
): AsyncGenerator<AuditRecord> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const throughSeq = options.throughSeq ?? Number.POSITIVE_INFINITY;
  let fromSeq = options.fromSeq ?? 1;
  for (;;) {
    const page = await repository.readStream(stream, fromSeq, pageSize);
    for (const record of page) {
      if (record.seq > throughSeq) return;
      yield record;
    }
    // Continue after the highest seq seen, not the last row's: in a tampered store a row's seq
    // may go backwards, and paging from it would read rows again. A short page is the end.
    const highest = Math.max(...page.map((record) => record.seq));
    if (page.length < pageSize || !(highest >= fromSeq)) return;
    fromSeq = highest + 1;
  }
}

/** A stream as it stands now: its checkpoints and its head (undefined if every record is gone). */
export interface StreamSnapshot {
  readonly stream: string;
  readonly head: AuditRecord | undefined;
  readonly checkpoints: readonly AuditCheckpoint[];
}

/**
 * Each stream's checkpoints, then its head. In that order, every checkpoint read was committed
 * with its records (one transaction), so the head is at or past each of them while the gateway
 * keeps appending; a checkpoint beyond the head can only mean records were deleted, and it is
 * kept so that verification (or the export's) reports the truncation.
 */
export async function snapshotStreams(
  repository: Pick<AuditRepository, 'streams' | 'head' | 'checkpoints'>,
  streams?: readonly string[],
): Promise<StreamSnapshot[]> {
  const snapshots: StreamSnapshot[] = [];
  for (const stream of streams ?? (await repository.streams())) {
    const checkpoints = await repository.checkpoints(stream);
    const head = await repository.head(stream);
    if (!head && checkpoints.length === 0) continue;
    snapshots.push({ stream, head, checkpoints });
  }
  return snapshots;
}

/** The verify input for a repository: every stream, read page by page up to its snapshot head. */
export function repositoryVerifyInput(
  repository: Pick<AuditRepository, 'readStream'>,
  snapshots: readonly StreamSnapshot[],
  options: { readonly pageSize?: number } = {},
): AuditStreamInput[] {
  return snapshots.map(({ stream, head, checkpoints }) => ({
    stream,
    checkpoints,
    records: readStreamRecords(repository, stream, {
      throughSeq: head?.seq ?? 0,
      ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
    }),
  }));
}
