/**
 * Verifies the audit log in the store: every record, link and signed checkpoint of every stream,
 * up to each stream's head when verification starts.
 */
import type { AuditRepository } from '../store/types.js';
import { AuditError } from './errors.js';
import { repositoryVerifyInput, snapshotStreams } from './read-stream.js';
import { auditKeyId, parsePublicKey } from './checkpoint.js';
import { verifyAgainstWitness, type WitnessReport } from './witness-verify.js';
import { verifyAuditLog, type VerifyReport } from './verify.js';

export type { VerifyReport, WitnessReport };

/** The chain's report, with the witness comparison and the pinned key check when asked for. */
export interface StoreVerifyReport extends VerifyReport {
  /** Set when a witness file was given. */
  readonly witness?: WitnessReport;
  /** Set when the store publishes a key other than the pinned one. */
  readonly keyProblem?: string;
}

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
  /** A witness file (see witness.ts) to compare the chain with. */
  readonly witnessPath?: string;
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
): Promise<StoreVerifyReport> {
  const snapshots = await snapshotStreams(repository);
  const stored = await repository.signingKey();
  const publicKeyPem = options.trustedPublicKeyPem ?? stored?.publicKeyPem;
  if (publicKeyPem === undefined) {
    if (snapshots.length === 0 && options.witnessPath === undefined) {
      return { ok: true, keyId: '-', recordsChecked: 0, streams: [] };
    }
    throw new AuditError(
      'AUDIT_KEY_INVALID',
      snapshots.length === 0
        ? 'the store holds no audit key to check the witness with (was it wiped?): give --public-key'
        : 'the store has audit records but no audit key: give --public-key',
    );
  }
  const records = snapshots.reduce((sum, { head }) => sum + (head?.seq ?? 0), 0);
  const onProgress = options.onStart?.({
    records,
    keyFromStore: options.trustedPublicKeyPem === undefined,
  });
  const report = await verifyAuditLog({
    streams: repositoryVerifyInput(repository, snapshots),
    publicKeyPem,
    onProgress,
  });
  const publicKey = parsePublicKey(publicKeyPem);
  // A store showing another key than the pinned one was re-keyed: whoever did it can sign.
  const keyProblem =
    options.trustedPublicKeyPem !== undefined &&
    stored !== undefined &&
    !parsePublicKey(stored.publicKeyPem).equals(publicKey)
      ? `the store publishes audit key ${stored.keyId}, not the pinned key ${auditKeyId(publicKey)}: it was replaced`
      : undefined;
  const witness =
    options.witnessPath === undefined
      ? undefined
      : await verifyAgainstWitness(repository, options.witnessPath, publicKey);
  return Object.freeze({
    ...report,
    ok: report.ok && keyProblem === undefined && (witness?.ok ?? true),
    ...(keyProblem !== undefined && { keyProblem }),
    ...(witness !== undefined && { witness }),
  });
}
