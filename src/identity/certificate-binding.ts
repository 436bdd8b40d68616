/**
 * Certificate-bound access tokens (RFC 8705 §3): a token whose `cnf` claim holds `x5t#S256`
 * may only be used over a TLS connection presenting that very client certificate, so a
 * stolen token is useless without the certificate's private key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { WardenError } from '../domain/errors.js';

export type CertificateBindingFailure = 'certificate_required' | 'certificate_mismatch';

export class CertificateBindingError extends WardenError {
  /** Stable: `certificate_required` (no client certificate) or `certificate_mismatch`. */
  readonly reason: CertificateBindingFailure;

  constructor(reason: CertificateBindingFailure) {
    // RFC 8705 §3: a binding failure is an invalid token; the missing-certificate case gets
    // its own code so the client learns it must present its certificate.
    super(
      reason === 'certificate_required' ? 'WARDEN_CERTIFICATE_REQUIRED' : 'WARDEN_INVALID_TOKEN',
      reason === 'certificate_required'
        ? undefined
        : 'The access token is bound to a different client certificate.',
      { details: { reason } },
    );
    this.name = 'CertificateBindingError';
    this.reason = reason;
  }
}

/**
 * Enforces the binding of a token to a client certificate.
 * @param tokenThumbprint the token's `cnf["x5t#S256"]`, or undefined for an unbound token
 * @param presented the `thumbprint` of the verified client certificate on this connection
 * @throws CertificateBindingError when the token is bound and the certificate is absent or another
 */
export function checkCertificateBinding(
  tokenThumbprint: string | undefined,
  presented: string | undefined,
): void {
  if (tokenThumbprint === undefined) return;
  if (presented === undefined) throw new CertificateBindingError('certificate_required');
  // Comparing fixed-length digests keeps the comparison constant-time whatever the lengths.
  if (!timingSafeEqual(digest(tokenThumbprint), digest(presented))) {
    throw new CertificateBindingError('certificate_mismatch');
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
