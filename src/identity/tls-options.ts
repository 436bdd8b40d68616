/** Node TLS server options for `listen.tls`: the gateway's certificate and client certificates. */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import type { TlsConfig } from '../config/config.js';
import { ConfigError } from '../domain/errors.js';
import { CrlReadError, readCrl, type RevokedSerials } from './tls-crl.js';

type TlsSetting = 'cert' | 'key' | 'client_ca' | 'client_certificates' | 'crl';

/** A `listen.tls` file that cannot serve: names the file and the setting that points at it. */
export class TlsOptionsError extends ConfigError {
  readonly code = 'WARDEN_TLS_OPTIONS';
  readonly setting: TlsSetting;
  readonly reason:
    | 'unreadable'
    | 'not_pem'
    | 'key_mismatch'
    | 'client_ca_missing'
    | 'not_ca'
    | CrlReadError['reason'];

  constructor(
    file: string,
    setting: TlsSetting,
    reason: TlsOptionsError['reason'],
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(file, [`listen.tls.${setting}: ${detail}`]);
    if (options?.cause !== undefined) this.cause = options.cause;
    this.name = 'TlsOptionsError';
    this.setting = setting;
    this.reason = reason;
  }
}

/** One CA trusted to sign client certificates, and what it may vouch for. */
export interface ClientAuthority {
  readonly file: string;
  readonly certificate: X509Certificate;
  /** The SPIFFE trust domains it may issue; undefined: any that no other CA lists. */
  readonly trustDomains: ReadonlySet<string> | undefined;
  /** Serials its CRLs revoke (normalised). */
  readonly revokedSerials: ReadonlySet<string>;
}

/** Everything read from the `listen.tls` files at one moment; replaced whole on reload. */
export interface TlsMaterial {
  /** For `https.createServer` and, on reload, `server.setSecureContext`. */
  readonly serverOptions: ServerOptions;
  readonly authorities: readonly ClientAuthority[];
  /** Trust domains some CA lists: only the CAs listing them may issue SPIFFE ids in them. */
  readonly reservedTrustDomains: ReadonlySet<string>;
  /** CRLs past their nextUpdate (still enforced): the CA should have published a newer one. */
  readonly staleCrls: readonly string[];
  /** SHA-256 fingerprint of the server certificate, for the reload log. */
  readonly serverFingerprint: string;
}

/**
 * Reads the PEM files named by `listen.tls` and returns options for `https.createServer`.
 *
 * With client CAs, clients are asked for a certificate and only those CAs are trusted for it
 * (not the system roots). `required` ends the handshake of a client without a valid one.
 * `optional` lets every handshake complete, including those with a missing, expired or
 * foreign-CA certificate: the caller MUST check `tlsSocket.authorized` and, when it is false,
 * treat the connection as having no certificate at all: neither its names nor its thumbprint
 * may identify the caller or satisfy a certificate-bound token. These options alone do not
 * apply trust domains or revocation: the gateway's listener does (tls-peer-check.ts).
 *
 * @throws TlsOptionsError (a ConfigError) naming the file that is unreadable, not PEM, or
 *   whose key does not belong to the certificate.
 */
export function buildTlsServerOptions(tls: TlsConfig): ServerOptions {
  return loadTlsMaterial(tls).serverOptions;
}

/**
 * Reads and checks every `listen.tls` file: the server certificate and key, the client CAs with
 * their trust domains, and the CRLs (each must be signed by a client CA).
 * @throws TlsOptionsError naming the first file that cannot serve.
 */
