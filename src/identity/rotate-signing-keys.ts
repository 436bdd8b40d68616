/**
 * Makes a new signing key of the built-in issuer active and records `key.rotated`. Tokens signed
 * by the previous keys keep verifying until they expire. Every replica verifies tokens signed with
 * the new key at once (an unknown kid is looked up in the store) and signs with it as soon as it
 * hears of it (PostgreSQL NOTIFY), or within its keyring's refresh interval on SQLite. Scheduled
 * rotations (made by a gateway's keyring when the active key is due) are recorded with the same
 * record, built by `describeKeyRotation`.
 */
import type { AuditEntry } from '../domain/audit-record.js';
import type { OperationContext } from '../domain/operation.js';
import type { SigningKeyring } from './signing-keys.js';

export interface RotateSigningKeysDependencies extends OperationContext {
  readonly keyring: Pick<SigningKeyring, 'rotate' | 'listKeys'>;
}

export interface KeyRotation {
  /** The key id now signing. */
  readonly kid: string;
  /** Until when the previous keys stay published (epoch ms), if any is still published. */
  readonly previousKeysUntil: number | undefined;
}

/** Rotates now; `by` is who asked, as the shell knows the operator. */
export async function rotateSigningKeys(
  dependencies: RotateSigningKeysDependencies,
  request: { readonly by: string },
): Promise<KeyRotation> {
  const { kid } = await dependencies.keyring.rotate();
  await dependencies.record(
    describeKeyRotation(
      { kid, at: dependencies.now(), scheduled: false, by: request.by },
      dependencies.environment,
    ),
  );
  const rotated = (await dependencies.keyring.listKeys()).filter(
    (key) => key.state === 'rotated' && key.retireAt !== undefined,
  );
  const until = Math.max(0, ...rotated.map((key) => key.retireAt ?? 0));
  return { kid, previousKeysUntil: until > 0 ? until : undefined };
}

/** The `key.rotated` record, for a rotation asked for (`by`) or made on schedule. */
export function describeKeyRotation(
  rotation: {
    readonly kid: string;
    readonly at: number;
    readonly scheduled: boolean;
    readonly by?: string;
  },
  environment: string,
): AuditEntry {
  return {
    event: 'key.rotated',
    time: new Date(rotation.at).toISOString(),
    environment,
    details: {
      kid: rotation.kid,
      scheduled: rotation.scheduled,
      issuer: 'builtin',
      ...(rotation.by !== undefined && { by: rotation.by }),
    },
  };
}
