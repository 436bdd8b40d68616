/**
 * Retention as one operation: writes the records older than a date to a verifiable archive (a
 * JSONL export, synced and checked with the trusted key), then prunes them from the store,
 * leaving a signed `audit.pruned` marker in their place so the rest still verifies. Nothing is
 * pruned unless the archive is on disk and proves every record it replaces.
 */
import type { AuditRepository } from '../store/types.js';
import { OperationError } from '../domain/errors.js';
import {
  checkAuditArchive,
  planAuditArchive,
  pruneArchivedStreams,
  writeAuditArchive,
  type StreamArchivePlan,
} from './archive.js';
import { writeFileDurably } from './durable-file.js';
import { AuditError } from './errors.js';
import type { AuditExportSummary } from './export.js';

export interface ArchiveAuditLogRequest {
  /** Records older than this (epoch ms) are archived, as far as a signed checkpoint allows. */
  readonly before: number;
  /** The archive to create; never overwritten. */
  readonly path: string;
  /** The audit public key (PEM) to check the archive with; default: the key in the store. */
  readonly trustedPublicKeyPem?: string;
}

export interface AuditArchiveOutcome {
  readonly summary: AuditExportSummary;
  /** What was archived of each stream, and how many stored rows pruning removed. */
  readonly streams: readonly (StreamArchivePlan & { readonly deleted: number })[];
}

type ArchiveRepository = Pick<
  AuditRepository,
  'streams' | 'head' | 'checkpoints' | 'readStream' | 'signingKey' | 'prune'
>;

/**
 * Archives and prunes; resolves undefined when no stream has a signed checkpoint whose records
 * are all older than `before` (nothing is written then). When the archive cannot be written or
 * exists already it throws OperationError (OPERATION_INVALID); when it does not verify,
 * AuditError: in both cases nothing was pruned.
 */
export async function archiveAuditLog(
  repository: ArchiveRepository,
  request: ArchiveAuditLogRequest,
): Promise<AuditArchiveOutcome | undefined> {
  const publicKeyPem = request.trustedPublicKeyPem ?? (await repository.signingKey())?.publicKeyPem;
  if (publicKeyPem === undefined) {
    throw new AuditError('AUDIT_KEY_INVALID', 'the store has no audit key: nothing to archive');
  }
  const plans = await planAuditArchive(repository, request.before);
  if (plans.length === 0) return undefined;
  const summary = await writeFileDurably(
    request.path,
    (out) => writeAuditArchive(repository, plans, out, { publicKeyPem }),
    {
      exclusive: true,
      check: (partial) => checkAuditArchive(partial, plans, publicKeyPem),
    },
  ).catch((error: unknown) => {
    throw explainUnwrittenArchive(request.path, error);
  });
  const deleted = await pruneArchivedStreams(repository, plans);
  return {
    summary,
    streams: plans.map((plan) => ({ ...plan, deleted: deleted.get(plan.stream) ?? 0 })),
  };
}

/** Why the archive was not written, said so; nothing is pruned then. */
function explainUnwrittenArchive(path: string, error: unknown): unknown {
  if (isFileSystemError(error)) {
    return new OperationError(
      'OPERATION_INVALID',
      `cannot write the archive ${path}: ${error.code ?? error.message}; nothing was pruned`,
    );
  }
  if (error instanceof AuditError) {
    return new AuditError(error.code, `${error.message}; nothing was pruned`, { cause: error });
  }
  return error;
}

function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}
