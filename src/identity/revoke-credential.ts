/**
 * Revokes one token (by id), or every credential issued so far to an agent or for a user, and
 * records `token.revoked`. The one place a revocation is built, whichever shell asks for it
 * (`warden token revoke`, `POST /admin/revocations`).
 */
import type { AuthConfig } from '../config/config.js';
import { OperationError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { Revocation, RevocationKind, RevocationRepository } from '../store/types.js';

export type { Revocation, RevocationKind };

/** What a revocation can name. */
export const REVOCATION_KINDS: readonly RevocationKind[] = ['token', 'agent', 'user'];

const MAX_SUBJECT_LENGTH = 256;
const MAX_REASON_LENGTH = 1000;

export interface RevokeCredentialRequest {
  readonly kind: RevocationKind;
  /** The token id (jti), agent id or user id. */
  readonly subject: string;
  /** Why, for the audit trail. */
  readonly reason: string;
  /** Who revokes, as the shell knows the operator (`cli:alice`, `user:oscar via ops-admin`). */
  readonly by: string;
}

export interface RevokeCredentialDependencies extends OperationContext {
  readonly auth: Pick<AuthConfig, 'maxTokenLifetimeMs' | 'clockSkewMs'>;
  /**
   * Where the revocation is kept: the store, or a gateway's revocation list (which writes to the
   * store and puts it in force on this replica at once).
   */
  readonly revocations: Pick<RevocationRepository, 'add'>;
}

/**
 * Stores the revocation, then records it. It stays in force for the longest lifetime any
 * accepted token can have (plus clock skew): by then every credential it covers has expired.
 * Throws OperationError (OPERATION_INVALID) for an unknown kind, an empty or overlong subject, or
 * an empty or overlong reason.
 */
export async function revokeCredential(
  dependencies: RevokeCredentialDependencies,
  request: RevokeCredentialRequest,
): Promise<Revocation> {
  checkRequest(request);
  const revokedAt = dependencies.now();
  const revocation: Revocation = {
    kind: request.kind,
    subject: request.subject,
    revokedAt,
    expiresAt: revokedAt + dependencies.auth.maxTokenLifetimeMs + dependencies.auth.clockSkewMs,
    reason: request.reason,
    revokedBy: request.by,
  };
  return storeRevocation(dependencies, revocation);
}

/**
 * Stores a revocation, then records it (`token.revoked`): the last step of every revocation,
 * of credentials here and of client certificates (tls-revoke-certificate.ts).
 */
export async function storeRevocation(
  dependencies: OperationContext & { readonly revocations: Pick<RevocationRepository, 'add'> },
  revocation: Revocation,
): Promise<Revocation> {
  await dependencies.revocations.add(revocation);
  await dependencies.record({
    event: 'token.revoked',
    time: new Date(revocation.revokedAt).toISOString(),
    environment: dependencies.environment,
    details: { ...revocation },
  });
  return revocation;
}

function checkRequest(request: RevokeCredentialRequest): void {
  if (!REVOCATION_KINDS.includes(request.kind)) {
    throw new OperationError('OPERATION_INVALID', 'kind must be "token", "agent" or "user"');
  }
  if (request.subject.length === 0 || request.subject.length > MAX_SUBJECT_LENGTH) {
    throw new OperationError(
      'OPERATION_INVALID',
      `the ${request.kind} to revoke must be named in 1 to ${MAX_SUBJECT_LENGTH} characters`,
    );
  }
  if (request.reason.trim() === '' || request.reason.length > MAX_REASON_LENGTH) {
    throw new OperationError(
      'OPERATION_INVALID',
      `a revocation needs a reason (up to ${MAX_REASON_LENGTH} characters)`,
    );
  }
}
