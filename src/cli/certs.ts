/**
 * `warden certs dev`: a development CA, server certificate and agent client certificates.
 * `warden certs revoke`: refuse one client certificate, by serial, on every replica.
 */
import type { Command } from 'commander';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { DEFAULT_DEV_HOSTS, DEFAULT_TRUST_DOMAIN } from '../identity/dev-certificate-defaults.js';
import type { DevCertificateFiles } from '../identity/dev-certificates.js';
import { CONFIG_OPTION, currentUser, runCliAction, UsageError, withSession } from './operator.js';

interface RevokeOptions {
  readonly config: string;
  readonly serial?: string;
  readonly cert?: string;
  readonly reason: string;
}

interface DevCommandOptions {
  readonly out: string;
  readonly agent?: string[];
  readonly host?: string[];
  readonly trustDomain: string;
  readonly days: string;
}

export function registerCertsCommand(program: Command): void {
  const certs = program.command('certs').description('manage TLS certificates');
  registerRevokeCommand(certs);
  certs
    .command('dev')
    .description('write a development CA, a server certificate and agent client certificates')
    .option('-o, --out <dir>', 'directory to write the PEM files to', './.warden/certs')
    .option('-a, --agent <id>', 'an agent to issue a client certificate for (repeatable)', collect)
    .option(
      '--host <name>',
      `a host name or IP the server certificate is for (repeatable; default ${DEFAULT_DEV_HOSTS.join(', ')})`,
      collect,
    )
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the agent ids', DEFAULT_TRUST_DOMAIN)
    .option('--days <n>', 'validity of the server and agent certificates in days', '365')
    .action(async (options: DevCommandOptions) => {
      const validDays = Number(options.days);
      if (!Number.isInteger(validDays) || validDays <= 0) {
        process.stderr.write('warden certs dev: --days must be a positive whole number\n');
        process.exitCode = 2;
        return;
      }
      // The certificate code (ASN.1, X.509) is loaded only by the command that needs it.
      const [{ CertificateIssueError }, { DevCertificateError, writeDevCertificates }] =
        await Promise.all([
          import('../identity/certificate-issuer.js'),
          import('../identity/dev-certificates.js'),
        ]);
      try {
        const files = await writeDevCertificates(options.out, {
          agents: (options.agent ?? []).map((id) => ({ id })),
          ...(options.host === undefined ? {} : { hosts: options.host }),
          trustDomain: options.trustDomain,
          validDays,
        });
        process.stdout.write(describeWritten(files));
      } catch (error) {
        if (error instanceof DevCertificateError || error instanceof CertificateIssueError) {
          process.stderr.write(`warden certs dev: ${error.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
    });
}

function registerRevokeCommand(certs: Command): void {
  certs
    .command('revoke')
    .description(
      'refuse a client certificate from now on (every replica, at the TLS layer), by serial or by its file',
    )
    .option(...CONFIG_OPTION)
    .option('--serial <hex>', 'the serial number, hex (colons allowed)')
    .option('--cert <file>', 'the certificate (PEM): its serial, revoked until it expires')
    .option('--reason <text>', 'why, for the audit trail', 'revoked with warden certs revoke')
    .action((options: RevokeOptions) =>
      runCliAction(async () => {
        const target = chooseCertificate(options);
        const revocation = await withSession(options.config, (session) =>
          session.identity.revokeCertificate({
            ...target,
            reason: options.reason,
            by: `cli:${currentUser()}`,
          }),
        );
        process.stdout.write(
          `revoked certificate ${revocation.subject} until ${new Date(revocation.expiresAt).toISOString()}\n`,
        );
      }),
    );
}

function chooseCertificate(options: RevokeOptions): { serial: string; until?: number } {
  if ((options.serial === undefined) === (options.cert === undefined)) {
    throw new UsageError('name exactly one of --serial or --cert');
  }
  if (options.serial !== undefined) return { serial: options.serial };
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(readFileSync(options.cert ?? ''));
  } catch {
    throw new UsageError(`--cert ${options.cert ?? ''}: not a readable PEM certificate`);
  }
  const until = Date.parse(certificate.validTo);
  // An expired certificate is refused anyway; its revocation still goes on the record.
  return {
    serial: certificate.serialNumber,
    ...(until > Date.now() && { until }),
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function describeWritten(files: DevCertificateFiles): string {
  const show = (path: string) => relative(process.cwd(), path) || path;
  const width = Math.max(6, ...files.agents.map((agent) => agent.id.length));
  const row = (label: string, ...cells: string[]) =>
    `  ${label.padEnd(width)}  ${cells.filter((cell) => cell !== '').join('  ')}`;
  const lines = [
    `Development certificates in ${files.dir} (private keys are mode 0600; not for production):`,
    row('CA', show(files.caCert), show(files.caKey), files.caReused ? '(existing CA reused)' : ''),
    row('server', show(files.serverCert), show(files.serverKey)),
    ...files.agents.map((agent) =>
      row(agent.id, show(agent.cert), show(agent.key), agent.spiffeId),
    ),
    '',
    'In warden.yaml:',
    '',
    'listen:',
    '  tls:',
    `    cert: ${files.serverCert}`,
    `    key: ${files.serverKey}`,
    `    client_ca: ${files.caCert}`,
    '    client_certificates: optional   # or required: refuse clients without a certificate',
  ];
  if (files.agents.length > 0) {
    lines.push(
      'auth:',
      '  mtls: true   # a client certificate alone authenticates the agents below',
      'agents:',
      ...files.agents.flatMap((agent) => [
        `  ${agent.id}:`,
        `    mtls_identity: ${agent.spiffeId}`,
      ]),
    );
    const first = files.agents[0];
    if (first !== undefined) {
      lines.push(
        '',
        'Try it:',
        `  curl --cacert ${show(files.caCert)} --cert ${show(first.cert)} --key ${show(first.key)} https://localhost:8080/healthz`,
      );
    }
  } else {
    lines.push('', 'Add client certificates with --agent <id> (the CA is reused).');
  }
  return `${lines.join('\n')}\n`;
}
