/**
 * Records one event from a short-lived process (a CLI command) in the audit log, on the
 * process's own stream so it never contends with a running gateway's chain, and seals it with a
 * checkpoint before returning.
 */
import { hostname } from 'node:os';
import type { AuditEntry } from '../domain/audit-record.js';
import type { AuditRepository } from '../store/types.js';
import { createAuditChain } from './audit-chain.js';
import { createCheckpointSigner, loadOrCreateAuditKey } from './checkpoint.js';

export async function recordOnce(repository: AuditRepository, entry: AuditEntry): Promise<void> {
  const key = await loadOrCreateAuditKey(repository);
  const chain = createAuditChain({
    repository,
    stream: `cli-${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}`.slice(0, 64),
    signer: createCheckpointSigner(key),
    batchWindowMs: 0,
  });
  try {
    await chain.record(entry);
  } finally {
    await chain.close();
  }
}
