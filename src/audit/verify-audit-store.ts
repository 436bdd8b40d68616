/**
 * Verifies the audit log in the store: every record, link and signed checkpoint of every stream,
 * up to each stream's head when verification starts.
 */
import type { AuditRepository } from '../store/types.js';
import { AuditError } from './errors.js';
import { repositoryVerifyInput, snapshotStreams } from './read-stream.js';
import { verifyAuditLog, type VerifyReport } from './verify.js';

export type { VerifyReport };

/** What a verification is about to check, for a progress display. */
export interface VerifyStart {
  /** Records to check (an upper bound: archived prefixes are not read). */
  readonly records: number;
  /**
   * True when the key is the one kept in the same store as the log: a check against tampering
   * by whoever cannot write the store, not by whoever can (pin the key and pass it instead).
   */
  readonly keyFromStore: boolean;
}

export interface VerifyAuditOptions {
  /** The audit public key (PEM) from a trusted place; default: the key kept in the store. */
  readonly trustedPublicKeyPem?: string;
  /** Told what is about to be checked; may return a function told the records checked so far. */
  readonly onStart?: (start: VerifyStart) => ((checked: number) => void) | undefined;
}

type VerifySource = Pick<
  AuditRepository,
  'streams' | 'head' | 'checkpoints' | 'readStream' | 'signingKey'
>;

/**
 * The verification report. An empty store verifies (nothing to check); a store with records but
 * no audit key, and no key given, is refused (AUDIT_KEY_INVALID).
 */
export async function verifyAuditStore(
  repository: VerifySource,
  options: VerifyAuditOptions = {},
): Promise<VerifyReport> {
  const snapshots = await snapshotStreams(repository);
  const publicKeyPem = options.trustedPublicKeyPem ?? (await repository.signingKey())?.publicKeyPem;
  if (publicKeyPem === undefined) {
    if (snapshots.length === 0) return { ok: true, keyId: '-', recordsChecked: 0, streams: [] };
    throw new AuditError(
      'AUDIT_KEY_INVALID',
      'the store has audit records but no audit key: give --public-key',
    );
  }
  const records = snapshots.reduce((sum, { head }) => sum + (head?.seq ?? 0), 0);
  const onProgress = options.onStart?.({
    records,
    keyFromStore: options.trustedPublicKeyPem === undefined,
  });
  return verifyAuditLog({
    streams: repositoryVerifyInput(repository, snapshots),
    publicKeyPem,
    onProgress,
  });
}
