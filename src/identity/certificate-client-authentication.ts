/**
 * RFC 8705 §2 client authentication at the built-in token endpoint: the client's TLS certificate
 * is its credential. `tls_client_auth` needs a certificate the listener verified against the
 * client CA whose identity (SPIFFE id or subject CN) is the agent's `mtls_identity`;
 * `self_signed_tls_client_auth` needs a certificate, from any issuer, whose public key is one of
 * the agent's registered `jwks`. The TLS handshake has already proved the client holds the key.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { AgentConfig } from '../config/config.js';
import type { ClientAuthentication } from './client-authentication.js';
import {
  describeClientCertificate,
  matchAgentByCertificate,
  type ClientCertificateDescription,
} from './client-certificate.js';
import { peerCertificateOf } from './tls-peer-check.js';

/** The certificate a client presented on this connection, verified or not. */
export interface PresentedCertificate {
  readonly certificate: X509Certificate;
  readonly description: ClientCertificateDescription;
  /**
   * Whether the listener verified it: chained to a client CA, within its trust domains, not
   * revoked (tls-peer-check.ts).
   */
  readonly verified: boolean;
  /** Why the listener did not verify it (e.g. `certificate_expired`), when it did not. */
  readonly refusal: string | undefined;
  /**
   * Whether it may count by its key alone (`self_signed_tls_client_auth`): verified, or refused
   * only for want of a CA, within its validity period (see mayStandSelfSigned).
   */
  readonly maySelfSign: boolean;
}

/**
 * The certificate on the request's connection, if the client sent one. An unverified one (the
 * listener in `optional` mode) is returned too, so it is refused on the record rather than
 * ignored; only a registered key makes one that `maySelfSign` count.
 * Undefined also for a certificate whose names cannot be read.
 */
export function readPresentedCertificate(socket: unknown): PresentedCertificate | undefined {
  const tls = socket as Partial<TLSSocket>;
  const verdict = peerCertificateOf(tls);
  const certificate =
    verdict.status === 'verified'
      ? verdict.certificate
      : typeof tls.getPeerX509Certificate === 'function'
        ? tls.getPeerX509Certificate()
        : undefined;
  if (certificate === undefined) return undefined;
  let description: ClientCertificateDescription;
  try {
    description = describeClientCertificate(certificate);
  } catch {
    return undefined;
  }
  return {
    certificate,
    description,
    verified: verdict.status === 'verified',
    refusal: verdict.status === 'refused' ? verdict.reason : undefined,
    // A refused certificate may still stand as a self-signed one, but never one refused for
    // being revoked, out of its validity period or outside its CA's trust domains.
    maySelfSign: verdict.status !== 'refused' || mayStandSelfSigned(verdict.reason, certificate),
  };
}

/**
 * Whether a certificate the listener refused may still count by its key alone
 * (`self_signed_tls_client_auth`, RFC 8705 §2.2): only when the refusal was that no configured CA
 * issued it, and only within its own validity period. A certificate refused as revoked (CRL or
 * `warden certs revoke`), expired, or for its trust domain is refused here too.
 */
export function mayStandSelfSigned(
  refusal: string,
  certificate: X509Certificate,
  now: number = Date.now(),
): boolean {
  if (refusal !== 'certificate_untrusted') return false;
  return Date.parse(certificate.validFrom) <= now && now <= Date.parse(certificate.validTo);
}

/**
 * Authenticates `agent` (the client_id sent) by the presented certificate. A verified certificate
 * naming the agent is `tls_client_auth`; otherwise a certificate holding one of the agent's keys
 * is `self_signed_tls_client_auth`. A verified certificate of another agent is refused, never
 * matched against this agent's keys first: one certificate stands for one identity.
 */
export async function authenticateClientByCertificate(
  agent: AgentConfig,
  presented: PresentedCertificate,
  agents: ReadonlyMap<string, AgentConfig>,
): Promise<ClientAuthentication> {
  const refuse = (
    reason: Extract<ClientAuthentication, { outcome: 'refused' }>['reason'],
    method: 'tls_client_auth' | 'self_signed_tls_client_auth',
  ): ClientAuthentication => ({ outcome: 'refused', reason, method, clientId: agent.id });

  if (agent.mtlsIdentity === undefined && agent.jwks === undefined)
    return refuse('method_not_registered', 'tls_client_auth');
  const owner = presented.verified
    ? matchAgentByCertificate(presented.description, agents)
    : undefined;
  if (owner !== undefined) {
    return owner.id === agent.id
      ? { outcome: 'authenticated', agent, method: 'tls_client_auth' }
      : refuse('certificate_mismatch', 'tls_client_auth');
  }
  if (!presented.maySelfSign)
    return refuse(
      'certificate_untrusted',
      agent.jwks === undefined ? 'tls_client_auth' : 'self_signed_tls_client_auth',
    );
  if (agent.jwks !== undefined && (await holdsRegisteredKey(presented.certificate, agent.jwks)))
    return { outcome: 'authenticated', agent, method: 'self_signed_tls_client_auth' };
  if (agent.jwks === undefined && !presented.verified)
    return refuse('certificate_untrusted', 'tls_client_auth');
  return refuse(
    'certificate_mismatch',
    agent.jwks === undefined ? 'tls_client_auth' : 'self_signed_tls_client_auth',
  );
}

/**
 * The thumbprint a certificate the listener did not verify lends a bound token's check: only
 * when its key is one the agent registered, as `self_signed_tls_client_auth` bound it (RFC 8705
 * §3: a self-signed certificate's chain is not validated, its key is what counts).
 */
export async function selfSignedThumbprint(
  agent: AgentConfig,
  certificate: X509Certificate | undefined,
): Promise<string | undefined> {
  if (certificate === undefined || agent.jwks === undefined) return undefined;
  if (!(await holdsRegisteredKey(certificate, agent.jwks))) return undefined;
  return createHash('sha256').update(certificate.raw).digest('base64url');
}

/** Whether the certificate's public key is one of the keys (by RFC 7638 thumbprint). */
async function holdsRegisteredKey(
  certificate: X509Certificate,
  jwks: NonNullable<AgentConfig['jwks']>,
): Promise<boolean> {
  let presented: string;
  try {
    presented = await calculateJwkThumbprint(
      certificate.publicKey.export({ format: 'jwk' }) as JWK,
    );
  } catch {
    // A key type JWK cannot express (DSA, say) cannot be a registered one.
    return false;
  }
  for (const key of jwks.keys) {
    // A key registered for encryption only does not sign TLS handshakes.
    if (key['use'] === 'enc') continue;
    try {
      if ((await calculateJwkThumbprint(key as JWK)) === presented) return true;
    } catch {
      // A key of a type without a thumbprint (or malformed) matches nothing.
    }
  }
  return false;
}
