/**
 * Who is calling, for every guarded target: an upstream's MCP endpoint and the admin API alike.
 * A caller refused here (no token, a bad one, a certificate-bound token without its certificate)
 * is reported as an authentication failure (`auth.failed`, aggregated per source) under the
 * exchange's reference; a caller let in is named on the exchange, for the record of any later
 * refusal. A refused MCP caller is also told where to get a token (WWW-Authenticate).
 */
import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { requireAccess, type AdminAuthenticator } from '../../admin/admin-access.js';
import { WardenError } from '../../domain/errors.js';
import type { Identity } from '../../domain/identity.js';
import { readHeader } from '../../http/http-headers.js';
import type { RequestAuthenticator } from '../../identity/authenticate-request.js';
import { mayStandSelfSigned } from '../../identity/certificate-client-authentication.js';
import { describeClientCertificate } from '../../identity/client-certificate.js';
import { peerCertificateOf } from '../../identity/tls-peer-check.js';
import type { ExchangeFacts, ExchangeLedger } from '../exchange-ledger.js';
import type { RefusalRecords, RefusedCertificate } from '../refusal-records.js';
import type { ExchangeStage, StageResult } from './exchange.js';

export const authenticateCaller: ExchangeStage = async (
  exchange,
  gateway,
): Promise<StageResult> => {
  const { target, request, facts } = exchange;
  if (target === undefined || (target.kind === 'route' && target.route.access === 'public')) {
    return 'next';
  }
  const upstream = target.kind === 'mcp' ? target.upstream : undefined;
  try {
    facts.identity = await gateway.authenticate(request, upstream);
  } catch (error) {
    // The caller failed to prove who it is; anything else (an issuer unreachable) is a refusal
    // the last stage records as such.
    if (gateway.isCallerRefusal(error)) {
      const reason = reasonOf(error);
      // Refused for the certificate it presented (optional mode): the record says which and why.
      const refused = refusedClientCertificate(request);
      const certificate = refused?.reason === reason ? refused : undefined;
      reportRefused(gateway.refusals, facts, error, reason, certificate);
    }
    if (upstream !== undefined) exchange.challenge = gateway.challenge(error, upstream);
    throw error;
  }
  return 'next';
};

/**
 * What the request carries that proves who is calling, handed to the identity module's
 * authenticator (`upstream` undefined: the gateway's own API).
 */
export function authenticateRequest(
  authenticator: RequestAuthenticator,
  request: IncomingMessage,
  upstream: string | undefined,
  relayedCertificate?: X509Certificate,
): Promise<Identity> {
  return authenticator.authenticate({
    // headersDistinct keeps every Authorization header: Node would silently keep the first.
    authorization: request.headersDistinct['authorization'],
    url: request.url ?? '/',
    upstream,
    // A relayed exchange's certificate was verified by the replica the client reached.
    clientCertificate:
      relayedCertificate === undefined
        ? verifiedClientCertificate(request)
        : describeClientCertificate(relayedCertificate),
    clientCertificateRefusal:
      relayedCertificate === undefined ? refusedClientCertificate(request) : undefined,
    unverifiedCertificate:
      relayedCertificate === undefined ? unverifiedClientCertificate(request) : undefined,
    declaredModel: readDeclaredModel(request),
  });
}

/**
 * The admin API's role check, after the authenticate stage: the caller it named must hold one of
 * the route's roles, and one who does not is reported as an authentication failure
 * (`missing_role`), as a caller refused by the stage itself is.
 */
export function createAdminAccessCheck(options: {
  readonly ledger: ExchangeLedger;
  readonly refusals: Pick<RefusalRecords, 'reportAuthFailure'>;
}): AdminAuthenticator {
  return (request, access) => {
    const facts = options.ledger.of(request);
    const identity = facts?.identity;
    // Only a route the authenticate stage guards may ask; anything else is a wiring mistake.
    if (identity === undefined) return Promise.reject(new WardenError('WARDEN_UNAUTHENTICATED'));
    if (access !== undefined) {
      try {
        requireAccess(identity, access);
      } catch (error) {
        if (facts !== undefined) reportRefused(options.refusals, facts, error, 'missing_role');
        return Promise.reject(error);
      }
    }
    return Promise.resolve(identity);
  };
}

function reportRefused(
  refusals: Pick<RefusalRecords, 'reportAuthFailure'>,
  facts: ExchangeFacts,
  error: unknown,
  reason: string | undefined,
  certificate?: RefusedCertificate,
): void {
  refusals.reportAuthFailure(facts, {
    code: error instanceof WardenError ? error.code : 'unknown',
    reason,
    ...(certificate !== undefined && {
      certificate: { detail: certificate.detail, fingerprint: certificate.fingerprint },
    }),
  });
}

function reasonOf(error: unknown): string | undefined {
  return error instanceof WardenError && typeof error.details?.['reason'] === 'string'
    ? error.details['reason']
    : undefined;
}

/**
 * A client certificate counts only when the listener verified it: chained to a client CA by the
 * TLS layer, within that CA's trust domains, not revoked.
 */
function verifiedClientCertificate(request: IncomingMessage) {
  const verdict = peerCertificateOf(request.socket as Partial<TLSSocket>);
  return verdict.status === 'verified' ? verdict.description : undefined;
}

/** Why a certificate the client presented does not count (optional mode), for the record. */
function refusedClientCertificate(request: IncomingMessage) {
  const verdict = peerCertificateOf(request.socket as Partial<TLSSocket>);
  return verdict.status === 'refused'
    ? { reason: verdict.reason, detail: verdict.detail, fingerprint: verdict.fingerprint }
    : undefined;
}

/** A certificate the client presented that the listener refused: a self-signed one, maybe. */
function unverifiedClientCertificate(request: IncomingMessage): X509Certificate | undefined {
  const socket = request.socket as Partial<TLSSocket>;
  const verdict = peerCertificateOf(socket);
  if (verdict.status !== 'refused') return undefined;
  const certificate =
    typeof socket.getPeerX509Certificate === 'function'
      ? socket.getPeerX509Certificate()
      : undefined;
  return certificate !== undefined && mayStandSelfSigned(verdict.reason, certificate)
    ? certificate
    : undefined;
}

/** The model the client says it is, from X-Agent-Model. */
function readDeclaredModel(request: IncomingMessage): string | undefined {
  const text = readHeader(request, 'x-agent-model');
  // Declared, never trusted: keep it short and printable for the log.
  return text === undefined ? undefined : text.slice(0, 200).replace(/[^\x20-\x7e]/g, '');
}
