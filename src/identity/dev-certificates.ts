/**
 * A development PKI in one call: a CA, a server certificate for local hosts, and one client
 * certificate per agent carrying its SPIFFE id. For `warden certs dev` and tests, not production.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { agentsSchema } from '../config/auth-schema.js';
import { DEFAULT_DEV_HOSTS, DEFAULT_TRUST_DOMAIN } from './dev-certificate-defaults.js';
import {
  issueCertificate,
  type IssuedCertificate,
  type SubjectAltName,
} from './certificate-issuer.js';

const DAY_MS = 86_400_000;
/** The CA outlives the leaves it signs, so re-running for a new agent keeps older ones valid. */
const CA_VALID_DAYS = 3650;
/** Certificates start a little in the past so a client with a slow clock still accepts them. */
const BACKDATE_MS = 5 * 60_000;
const SPIFFE_TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SPIFFE_PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export interface DevCertificateOptions {
  /** Host names and IP addresses the server certificate is valid for. */
  readonly hosts?: readonly string[];
  readonly agents: readonly { readonly id: string; readonly spiffeId?: string }[];
  /** SPIFFE trust domain of the default agent ids `spiffe://<trustDomain>/agent/<id>`. */
  readonly trustDomain?: string;
  /** Lifetime of the server and agent certificates. */
  readonly validDays?: number;
  readonly now?: Date;
}

export interface DevAgentCertificate {
  readonly id: string;
  readonly spiffeId: string;
  readonly cert: string;
  readonly key: string;
}

/** Absolute paths of the PEM files written. */
export interface DevCertificateFiles {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  /** True when ca.crt and ca.key already existed in `dir` and signed the new certificates. */
  readonly caReused: boolean;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly agents: readonly DevAgentCertificate[];
}

export class DevCertificateError extends Error {
  readonly code = 'WARDEN_DEV_CERTIFICATE';
  readonly reason:
    | 'invalid_agent_id'
    | 'duplicate_agent_id'
    | 'invalid_spiffe_id'
    | 'invalid_trust_domain'
    | 'invalid_host'
    | 'invalid_validity'
    | 'incomplete_ca';

  constructor(reason: DevCertificateError['reason'], message: string) {
    super(message);
    this.name = 'DevCertificateError';
    this.reason = reason;
  }
}

/**
 * Writes ca.crt/ca.key, server.crt/server.key and agents/<id>.crt/.key under `dir` (keys with
 * mode 0600). An existing CA in `dir` is reused, so agents can be added later without
 * invalidating the certificates already handed out.
 */
export async function writeDevCertificates(
  dir: string,
  options: DevCertificateOptions,
): Promise<DevCertificateFiles> {
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  if (!SPIFFE_TRUST_DOMAIN.test(trustDomain)) {
    throw new DevCertificateError(
      'invalid_trust_domain',
      `"${trustDomain}" is not a SPIFFE trust domain (lowercase letters, digits, ., - and _)`,
    );
  }
  const validDays = options.validDays ?? 365;
  if (!Number.isFinite(validDays) || validDays <= 0) {
    throw new DevCertificateError('invalid_validity', 'validDays must be a positive number');
  }
  const hosts = options.hosts ?? DEFAULT_DEV_HOSTS;
  if (hosts.length === 0) {
    throw new DevCertificateError('invalid_host', 'the server certificate needs at least one host');
  }
  const altNames = hosts.map(toHostAltName);
  const agents = options.agents.map((agent) => ({
    id: checkAgentId(agent.id),
    spiffeId: checkSpiffeId(agent.spiffeId ?? `spiffe://${trustDomain}/agent/${agent.id}`),
  }));
  const ids = new Set(agents.map((agent) => agent.id));
  if (ids.size !== agents.length) {
    throw new DevCertificateError('duplicate_agent_id', 'each agent id may appear only once');
  }

  const now = options.now ?? new Date();
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const notAfter = new Date(now.getTime() + validDays * DAY_MS);
  const root = resolve(dir);
  await mkdir(join(root, 'agents'), { recursive: true, mode: 0o700 });

  const caCert = join(root, 'ca.crt');
  const caKey = join(root, 'ca.key');
  let ca = await readExistingCa(caCert, caKey);
  const caReused = ca !== undefined;
  if (ca === undefined) {
    ca = issueCertificate({
      // A distinct name per CA, so two dev CAs in one trust store are told apart.
      commonName: `Warden development CA ${randomBytes(4).toString('hex')} (${trustDomain})`,
      organization: 'Warden development',
      usage: 'ca',
      notBefore,
      notAfter: new Date(now.getTime() + CA_VALID_DAYS * DAY_MS),
    });
    await writePair(caCert, caKey, ca);
  }

  const serverCert = join(root, 'server.crt');
  const serverKey = join(root, 'server.key');
  await writePair(
    serverCert,
    serverKey,
    issueCertificate({
      commonName: 'Warden development server',
      usage: 'server',
      subjectAltNames: altNames,
      notBefore,
      notAfter,
      issuer: ca,
    }),
  );

  const written: DevAgentCertificate[] = [];
  for (const agent of agents) {
    const cert = join(root, 'agents', `${agent.id}.crt`);
    const key = join(root, 'agents', `${agent.id}.key`);
    await writePair(
      cert,
      key,
      issueCertificate({
        commonName: agent.id,
        usage: 'client',
        subjectAltNames: [{ kind: 'uri', value: agent.spiffeId }],
        notBefore,
        notAfter,
        issuer: ca,
      }),
    );
    written.push({ ...agent, cert, key });
  }

  return { dir: root, caCert, caKey, caReused, serverCert, serverKey, agents: written };
}

