/**
 * Revokes one client certificate by serial number and records it (`token.revoked`, kind
 * `certificate`). The listener of every replica refuses the certificate from then on (the
 * store's revocation feed), whichever CA issued it and whatever its CRLs say.
 */
import { OperationError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { Revocation, RevocationRepository } from '../store/types.js';
import { storeRevocation } from './revoke-credential.js';
import { normaliseSerial } from './tls-crl.js';

/** Without an end date, a serial stays revoked this long: past any client certificate's life. */
const DEFAULT_REVOCATION_MS = 10 * 365 * 86_400_000;
const MAX_REASON_LENGTH = 1000;
/** RFC 5280 §4.1.2.2: at most 20 octets. */
const SERIAL = /^(?:[0-9a-f]{2}:?){0,19}[0-9a-f]{1,2}$/i;

export interface RevokeCertificateRequest {
  /** Hex, with or without colons (as `openssl x509 -serial` or a browser prints it). */
  readonly serial: string;
  readonly reason: string;
  /** Who revokes, as the shell knows the operator. */
  readonly by: string;
  /** Until when (ms); the certificate's notAfter is enough. Default: ten years. */
  readonly until?: number;
}

export interface RevokeCertificateDependencies extends OperationContext {
  readonly revocations: Pick<RevocationRepository, 'add'>;
}

/**
 * Stores the revocation, then records it.
 * @throws OperationError (OPERATION_INVALID) for a serial that is not hex of at most 20 octets,
 *   an empty or overlong reason, or an end in the past.
 */
export async function revokeCertificate(
  dependencies: RevokeCertificateDependencies,
  request: RevokeCertificateRequest,
): Promise<Revocation> {
  if (!SERIAL.test(request.serial)) {
    throw new OperationError(
      'OPERATION_INVALID',
      'the serial must be hexadecimal (at most 20 octets), e.g. 4f:1a:… or 4F1A…',
    );
  }
  if (request.reason.trim() === '' || request.reason.length > MAX_REASON_LENGTH) {
    throw new OperationError(
      'OPERATION_INVALID',
      `a revocation needs a reason (up to ${MAX_REASON_LENGTH} characters)`,
    );
  }
  const revokedAt = dependencies.now();
  const expiresAt = request.until ?? revokedAt + DEFAULT_REVOCATION_MS;
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= revokedAt) {
    throw new OperationError('OPERATION_INVALID', 'the revocation must end in the future');
  }
  const revocation: Revocation = {
    kind: 'certificate',
    subject: normaliseSerial(request.serial),
    revokedAt,
    expiresAt,
    reason: request.reason,
    revokedBy: request.by,
  };
  return storeRevocation(dependencies, revocation);
}
