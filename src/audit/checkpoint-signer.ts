/**
 * Chooses the checkpoint signer a gateway uses. By default the key is kept in the store, next to
 * the log: that detects tampering by whoever cannot write the store, not by whoever can (they can
 * rewrite the chain and re-sign it). With `audit.signing_key` the private key is read from a file
 * or an environment variable instead, and the store only publishes its public half, where verify
 * finds it. A KMS would implement the same `CheckpointSigner` seam.
 */
import { readFileSync } from 'node:fs';
import type { AuditSigningKeySource } from '../config/config.js';
import type { AuditRepository } from '../store/types.js';
import {
  auditKeyId,
  createCheckpointSigner,
  loadOrCreateAuditKey,
  parsePublicKey,
  PUBLISHED_ONLY,
  type CheckpointSigner,
} from './checkpoint.js';
import { AuditError } from './errors.js';

export interface OpenedCheckpointSigner {
  readonly signer: CheckpointSigner;
  readonly publicKeyPem: string;
  /** True when the private key is kept in the store (anyone who can write it can re-sign). */
  readonly keyInStore: boolean;
}

/**
 * The signer for `source`, or the store's own key when `source` is undefined. An external key's
 * public half is published in the store; a store that already publishes another key is refused
 * (AUDIT_KEY_INVALID): its checkpoints would no longer verify with the key it shows.
 */
export async function openCheckpointSigner(
  repository: Pick<AuditRepository, 'signingKey' | 'saveSigningKey'>,
  source: AuditSigningKeySource | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<OpenedCheckpointSigner> {
  if (source === undefined) {
    const key = await loadOrCreateAuditKey(repository);
    return {
      signer: createCheckpointSigner(key),
      publicKeyPem: key.publicKeyPem,
      keyInStore: true,
    };
  }
  const privateKeyPem = readSigningKey(source, env);
  // parsePublicKey checks the key is Ed25519 before anything is derived from it.
  const publicKeyPem = parsePublicKey(privateKeyPem)
    .export({ type: 'spki', format: 'pem' })
    .toString();
  const keyId = auditKeyId(publicKeyPem);
  const signer = createCheckpointSigner({ keyId, privateKeyPem });
  const published = await repository.saveSigningKey({
    keyId,
    privateKeyPem: PUBLISHED_ONLY,
    publicKeyPem,
  });
  if (published.keyId !== keyId) {
    throw new AuditError(
      'AUDIT_KEY_INVALID',
      `the store already publishes audit key ${published.keyId}, not the configured signing key ${keyId}: its checkpoints would not verify`,
    );
  }
  return { signer, publicKeyPem, keyInStore: false };
}

function readSigningKey(source: AuditSigningKeySource, env: NodeJS.ProcessEnv): string {
  if (source.kind === 'env') {
    const value = env[source.name];
    if (value === undefined || value.trim() === '') {
      throw new AuditError(
        'AUDIT_KEY_INVALID',
        `audit.signing_key: the environment variable ${source.name} is not set`,
      );
    }
    return value;
  }
  try {
    return readFileSync(source.path, 'utf8');
  } catch (cause) {
    throw new AuditError('AUDIT_KEY_INVALID', `audit.signing_key: cannot read ${source.path}`, {
      cause,
    });
  }
}
