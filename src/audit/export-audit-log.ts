/**
 * Exports the audit log: verifiable JSONL (records, checkpoints and the public key to check them
 * against, `warden audit verify --file`), or OCSF API Activity events for a SIEM.
 */
import type { Writable } from 'node:stream';
import type { AuditRepository } from '../store/types.js';
import { loadOrCreateAuditKey } from './checkpoint.js';
import { writeFileDurably } from './durable-file.js';
import { writeAuditExport, writeOcsfExport, type AuditExportSummary } from './export.js';

export type { AuditExportSummary };

export const AUDIT_EXPORT_FORMATS = ['jsonl', 'ocsf'] as const;

export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

export interface ExportAuditLogRequest {
  readonly format: AuditExportFormat;
  /** A stream (e.g. stdout), or a file written durably (whole or not at all). */
  readonly to: { readonly stream: Writable } | { readonly path: string };
}

type ExportSource = Pick<
  AuditRepository,
  'streams' | 'head' | 'checkpoints' | 'readStream' | 'signingKey' | 'saveSigningKey'
>;

/** Writes every stream, each up to its head at the start; a JSONL export carries the public key. */
export async function exportAuditLog(
  repository: ExportSource,
  request: ExportAuditLogRequest,
): Promise<AuditExportSummary> {
  const write = async (out: Writable): Promise<AuditExportSummary> =>
    request.format === 'ocsf'
      ? writeOcsfExport(repository, out)
      : writeAuditExport(repository, out, {
          publicKeyPem: (await loadOrCreateAuditKey(repository)).publicKeyPem,
        });
  const { to } = request;
  return 'path' in to ? writeFileDurably(to.path, write, { exclusive: false }) : write(to.stream);
}
