/** Node TLS server options for `listen.tls`: the gateway's certificate and client certificates. */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';
import type { TlsConfig } from '../config/config.js';
import { ConfigError } from '../domain/errors.js';

type TlsSetting = 'cert' | 'key' | 'client_ca' | 'client_certificates';

/** A `listen.tls` file that cannot serve: names the file and the setting that points at it. */
export class TlsOptionsError extends ConfigError {
  readonly code = 'WARDEN_TLS_OPTIONS';
  readonly setting: TlsSetting;
  readonly reason: 'unreadable' | 'not_pem' | 'key_mismatch' | 'client_ca_missing';

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

/**
 * Reads the PEM files named by `listen.tls` and returns options for `https.createServer`.
 *
 * With `client_ca`, clients are asked for a certificate and only that CA is trusted for it
 * (not the system roots). `required` ends the handshake of a client without a valid one.
 * `optional` lets every handshake complete, including those with a missing, expired or
 * foreign-CA certificate: the caller MUST check `tlsSocket.authorized` and, when it is false,
 * treat the connection as having no certificate at all: neither its names nor its thumbprint
 * may identify the caller or satisfy a certificate-bound token.
 *
 * @throws TlsOptionsError (a ConfigError) naming the file that is unreadable, not PEM, or
 *   whose key does not belong to the certificate.
 */
export function buildTlsServerOptions(tls: TlsConfig): ServerOptions {
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
  if (tls.clientCa === undefined) {
    if (tls.clientCertificates === 'required') {
      throw new TlsOptionsError(
        tls.cert,
        'client_certificates',
        'client_ca_missing',
        'client_certificates: required needs client_ca, the CA that signs client certificates',
      );
    }
    return { cert, key, minVersion: 'TLSv1.2', requestCert: false, rejectUnauthorized: false };
  }
  const ca = readPemFile(tls.clientCa, 'client_ca');
  parseCertificate(ca, tls.clientCa, 'client_ca');
  return {
    cert,
    key,
    ca,
    minVersion: 'TLSv1.2',
    requestCert: true,
    rejectUnauthorized: tls.clientCertificates === 'required',
  };
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
