/**
 * The TLS side of the listener: the certificate material (reloaded from its files), the check of
 * each client certificate once the handshake is done, and the record of refused handshakes.
 *
 * With client CAs, OpenSSL is told to let every handshake complete (`rejectUnauthorized: false`)
 * and Warden refuses here instead, where it can say why: in `required` mode a connection whose
 * certificate is missing, untrusted, expired, revoked (CRL or store) or outside its CA's trust
 * domains is closed before any request is read, and counted per source (`auth.failed` with
 * `layer: tls`, aggregated per minute). In `optional` mode the connection stays open without a
 * certificate, and its requests carry the refusal's reason (peerCertificateOf).
 */
import type { Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { TlsConfig } from '../config/config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import { checkPeerCertificate, type CertificateRefusalReason } from '../identity/tls-peer-check.js';
import { loadTlsMaterial, type TlsMaterial } from '../identity/tls-options.js';
import {
  watchTlsFiles,
  type TlsReloader,
  type TlsReloadOutcome,
  type TlsReloadTrigger,
} from '../identity/tls-reloader.js';
import { createAuthFailureReporter, type AuthFailure } from './auth-failure-reporter.js';
import type { Logger } from './logger.js';

export interface TlsListenerOptions {
  readonly tls: TlsConfig;
  readonly environment: string;
  readonly logger: Logger;
  /** Writes an audit record. */
  readonly note: (entry: Omit<AuditEntry, 'time'>) => void;
  /** A client certificate serial (normalised hex) revoked in the store. */
  readonly isSerialRevoked: (serial: string) => boolean;
  /** Reload timing (tests). */
  readonly reload?: { readonly debounceMs?: number; readonly pollMs?: number };
  /** The refused-handshake summary window (tests); default one minute. */
  readonly windowMs?: number;
}

export interface TlsListener {
  /** Options for https.createServer. */
  readonly serverOptions: TlsMaterial['serverOptions'];
  /** For the listener's `secureConnection`, before the HTTP layer sees the socket. */
  onSecureConnection(socket: TLSSocket): void;
  /** For the listener's `tlsClientError`: a handshake OpenSSL itself ended. */
  onClientError(error: Error, socket: TLSSocket): void;
  /** Starts following the files, once the server exists. */
  attach(server: Server): void;
  /** Re-reads the files now (SIGHUP). */
  reload(): TlsReloadOutcome;
  /** Stops following the files and records pending summaries. */
  close(): void;
}

interface HandshakeRefusal extends AuthFailure {
  readonly detail: string;
  readonly fingerprint: string | undefined;
}

/**
 * Reads the TLS files (throwing TlsOptionsError, a ConfigError, when one cannot serve) and
 * returns what the listener needs.
 */
export function setUpTlsListener(options: TlsListenerOptions): TlsListener {
  const { tls, logger, note, environment } = options;
  const initial = loadTlsMaterial(tls);
  let material = initial;
  let reloader: TlsReloader | undefined;
  const checksCertificates = tls.clientCas.length > 0;
  const required = tls.clientCertificates === 'required';

  const refusals = createAuthFailureReporter<HandshakeRefusal>(logger, {
    ...(options.windowMs !== undefined && { windowMs: options.windowMs }),
    message: 'TLS handshake refused',
    summary: 'repeated refused TLS handshakes',
    sink: (report) =>
      note({
        event: 'auth.failed',
        environment,
        details:
          report.kind === 'failure'
            ? {
                layer: 'tls',
                source: report.failure.source,
                reason: report.failure.reason,
                detail: report.failure.detail,
                ...(report.failure.fingerprint !== undefined && {
                  fingerprint: report.failure.fingerprint,
                }),
              }
            : {
                layer: 'tls',
                source: report.source,
                repeated: report.repeated,
                reasons: report.codes,
              },
      }),
  });
  const refuseHandshake = (
    socket: TLSSocket,
    reason: CertificateRefusalReason | 'handshake_failed',
    detail: string,
    fingerprint: string | undefined,
  ): void => {
    refusals.report({
      requestId: '',
      source: socket.remoteAddress ?? 'unknown',
      upstream: undefined,
      // Summaries count by code: the reason is what tells refusals apart here.
      code: reason,
      reason,
      detail,
      fingerprint,
    });
  };

  if (material.staleCrls.length > 0) warnStale(logger, material.staleCrls);

  return {
    serverOptions: checksCertificates
      ? { ...initial.serverOptions, rejectUnauthorized: false }
      : initial.serverOptions,
    onSecureConnection(socket) {
      if (!checksCertificates) return;
      const verdict = checkPeerCertificate(socket, {
        material: () => material,
        isSerialRevoked: options.isSerialRevoked,
      });
      if (!required || verdict.status === 'verified') return;
      if (verdict.status === 'absent') {
        refuseHandshake(socket, 'certificate_missing', 'no client certificate', undefined);
      } else {
        refuseHandshake(socket, verdict.reason, verdict.detail, verdict.fingerprint);
      }
      socket.destroy();
    },
    onClientError(error, socket) {
      // A client that left before finishing (a port probe, a load balancer's check) is noise.
      const code = (error as NodeJS.ErrnoException).code ?? 'ERR_TLS';
      if (code === 'ECONNRESET' || code === 'EPIPE') return;
      refuseHandshake(socket, 'handshake_failed', code, undefined);
    },
    attach(server) {
      reloader = watchTlsFiles({
        tls,
        initial,
        apply: (next) => {
          server.setSecureContext({ ...next.serverOptions });
          material = next;
        },
        onReload: (outcome, trigger) => logReload(logger, outcome, trigger),
        ...options.reload,
      });
    },
    reload() {
      if (reloader === undefined) return { ok: false, problems: ['the listener is not running'] };
      return reloader.reload('signal');
    },
    close() {
      reloader?.close();
      refusals.flush();
    },
  };
}

function logReload(logger: Logger, outcome: TlsReloadOutcome, trigger: TlsReloadTrigger): void {
  if (!outcome.ok) {
    logger.error(
      { event: 'tls.reload_failed', trigger, problems: outcome.problems },
      'TLS files not reloaded; the running certificate, key, CAs and CRLs stay in force',
    );
    return;
  }
  logger.info(
    { event: 'tls.reloaded', trigger, serverFingerprint: outcome.serverFingerprint },
    'TLS files reloaded',
  );
  if (outcome.staleCrls.length > 0) warnStale(logger, outcome.staleCrls);
}

function warnStale(logger: Logger, files: readonly string[]): void {
  logger.warn(
    { event: 'tls.crl_stale', files },
    'a CRL is past its nextUpdate; it is still enforced, but its CA should publish a newer one',
  );
}
