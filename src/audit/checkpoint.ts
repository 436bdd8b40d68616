/**
 * Signed checkpoints: an Ed25519 signature over a stream's head, so that an export can be
 * verified offline with the public key alone, and truncation before the last checkpoint shows.
 * The signature covers canonicalJson({ stream, seq, headHash, time, keyId }). The audit signing
 * key is its own key pair, separate from any token-signing key.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import type { AuditCheckpoint } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import type { AuditRepository, AuditSigningKey } from '../store/types.js';
import { AuditError } from './errors.js';

/** What a checkpoint vouches for, before it is signed. */
export interface CheckpointHead {
  readonly stream: string;
  readonly seq: number;
  readonly headHash: string;
  /** ISO 8601 with milliseconds, UTC. */
  readonly time: string;
}

export interface CheckpointSigner {
  readonly keyId: string;
  /** Signs the head; synchronous (an Ed25519 signature takes microseconds). */
  signCheckpoint(head: CheckpointHead): AuditCheckpoint;
}

/** The private half a store keeps when the signing key lives outside it (audit.signing_key). */
export const PUBLISHED_ONLY = 'none: the private key is kept outside the store';

/** The bytes a checkpoint's signature covers. */
export function checkpointPayload(head: CheckpointHead & { readonly keyId: string }): Buffer {
  const { stream, seq, headHash, time, keyId } = head;
  return Buffer.from(canonicalJson({ stream, seq, headHash, time, keyId }), 'utf8');
}

/** The id of an audit public key: base64url SHA-256 of its SPKI DER, first 16 characters. */
export function auditKeyId(publicKey: string | KeyObject): string {
  const key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url').slice(0, 16);
}

/** A new Ed25519 key pair for signing checkpoints. */
export function generateAuditKeyPair(): AuditSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return Object.freeze({
    keyId: auditKeyId(publicKey),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  });
}

/** A signer over the given private key; rejects a key that is not Ed25519. */
export function createCheckpointSigner(options: {
  readonly keyId: string;
  readonly privateKeyPem: string;
}): CheckpointSigner {
  if (options.privateKeyPem === PUBLISHED_ONLY) {
    throw new AuditError(
      'AUDIT_KEY_INVALID',
      'the store holds only the audit public key: the signing key is kept outside it (audit.signing_key)',
    );
  }
  const privateKey = parseEd25519Key(options.privateKeyPem, 'private');
  const keyId = options.keyId;
  return Object.freeze({
    keyId,
    signCheckpoint(head: CheckpointHead): AuditCheckpoint {
      const checkpoint = {
        stream: head.stream,
        seq: head.seq,
        headHash: head.headHash,
        time: head.time,
        keyId,
      };
      const signature = sign(null, checkpointPayload(checkpoint), privateKey).toString('base64url');
      return Object.freeze({ ...checkpoint, signature });
    },
  });
}

/**
 * True when `checkpoint` is signed by `publicKey` and names that key's id. A malformed
 * checkpoint or signature is false, never an exception; a malformed public key throws.
 */
export function verifyCheckpoint(
  checkpoint: AuditCheckpoint,
  publicKey: string | KeyObject,
): boolean {
  const key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey;
  if (typeof checkpoint.signature !== 'string' || checkpoint.keyId !== auditKeyId(key)) {
    return false;
  }
  try {
    return verify(
      null,
      checkpointPayload(checkpoint),
      key,
      Buffer.from(checkpoint.signature, 'base64url'),
    );
  } catch {
    return false;
  }
}

/** Parses an Ed25519 public key (SPKI PEM); a private key PEM is accepted for its public half. */
export function parsePublicKey(pem: string): KeyObject {
  return parseEd25519Key(pem, 'public');
}

function parseEd25519Key(pem: string, half: 'public' | 'private'): KeyObject {
  const name = half === 'public' ? 'the audit public key' : 'the audit signing key';
  let key: KeyObject;
  try {
    key = half === 'public' ? createPublicKey(pem) : createPrivateKey(pem);
  } catch (cause) {
    throw new AuditError('AUDIT_KEY_INVALID', `${name} is not a valid PEM ${half} key`, { cause });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new AuditError(
      'AUDIT_KEY_INVALID',
      `${name} must be Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  }
  return key;
}

/**
 * The store's audit signing key, created and saved on first use. When two processes race to
 * create it, the store keeps the first and both use that one. Rejects (AUDIT_KEY_INVALID) a
 * stored key whose public half, or id, does not belong to its private half.
 */
export async function loadOrCreateAuditKey(
  repository: Pick<AuditRepository, 'signingKey' | 'saveSigningKey'>,
): Promise<AuditSigningKey> {
  const stored =
    (await repository.signingKey()) ?? (await repository.saveSigningKey(generateAuditKeyPair()));
  return checkKeyPair(stored);
}

function checkKeyPair(key: AuditSigningKey): AuditSigningKey {
  if (key.privateKeyPem === PUBLISHED_ONLY) {
    if (auditKeyId(key.publicKeyPem) !== key.keyId) {
      throw new AuditError('AUDIT_KEY_INVALID', 'the stored audit key id does not match its key');
    }
    return Object.freeze({ ...key });
  }
  createCheckpointSigner(key);
  const derived = createPublicKey(createPrivateKey(key.privateKeyPem));
  const publicKey = parsePublicKey(key.publicKeyPem);
  if (!derived.equals(publicKey) || auditKeyId(publicKey) !== key.keyId) {
    throw new AuditError(
      'AUDIT_KEY_INVALID',
      'the stored audit public key or key id does not match its private key',
    );
  }
  return Object.freeze({
    keyId: key.keyId,
    privateKeyPem: key.privateKeyPem,
    publicKeyPem: key.publicKeyPem,
  });
}
