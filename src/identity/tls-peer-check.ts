/**
 * What the listener makes of a client's certificate once the TLS handshake is done: verified
 * (OpenSSL chained it to a client CA, and Warden's own rules hold), absent, or refused with a
 * reason. Warden's rules are those OpenSSL cannot apply: the SPIFFE trust domains each CA may
 * issue, its CRLs, and serials revoked in the store. The verdict is kept per socket; a
 * certificate revoked after the handshake (store or reloaded CRL) stops counting at the
 * connection's next request.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import {
  ClientCertificateError,
  describeClientCertificate,
  type ClientCertificateDescription,
} from './client-certificate.js';
import { normaliseSerial } from './tls-crl.js';
import type { ClientAuthority, TlsMaterial } from './tls-options.js';

/** Why a client certificate does not count; `certificate_missing` only where one is required. */
export type CertificateRefusalReason =
  | 'certificate_missing'
  | 'certificate_untrusted'
  | 'certificate_expired'
  | 'certificate_not_yet_valid'
  | 'certificate_revoked'
  | 'certificate_trust_domain'
  | 'certificate_unreadable'
  | 'certificate_invalid';

export type PeerCertificateVerdict =
  | { readonly status: 'absent' }
  | {
      readonly status: 'verified';
      readonly certificate: X509Certificate;
      /** Its names and thumbprint, read once per connection. */
      readonly description: ClientCertificateDescription;
      /** The client CA file it chains to. */
      readonly authority: string;
    }
  | {
      readonly status: 'refused';
      readonly reason: CertificateRefusalReason;
      /** For the log and the record: OpenSSL's code, the CA, the trust domain or the serial. */
      readonly detail: string;
      /** SHA-256 fingerprint of the presented certificate, when there was one. */
      readonly fingerprint: string | undefined;
    };

export interface PeerCheckContext {
  /** The TLS material in force now (it changes on reload). */
  readonly material: () => TlsMaterial;
  /** A serial (normalised) revoked in the store, if it is. */
  readonly isSerialRevoked: (serial: string) => boolean;
}

/** OpenSSL verify codes (as Node names them) and what they mean to a client. */
const OPENSSL_REASONS: Readonly<Record<string, CertificateRefusalReason>> = {
  CERT_HAS_EXPIRED: 'certificate_expired',
  CERT_NOT_YET_VALID: 'certificate_not_yet_valid',
  CERT_REVOKED: 'certificate_revoked',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate_untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate_untrusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate_untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate_untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate_untrusted',
  CERT_UNTRUSTED: 'certificate_untrusted',
  CERT_SIGNATURE_FAILURE: 'certificate_untrusted',
};

const verdicts = new WeakMap<
  TLSSocket,
  { readonly verdict: PeerCertificateVerdict; readonly context: PeerCheckContext }
>();

/**
 * Decides on the socket's client certificate and keeps the verdict on the socket. Call once,
 * when the handshake is done (`secureConnection`).
 */
export function checkPeerCertificate(
  socket: TLSSocket,
  context: PeerCheckContext,
): PeerCertificateVerdict {
  const verdict = decide(socket, context);
  verdicts.set(socket, { verdict, context });
  return verdict;
}

/**
 * The verdict on a socket's client certificate. A socket the listener did not check (no client
 * CA, or a server built without the listener) falls back to what OpenSSL said alone.
 */
export function peerCertificateOf(socket: Partial<TLSSocket>): PeerCertificateVerdict {
  const kept = verdicts.get(socket as TLSSocket);
  if (kept !== undefined) {
    const { verdict, context } = kept;
    if (verdict.status === 'verified') return revokedSince(verdict.certificate, context) ?? verdict;
    // One no client CA issued may still stand by its key (self-signed): not once revoked since.
    if (verdict.status === 'refused' && verdict.reason === 'certificate_untrusted') {
      const certificate = socket.getPeerX509Certificate?.();
      return (certificate && revokedSince(certificate, context)) ?? verdict;
    }
    return verdict;
  }
  if (socket.authorized !== true || typeof socket.getPeerX509Certificate !== 'function') {
    return { status: 'absent' };
  }
  const certificate = socket.getPeerX509Certificate();
  if (certificate === undefined) return { status: 'absent' };
  const description = describeOrUndefined(certificate);
  return description === undefined
    ? {
        status: 'refused',
        reason: 'certificate_unreadable',
        detail: 'its names cannot be read',
        fingerprint: certificate.fingerprint256,
      }
    : { status: 'verified', certificate, description, authority: '' };
}

