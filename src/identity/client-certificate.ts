/**
 * What a verified client certificate says about its holder, and which registered agent it is.
 * Names are read from the DER (cert.raw), never from Node's `subjectAltName` / `subject`
 * strings: a crafted value such as `spiffe://x/a, URI:spiffe://x/admin` inside one SAN entry
 * must not turn into a second entry.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  Certificate,
  id_ce_subjectAltName,
  SubjectAlternativeName,
  type Name,
} from '@peculiar/asn1-x509';
import type { AgentConfig } from '../config/config.js';
import { WardenError } from '../domain/errors.js';

const COMMON_NAME = '2.5.4.3';

export interface ClientCertificateDescription {
  /** The SPIFFE id, when the certificate carries exactly one spiffe: URI SAN. */
  readonly spiffeId: string | undefined;
  /** Every spiffe: URI SAN; more than one makes the certificate's SPIFFE identity ambiguous. */
  readonly spiffeIds: readonly string[];
  /** The subject CN, when the subject has exactly one. */
  readonly subjectCommonName: string | undefined;
  /** base64url SHA-256 of the DER certificate: the RFC 8705 `x5t#S256` value. */
  readonly thumbprint: string;
  /** Expiry, in milliseconds since the epoch. */
  readonly notAfter: number;
}

/** A certificate whose names cannot be read is refused rather than guessed at. */
export class ClientCertificateError extends WardenError {
  readonly reason = 'certificate_unreadable';

  constructor(options?: { cause?: unknown }) {
    super('WARDEN_UNAUTHENTICATED', 'The client certificate could not be read.', options);
    this.name = 'ClientCertificateError';
  }
}

/**
 * Reads the identity facts of a peer certificate (`tlsSocket.getPeerX509Certificate()`).
 * It does not verify anything: only describe a certificate from a socket whose `authorized`
 * is true. Throws ClientCertificateError when the certificate's names cannot be parsed.
 */
export function describeClientCertificate(cert: X509Certificate): ClientCertificateDescription {
  let parsed: Certificate;
  let uris: string[];
  try {
    parsed = AsnConvert.parse(cert.raw, Certificate);
    uris = readUriAltNames(parsed);
  } catch (error) {
    throw new ClientCertificateError({ cause: error });
  }
  // The scheme is case-insensitive (RFC 3986), so `SPIFFE:` counts towards ambiguity too.
  const spiffeIds = uris.filter((uri) => uri.toLowerCase().startsWith('spiffe:'));
  return {
    spiffeId: spiffeIds.length === 1 ? spiffeIds[0] : undefined,
    spiffeIds,
    subjectCommonName: readSingleCommonName(parsed.tbsCertificate.subject),
    thumbprint: createHash('sha256').update(cert.raw).digest('base64url'),
    notAfter: parsed.tbsCertificate.validity.notAfter.getTime().getTime(),
  };
}

/**
 * The agent whose `mtlsIdentity` equals the certificate's SPIFFE id or, only for a certificate
 * with no SPIFFE id at all, its subject CN. Exact matches only. Ambiguity maps to no agent:
 * several SPIFFE ids, or several agents claiming the same identity.
 */
export function matchAgentByCertificate(
  described: ClientCertificateDescription,
  agents: ReadonlyMap<string, AgentConfig>,
): AgentConfig | undefined {
  if (described.spiffeIds.length > 0) {
    // A certificate that names a SPIFFE id is that id or nothing: falling back to the CN would
    // let any holder of an unregistered SPIFFE certificate pick an agent by its CN.
    const spiffeId = described.spiffeId;
    if (spiffeId === undefined) return undefined;
    return findOnlyAgent(agents, (identity) => identity === spiffeId);
  }
  const commonName = described.subjectCommonName;
  if (commonName === undefined) return undefined;
  // An identity written as a SPIFFE id must come from a URI SAN, never from a CN spelling it.
  return findOnlyAgent(
    agents,
    (identity) => identity === commonName && !identity.toLowerCase().startsWith('spiffe:'),
  );
}

function findOnlyAgent(
  agents: ReadonlyMap<string, AgentConfig>,
  matches: (identity: string) => boolean,
): AgentConfig | undefined {
  let found: AgentConfig | undefined;
  for (const agent of agents.values()) {
    if (agent.mtlsIdentity === undefined || !matches(agent.mtlsIdentity)) continue;
    if (found !== undefined) return undefined;
    found = agent;
  }
  return found;
}

function readUriAltNames(certificate: Certificate): string[] {
  const extensions = (certificate.tbsCertificate.extensions ?? []).filter(
    (extension) => extension.extnID === id_ce_subjectAltName,
  );
  // RFC 5280 allows one instance of an extension; two SAN lists have no single meaning.
  if (extensions.length > 1) throw new Error('more than one subjectAltName extension');
  const [extension] = extensions;
  if (extension === undefined) return [];
  const names = AsnConvert.parse(extension.extnValue, SubjectAlternativeName);
  return names.flatMap((name) =>
    name.uniformResourceIdentifier === undefined ? [] : [name.uniformResourceIdentifier],
  );
}

function readSingleCommonName(subject: Name): string | undefined {
  const values = subject.flatMap((rdn) =>
    rdn.filter((attribute) => attribute.type === COMMON_NAME).map((attribute) => attribute.value),
  );
  if (values.length !== 1) return undefined;
  const value = values[0];
  // anyValue means a non-string encoding: no text to compare an identity with.
  if (value === undefined || value.anyValue !== undefined) return undefined;
  const text = value.toString();
  return text === '' ? undefined : text;
}
