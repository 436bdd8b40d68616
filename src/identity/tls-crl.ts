/**
 * Certificate revocation lists (RFC 5280 §5) for client certificates: read from PEM or DER,
 * matched to the client CA that signed them (issuer name and signature), and reduced to the
 * serial numbers they revoke. Checked by Warden itself rather than by OpenSSL's `crl` option,
 * which turns on CRL checking for every CA in every chain: with several client CAs, one CRL
 * would lock out every certificate of the CAs that publish none.
 */
import { verify, type X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, CertificateList } from '@peculiar/asn1-x509';
import { LocalError } from '../domain/errors.js';

/** The serials one client CA's CRL revokes. */
export interface RevokedSerials {
  /** The CA (one of the configured client CAs) that signed the CRL. */
  readonly issuer: X509Certificate;
  /** Normalised serials (see normaliseSerial). */
  readonly serials: ReadonlySet<string>;
  /** When the CA promised a newer list, in ms; undefined when the CRL names no nextUpdate. */
  readonly nextUpdate: number | undefined;
}

/** Why a CRL file cannot be used; the caller names the file. */
export class CrlReadError extends LocalError {
  readonly reason: 'not_crl' | 'issuer_unknown' | 'bad_signature' | 'unsupported_algorithm';

  constructor(reason: CrlReadError['reason'], message: string, options?: { cause?: unknown }) {
    super('WARDEN_TLS_CRL', message, options);
    this.name = 'CrlReadError';
    this.reason = reason;
  }
}

/** The hash each signature algorithm OID uses; `null` for algorithms without one (EdDSA). */
const SIGNATURE_HASHES: ReadonlyMap<string, string | null> = new Map([
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.3.101.112', null],
]);

/** A serial as hex: lowercase, no separators, no leading zeros. */
export function normaliseSerial(serial: string): string {
  const hex = serial.replace(/[:\s]/g, '').toLowerCase().replace(/^0+/, '');
  return hex === '' ? '0' : hex;
}

/**
 * Reads a CRL and checks it was signed by one of `authorities`.
 * @throws CrlReadError when it is not a CRL, no authority issued it, or its signature fails.
 */
export function readCrl(bytes: Buffer, authorities: readonly X509Certificate[]): RevokedSerials {
  let crl: CertificateList;
  try {
    crl = AsnConvert.parse(toDer(bytes), CertificateList);
  } catch (error) {
    throw new CrlReadError('not_crl', 'not a PEM or DER certificate revocation list', {
      cause: error,
    });
  }
  const tbs = crl.tbsCertList;
  const signed = crl.tbsCertListRaw;
  if (signed === undefined) throw new CrlReadError('not_crl', 'the CRL has no signed part');
  const hash = SIGNATURE_HASHES.get(crl.signatureAlgorithm.algorithm);
  if (hash === undefined) {
    throw new CrlReadError(
      'unsupported_algorithm',
      `signature algorithm ${crl.signatureAlgorithm.algorithm} is not supported`,
    );
  }
  const issuerName = Buffer.from(AsnConvert.serialize(tbs.issuer));
  const named = authorities.filter((authority) =>
    issuerName.equals(
      Buffer.from(
        AsnConvert.serialize(AsnConvert.parse(authority.raw, Certificate).tbsCertificate.subject),
      ),
    ),
  );
  if (named.length === 0) {
    throw new CrlReadError('issuer_unknown', 'no client CA has the issuer name this CRL names');
  }
  const issuer = named.find((authority) =>
    verify(hash, new Uint8Array(signed), authority.publicKey, new Uint8Array(crl.signature)),
  );
  if (issuer === undefined) {
    throw new CrlReadError('bad_signature', 'the CRL is not signed by the client CA it names');
  }
  const serials = new Set(
    (tbs.revokedCertificates ?? []).map((entry) =>
      normaliseSerial(Buffer.from(entry.userCertificate).toString('hex')),
    ),
  );
  return { issuer, serials, nextUpdate: tbs.nextUpdate?.getTime().getTime() };
}

function toDer(bytes: Buffer): ArrayBuffer {
  const text = bytes.toString('latin1');
  const pem = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(text);
  const der = pem?.[1] === undefined ? bytes : Buffer.from(pem[1].replace(/\s/g, ''), 'base64');
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
}