async function readExistingCa(
  certPath: string,
  keyPath: string,
): Promise<IssuedCertificate | undefined> {
  const [certificate, privateKeyPem] = await Promise.all([
    readIfPresent(certPath),
    readIfPresent(keyPath),
  ]);
  if (certificate === undefined && privateKeyPem === undefined) return undefined;
  if (certificate === undefined || privateKeyPem === undefined) {
    // Never overwrite half a CA: the missing half may be somewhere the operator meant to keep.
    throw new DevCertificateError(
      'incomplete_ca',
      `found only one of ${certPath} and ${keyPath}; remove it or restore the other`,
    );
  }
  return { certificate, privateKey: privateKeyPem };
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function writePair(certPath: string, keyPath: string, issued: IssuedCertificate) {
  // Removing first matters: writeFile's mode applies only when it creates the file, so an
  // older, wider-permission key file would otherwise keep its mode.
  await rm(keyPath, { force: true });
  await writeFile(keyPath, issued.privateKey, { mode: 0o600, flag: 'wx' });
  await writeFile(certPath, issued.certificate, { mode: 0o644 });
}

function toHostAltName(host: string): SubjectAltName {
  if (isIP(host) !== 0) return { kind: 'ip', value: host };
  const labels = host.startsWith('*.') ? host.slice(2).split('.') : host.split('.');
  if (!labels.every((label) => DNS_LABEL.test(label))) {
    throw new DevCertificateError('invalid_host', `"${host}" is not a host name or IP address`);
  }
  return { kind: 'dns', value: host.toLowerCase() };
}

/** Agent ids follow the warden.yaml rule, which also keeps them safe as file names. */
function checkAgentId(id: string): string {
  if (!agentsSchema.safeParse({ [id]: {} }).success) {
    throw new DevCertificateError(
      'invalid_agent_id',
      `"${id}" is not a valid agent id (lowercase letters, digits, ., - and _, starting with a letter)`,
    );
  }
  return id;
}

/** The SPIFFE ID syntax: spiffe://<trust domain>/<path segments of [A-Za-z0-9._-]>. */
function checkSpiffeId(spiffeId: string): string {
  const match = /^spiffe:\/\/([^/]+)(\/.*)?$/.exec(spiffeId);
  const segments = match?.[2]?.slice(1).split('/') ?? [];
  const valid =
    match !== null &&
    spiffeId.length <= 2048 &&
    SPIFFE_TRUST_DOMAIN.test(match[1] ?? '') &&
    segments.length > 0 &&
    segments.every(
      (segment) => SPIFFE_PATH_SEGMENT.test(segment) && segment !== '.' && segment !== '..',
    );
  if (!valid) {
    throw new DevCertificateError(
      'invalid_spiffe_id',
      `"${spiffeId}" is not a SPIFFE id (spiffe://<trust domain>/<path>)`,
    );
  }
  return spiffeId;
}
