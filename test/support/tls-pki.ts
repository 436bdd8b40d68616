/**
 * Certificates for the TLS listener tests: CAs, server and client certificates from the repo's
 * own issuer (certificate-issuer.ts), CRLs signed by a CA, and a client that reports what the
 * server presented and whether the connection survived.
 */
import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  Certificate,
  CertificateList,
  RevokedCertificate,
  TBSCertList,
  Time,
  Version,
} from '@peculiar/asn1-x509';
import { issueCertificate, type IssuedCertificate } from '../../src/identity/certificate-issuer.js';

const DAY_MS = 86_400_000;
const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

export interface Pair {
  readonly cert: string;
  readonly key: string;
}

export function issueCa(commonName: string): IssuedCertificate {
  return issueCertificate({
    commonName,
    usage: 'ca',
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 30 * DAY_MS),
  });
}

export function issueServer(ca: IssuedCertificate, commonName = 'warden'): Pair {
  const issued = issueCertificate({
    commonName,
    usage: 'server',
    subjectAltNames: [
      { kind: 'dns', value: 'localhost' },
      { kind: 'ip', value: '127.0.0.1' },
    ],
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 30 * DAY_MS),
    issuer: { certificate: ca.certificate, privateKey: ca.privateKey },
  });
  return { cert: issued.certificate, key: issued.privateKey };
}

export function issueClient(
  ca: IssuedCertificate,
  options: {
    readonly commonName?: string;
    readonly uris?: readonly string[];
    readonly notBefore?: Date;
    readonly notAfter?: Date;
  } = {},
): Pair {
  const issued = issueCertificate({
    commonName: options.commonName ?? 'client',
    usage: 'client',
    subjectAltNames: (options.uris ?? []).map((value) => ({ kind: 'uri', value })),
    notBefore: options.notBefore ?? new Date(Date.now() - DAY_MS),
    notAfter: options.notAfter ?? new Date(Date.now() + DAY_MS),
    issuer: { certificate: ca.certificate, privateKey: ca.privateKey },
  });
  return { cert: issued.certificate, key: issued.privateKey };
}

/** The certificate's serial as hex, as `warden certs revoke --serial` takes it. */
export function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber;
}

/** A DER CRL signed by `ca` revoking `serials` (hex), valid from yesterday to next week. */
export function issueCrl(ca: IssuedCertificate, serials: readonly string[]): Buffer {
  const caCertificate = AsnConvert.parse(new X509Certificate(ca.certificate).raw, Certificate);
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    issuer: caCertificate.tbsCertificate.subject,
    thisUpdate: new Time(new Date(Math.floor(Date.now() / 1000) * 1000 - DAY_MS)),
    nextUpdate: new Time(new Date(Math.floor(Date.now() / 1000) * 1000 + 7 * DAY_MS)),
    ...(serials.length > 0 && {
      revokedCertificates: serials.map(
        (serial) =>
          new RevokedCertificate({
            userCertificate: toArrayBuffer(Buffer.from(evenHex(serial), 'hex')),
            revocationDate: new Time(new Date(Math.floor(Date.now() / 1000) * 1000)),
          }),
      ),
    }),
  });
  const signed = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign('sha256', signed, createPrivateKey(ca.privateKey));
  const crl = new CertificateList({
    tbsCertList: tbs,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    signature: toArrayBuffer(signature),
  });
  return Buffer.from(AsnConvert.serialize(crl));
}

export function pemCrl(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN X509 CRL-----\n${lines.join('\n')}\n-----END X509 CRL-----\n`;
}

export function writeFiles(dir: string, files: Readonly<Record<string, string | Buffer>>): void {
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
}

export interface Handshake {
  /** SHA-256 fingerprint of the certificate the server presented. */
  readonly serverFingerprint: string;
  /** The HTTP status of GET `path`, or the error that ended the connection. */
  readonly status: number | undefined;
  readonly error: string | undefined;
  readonly body: string;
}

/**
 * Connects over TLS 1.3 or 1.2 with an optional client certificate, sends one GET, and reports
 * what happened. Trusts `serverCa` only.
 */
export async function tryRequest(options: {
  readonly port: number;
  readonly serverCa: string;
  readonly client?: Pair;
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** The loopback address to connect from (refusals are counted per source). */
  readonly localAddress?: string;
}): Promise<Handshake> {
  const socket = await openSocket(options);
  const serverFingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
  const result = await sendGet(socket, options.path ?? '/healthz', options.headers ?? {});
  socket.destroy();
  return { serverFingerprint, ...result };
}

export function openSocket(options: {
  readonly port: number;
  readonly serverCa: string;
  readonly client?: Pair;
  readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  readonly localAddress?: string;
}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: options.port,
      servername: 'localhost',
      ca: options.serverCa,
      ...(options.client && { cert: options.client.cert, key: options.client.key }),
      ...(options.maxVersion && { maxVersion: options.maxVersion }),
      ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
    });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** One HTTP/1.1 GET on an open TLS socket; the connection's end counts as an error. */
export function sendGet(
  socket: TLSSocket,
  path: string,
  headers: Readonly<Record<string, string>>,
): Promise<{ status: number | undefined; error: string | undefined; body: string }> {
  return new Promise((resolve) => {
    let received = '';
    const timer = setTimeout(() => finish('timeout'), 10_000);
    const finish = (error: string | undefined): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
      const bodyStart = received.indexOf('\r\n\r\n');
      resolve({
        status: match?.[1] === undefined ? undefined : Number(match[1]),
        error: match === null ? (error ?? 'closed') : undefined,
        body: bodyStart < 0 ? '' : received.slice(bodyStart + 4),
      });
    };
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      const head = received.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(received)?.[1];
      if (head >= 0 && length !== undefined && received.length >= head + 4 + Number(length)) {
        finish(undefined);
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.once('close', () => finish('closed'));
    const extra = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\n${extra}\r\n`);
  });
}

function evenHex(hex: string): string {
  const clean = hex.replace(/[^0-9a-fA-F]/g, '');
  return clean.length % 2 === 0 ? clean : `0${clean}`;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * An MCP initialize through node:https (`options` carry the certificates, an agent, a source
 * address): the status, the body, and whether it went over a connection already open.
 */
export function initializeOver(
  url: string,
  options: RequestOptions,
): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpsRequest(
      url,
      {
        ...options,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body, reused: outgoing.reusedSocket }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'tls-test', version: '1' },
        },
      }),
    );
  });
}
