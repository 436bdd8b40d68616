/**
 * Issues X.509 certificates (EC P-256, ECDSA with SHA-256) for development and tests: a CA,
 * TLS servers and mTLS clients. Keys come from node:crypto; the certificate structure is
 * encoded with @peculiar/asn1-x509, the ASN.1 schema layer beneath @peculiar/x509, which
 * (unlike @peculiar/x509 2.x) loads without a global Reflect metadata polyfill.
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';
const ORGANIZATION = '2.5.4.10';

/** A subject alternative name: a DNS name, an IP address, or a URI (e.g. a SPIFFE id). */
export type SubjectAltName =
  | { readonly kind: 'dns'; readonly value: string }
  | { readonly kind: 'ip'; readonly value: string }
  | { readonly kind: 'uri'; readonly value: string };

export interface CertificateRequest {
  readonly commonName: string;
  readonly organization?: string;
  readonly subjectAltNames?: readonly SubjectAltName[];
  /** `ca` signs certificates; `server` and `client` are TLS leaf certificates. */
  readonly usage: 'ca' | 'server' | 'client';
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The CA that signs it (PEM certificate and private key); absent means self-signed. */
  readonly issuer?: { readonly certificate: string; readonly privateKey: string };
}

export interface IssuedCertificate {
  readonly certificate: string;
  /** PKCS#8 PEM. */
  readonly privateKey: string;
}

export class CertificateIssueError extends Error {
  readonly code = 'WARDEN_CERTIFICATE_ISSUE';
  readonly reason: 'issuer_key_mismatch' | 'issuer_not_ca' | 'invalid_validity';

  constructor(reason: CertificateIssueError['reason'], message: string) {
    super(message);
    this.name = 'CertificateIssueError';
    this.reason = reason;
  }
}

/** Generates a fresh key pair and a certificate for it, signed by `request.issuer` or itself. */
export function issueCertificate(request: CertificateRequest): IssuedCertificate {
  if (!(request.notBefore < request.notAfter)) {
    throw new CertificateIssueError('invalid_validity', 'notBefore must be before notAfter');
  }
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyInfo = AsnConvert.parse(
    keys.publicKey.export({ type: 'spki', format: 'der' }),
    SubjectPublicKeyInfo,
  );
  const subject = buildName(request.commonName, request.organization);
  const issuer = request.issuer === undefined ? undefined : readIssuer(request.issuer);

  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: randomSerialNumber(),
    signature: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    issuer: issuer?.name ?? subject,
    validity: new Validity({
      notBefore: truncateToSeconds(request.notBefore),
      notAfter: truncateToSeconds(request.notAfter),
    }),
    subject,
    subjectPublicKeyInfo: publicKeyInfo,
    extensions: new Extensions(
      buildExtensions(request, keyIdentifierOf(publicKeyInfo), issuer?.keyIdentifier),
    ),
  });
  const signingKey = issuer?.privateKey ?? keys.privateKey;
  // node:crypto signs ECDSA in the DER form X.509 expects (ECDSA-Sig-Value).
  const signature = sign('sha256', new Uint8Array(AsnConvert.serialize(tbs)), signingKey);
  const certificate = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    signatureValue: toArrayBuffer(signature),
  });
  return {
    certificate: toPem('CERTIFICATE', AsnConvert.serialize(certificate)),
    privateKey: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function readIssuer(issuer: NonNullable<CertificateRequest['issuer']>) {
  const certificate = new X509Certificate(issuer.certificate);
  const privateKey = createPrivateKey(issuer.privateKey);
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new CertificateIssueError(
      'issuer_key_mismatch',
      'the CA private key does not belong to the CA certificate',
    );
  }
  if (!certificate.ca) {
    throw new CertificateIssueError('issuer_not_ca', 'the issuer certificate is not a CA');
  }
  const parsed = AsnConvert.parse(certificate.raw, Certificate);
  return {
    // The issuer name is copied as encoded, so chain building matches it byte for byte.
    name: parsed.tbsCertificate.subject,
    keyIdentifier: keyIdentifierOf(parsed.tbsCertificate.subjectPublicKeyInfo),
    privateKey,
  };
}

function buildExtensions(
  request: CertificateRequest,
  subjectKeyId: ArrayBuffer,
  issuerKeyId: ArrayBuffer | undefined,
): Extension[] {
  const isCa = request.usage === 'ca';
  const extensions = [
    encodeExtension(
      id_ce_basicConstraints,
      true,
      isCa ? new BasicConstraints({ cA: true, pathLenConstraint: 0 }) : new BasicConstraints(),
    ),
    encodeExtension(
      id_ce_keyUsage,
      true,
      new KeyUsage(
        isCa ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign : KeyUsageFlags.digitalSignature,
      ),
    ),
    encodeExtension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(subjectKeyId)),
  ];
  if (issuerKeyId !== undefined) {
    extensions.push(
      encodeExtension(
        id_ce_authorityKeyIdentifier,
        false,
        new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(issuerKeyId) }),
      ),
    );
  }
  if (!isCa) {
    const purpose = request.usage === 'server' ? id_kp_serverAuth : id_kp_clientAuth;
    extensions.push(encodeExtension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([purpose])));
  }
  const altNames = request.subjectAltNames ?? [];
  if (altNames.length > 0) {
    extensions.push(
      encodeExtension(
        id_ce_subjectAltName,
        false,
        new SubjectAlternativeName(altNames.map(toGeneralName)),
      ),
    );
  }
  return extensions;
}

function toGeneralName(name: SubjectAltName): GeneralName {
  switch (name.kind) {
    case 'dns':
      return new GeneralName({ dNSName: name.value });
    case 'ip':
      if (isIP(name.value) === 0) throw new TypeError(`"${name.value}" is not an IP address`);
      return new GeneralName({ iPAddress: name.value });
    case 'uri':
      return new GeneralName({ uniformResourceIdentifier: name.value });
  }
}

function encodeExtension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({
    extnID,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

function buildName(commonName: string, organization: string | undefined): Name {
  const attribute = (type: string, value: string) =>
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) }),
    ]);
  const rdns = [attribute(COMMON_NAME, commonName)];
  if (organization !== undefined) rdns.unshift(attribute(ORGANIZATION, organization));
  return new Name(rdns);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (an identifier, not a MAC). */
function keyIdentifierOf(publicKeyInfo: SubjectPublicKeyInfo): ArrayBuffer {
  const digest = createHash('sha1').update(new Uint8Array(publicKeyInfo.subjectPublicKey)).digest();
  return toArrayBuffer(digest);
}

/** 16 random bytes, kept positive and of fixed length as RFC 5280 §4.1.2.2 asks. */
function randomSerialNumber(): ArrayBuffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  return toArrayBuffer(serial);
}

/** X.509 times have whole seconds; dropping milliseconds keeps notBefore from moving later. */
function truncateToSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function toPem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
