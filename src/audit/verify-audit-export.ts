/**
 * Verifies a JSONL export offline, from the file and a public key alone: every record, link and
 * signed checkpoint, and that no record after the export's stated heads is missing.
 */
import { auditKeyId } from './checkpoint.js';
import { readAuditExport } from './export.js';
import { verifyAuditLog, type VerifyReport } from './verify.js';

export interface VerifyAuditExportOptions {
  /** The audit public key (PEM) to trust; never the one the file carries. */
  readonly trustedPublicKeyPem: string;
  /** Told how many records the file holds; may return a function told the records checked so far. */
  readonly onStart?: (start: {
    readonly records: number;
  }) => ((checked: number) => void) | undefined;
}

export interface ExportVerification {
  readonly report: VerifyReport;
  /** The key id the export names, when it is not the trusted key's (worth a warning). */
  readonly otherKeyId: string | undefined;
}

/** Rejects with AUDIT_EXPORT_INVALID when the file is not an export or a line is not JSON. */
export async function verifyAuditExport(
  path: string,
  options: VerifyAuditExportOptions,
): Promise<ExportVerification> {
  const file = await readAuditExport(path);
  const trustedKeyId = auditKeyId(options.trustedPublicKeyPem);
  const report = await verifyAuditLog({
    streams: file.streams,
    publicKeyPem: options.trustedPublicKeyPem,
    onProgress: options.onStart?.({ records: file.recordCount }),
  });
  return { report, otherKeyId: file.header.keyId === trustedKeyId ? undefined : file.header.keyId };
}