export function loadTlsMaterial(tls: TlsConfig, now: number = Date.now()): TlsMaterial {
  const cert = readPemFile(tls.cert, 'cert');
  const key = readPemFile(tls.key, 'key');
  const certificate = parseCertificate(cert, tls.cert, 'cert');
  const privateKey = parsePrivateKey(key, tls.key);
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TlsOptionsError(
      tls.key,
      'key',
      'key_mismatch',
      `this private key does not belong to the certificate in ${tls.cert}`,
    );
  }
  const serverFingerprint = certificate.fingerprint256;
  if (tls.clientCas.length === 0) {
    if (tls.clientCertificates === 'required') {
      throw new TlsOptionsError(
        tls.cert,
        'client_certificates',
        'client_ca_missing',
        'client_certificates: required needs client_ca, the CA that signs client certificates',
      );
    }
    if (tls.crls[0] !== undefined) {
      throw new TlsOptionsError(tls.crls[0], 'crl', 'issuer_unknown', 'a CRL needs client_ca');
    }
    return {
      serverOptions: {
        cert,
        key,
        minVersion: 'TLSv1.2',
        requestCert: false,
        rejectUnauthorized: false,
      },
      authorities: [],
      reservedTrustDomains: new Set(),
      staleCrls: [],
      serverFingerprint,
    };
  }
  const caFiles = tls.clientCas.map((ca) => ({ ca, pem: readPemFile(ca.file, 'client_ca') }));
  const anchors = caFiles.flatMap(({ ca, pem }) =>
    splitPemCertificates(pem, ca.file).map((parsed) => ({ ca, certificate: parsed })),
  );
  const crls = tls.crls.map((file) => ({ file, revoked: readCrlFile(file, anchors) }));
  const authorities = anchors.map(({ ca, certificate: anchor }) => ({
    file: ca.file,
    certificate: anchor,
    trustDomains: ca.trustDomains === undefined ? undefined : new Set(ca.trustDomains),
    revokedSerials: new Set(
      crls.flatMap(({ revoked }) => (revoked.issuer === anchor ? [...revoked.serials] : [])),
    ),
  }));
  return {
    serverOptions: {
      cert,
      key,
      ca: caFiles.map(({ pem }) => pem),
      minVersion: 'TLSv1.2',
      requestCert: true,
      rejectUnauthorized: tls.clientCertificates === 'required',
    },
    authorities,
    reservedTrustDomains: new Set(tls.clientCas.flatMap((ca) => ca.trustDomains ?? [])),
    staleCrls: crls
      .filter(({ revoked }) => revoked.nextUpdate !== undefined && revoked.nextUpdate < now)
      .map(({ file }) => file),
    serverFingerprint,
  };
}

/** The files `loadTlsMaterial` reads, for watching. */
export function tlsFilesOf(tls: TlsConfig): readonly string[] {
  return [tls.cert, tls.key, ...tls.clientCas.map((ca) => ca.file), ...tls.crls];
}

function readCrlFile(
  file: string,
  anchors: readonly { readonly certificate: X509Certificate }[],
): RevokedSerials {
  const bytes = readPemFile(file, 'crl');
  try {
    return readCrl(
      bytes,
      anchors.map(({ certificate }) => certificate),
    );
  } catch (error) {
    if (!(error instanceof CrlReadError)) throw error;
    throw new TlsOptionsError(file, 'crl', error.reason, error.message, { cause: error });
  }
}

/** Every certificate of a PEM bundle; each must be a CA. */
function splitPemCertificates(pem: Buffer, path: string): X509Certificate[] {
  const blocks = pem
    .toString('latin1')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) {
    throw new TlsOptionsError(path, 'client_ca', 'not_pem', 'not a PEM certificate');
  }
  return blocks.map((block) => {
    const certificate = parseCertificate(Buffer.from(block, 'latin1'), path, 'client_ca');
    if (!certificate.ca) {
      throw new TlsOptionsError(
        path,
        'client_ca',
        'not_ca',
        `${certificate.subject.replace(/\n/g, ', ')} is not a CA certificate`,
      );
    }
    return certificate;
  });
}

function readPemFile(path: string, setting: TlsSetting): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new TlsOptionsError(path, setting, 'unreadable', `cannot read this file (${reason})`, {
      cause: error,
    });
  }
}

function parseCertificate(pem: Buffer, path: string, setting: TlsSetting): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new TlsOptionsError(path, setting, 'not_pem', 'not a PEM certificate', {
      cause: error,
    });
  }
}

function parsePrivateKey(pem: Buffer, path: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw new TlsOptionsError(
      path,
      'key',
      'not_pem',
      'not an unencrypted PEM private key (PKCS#8, SEC1 or PKCS#1)',
      { cause: error },
    );
  }
}