function decide(socket: TLSSocket, context: PeerCheckContext): PeerCertificateVerdict {
  const leaf = socket.getPeerX509Certificate();
  if (leaf === undefined) return { status: 'absent' };
  const refuse = (reason: CertificateRefusalReason, detail: string): PeerCertificateVerdict => ({
    status: 'refused',
    reason,
    detail,
    fingerprint: leaf.fingerprint256,
  });
  // A serial revoked in the store is refused whoever issued the certificate: a self-signed one,
  // which OpenSSL does not verify, could otherwise still stand by its registered key.
  const leafSerial = normaliseSerial(leaf.serialNumber);
  if (context.isSerialRevoked(leafSerial)) {
    return refuse('certificate_revoked', `serial ${leafSerial} is revoked`);
  }
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'UNKNOWN');
    return refuse(OPENSSL_REASONS[code] ?? 'certificate_invalid', code);
  }
  const chain = peerChain(socket, leaf);
  const material = context.material();
  const anchored = findAuthority(chain, material.authorities);
  // OpenSSL verified against these very CAs; not finding one means the material changed under
  // the connection (a reload between handshake and check): refuse rather than guess.
  if (anchored === undefined) return refuse('certificate_untrusted', 'no configured client CA');
  const { authority, issued } = anchored;
  for (const certificate of issued) {
    const serial = normaliseSerial(certificate.serialNumber);
    if (authority.revokedSerials.has(serial) && certificate.checkIssued(authority.certificate)) {
      return refuse('certificate_revoked', `serial ${serial} is on the CRL of ${authority.file}`);
    }
  }
  const description = describeOrUndefined(leaf);
  if (description === undefined) {
    return refuse('certificate_unreadable', 'its names cannot be read');
  }
  const trustProblem = checkTrustDomains(description.spiffeIds, authority, material);
  if (trustProblem !== undefined) return refuse('certificate_trust_domain', trustProblem);
  return { status: 'verified', certificate: leaf, description, authority: authority.file };
}

function describeOrUndefined(
  certificate: X509Certificate,
): ClientCertificateDescription | undefined {
  try {
    return describeClientCertificate(certificate);
  } catch (error) {
    if (error instanceof ClientCertificateError) return undefined;
    throw error;
  }
}

/** A certificate revoked after its handshake: by serial, or on a reloaded CRL. */
function revokedSince(
  certificate: X509Certificate,
  context: PeerCheckContext,
): PeerCertificateVerdict | undefined {
  const serial = normaliseSerial(certificate.serialNumber);
  const onCrl = context
    .material()
    .authorities.some(
      (authority) =>
        authority.revokedSerials.has(serial) && certificate.checkIssued(authority.certificate),
    );
  if (!onCrl && !context.isSerialRevoked(serial)) return undefined;
  return {
    status: 'refused',
    reason: 'certificate_revoked',
    detail: `serial ${serial} was revoked after the handshake`,
    fingerprint: certificate.fingerprint256,
  };
}

/**
 * The SPIFFE ids a CA may vouch for: those in its trust domains; for a CA without any, those
 * in domains no CA lists. A CA limited to trust domains vouches for no CN-only certificate.
 */
function checkTrustDomains(
  spiffeIds: readonly string[],
  authority: ClientAuthority,
  material: TlsMaterial,
): string | undefined {
  if (authority.trustDomains !== undefined && spiffeIds.length === 0) {
    return `${authority.file} issues SPIFFE ids only, and this certificate has none`;
  }
  for (const id of spiffeIds) {
    const domain = trustDomainOf(id);
    if (domain === undefined) return `${id} is not a SPIFFE id`;
    const allowed =
      authority.trustDomains === undefined
        ? !material.reservedTrustDomains.has(domain)
        : authority.trustDomains.has(domain);
    if (!allowed) return `${authority.file} may not issue ids in trust domain ${domain}`;
  }
  return undefined;
}

/** The trust domain of `spiffe://<domain>/...`, lowercased (the scheme and host are). */
function trustDomainOf(id: string): string | undefined {
  const match = /^spiffe:\/\/([^/?#]*)/i.exec(id);
  const domain = match?.[1]?.toLowerCase();
  return domain === undefined || domain === '' ? undefined : domain;
}

/**
 * The leaf, then the certificates above it as the TLS layer built the chain, read only as far
 * as they are asked for (a leaf signed by a client CA needs no more).
 */
function* peerChain(socket: TLSSocket, leaf: X509Certificate): Generator<X509Certificate> {
  yield leaf;
  let link = socket.getPeerCertificate(true);
  let last = leaf;
  // Bounded: the chain ends at a self-issued certificate, which Node links to itself.
  for (let depth = 0; depth < 8; depth += 1) {
    const next = link.issuerCertificate as typeof link | undefined;
    if (next === undefined || next === link || next.raw === undefined) return;
    if (next.raw.equals(last.raw)) return;
    last = new (leaf.constructor as typeof X509Certificate)(next.raw);
    yield last;
    link = next;
  }
}

/**
 * The client CA the chain ends at, and the chain's certificates below it. Matched by
 * fingerprint (the CA itself in the chain) or by signature (the CA signed a chain certificate).
 */
function findAuthority(
  chain: Iterable<X509Certificate>,
  authorities: readonly ClientAuthority[],
): { authority: ClientAuthority; issued: X509Certificate[] } | undefined {
  const below: X509Certificate[] = [];
  for (const certificate of chain) {
    for (const authority of authorities) {
      if (certificate.fingerprint256 === authority.certificate.fingerprint256) {
        return { authority, issued: below };
      }
      if (
        certificate.checkIssued(authority.certificate) &&
        certificate.verify(authority.certificate.publicKey)
      ) {
        return { authority, issued: [...below, certificate] };
      }
    }
    below.push(certificate);
  }
  return undefined;
}
