/**
 * Records one event from a short-lived process (a CLI command) in the audit log, on the
 * process's own stream so it never contends with a running gateway's chain, and seals it with a
 * checkpoint before returning.
 */
import { hostname } from 'node:os';
import type { AuditSigningKeySource } from '../config/config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import type { AuditRepository } from '../store/types.js';
import { createAuditChain } from './audit-chain.js';
import { openCheckpointSigner } from './checkpoint-signer.js';

/** `signingKey`: the configured key outside the store (audit.signing_key); default the store's. */
export async function recordOnce(
  repository: AuditRepository,
  entry: AuditEntry,
  signingKey?: AuditSigningKeySource,
): Promise<void> {
  const { signer } = await openCheckpointSigner(repository, signingKey);
  const chain = createAuditChain({
    repository,
    stream: `cli-${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}`.slice(0, 64),
    signer,
    batchWindowMs: 0,
  });
  try {
    await chain.record(entry);
  } finally {
    await chain.close();
  }
}
