/**
 * The audit records of what Warden refuses: authentication failures as `auth.failed`, and any
 * other refusal no record tells yet as `request.refused`, each under the request id the client
 * was given as its reference.
 *
 * Authentication failures, and refusals of callers not known yet (no identity), are aggregated
 * per source: the first from a source in a window is recorded in full, the rest once as a count,
 * so an anonymous flood cannot flood the audit log. A known caller's refusals are recorded each.
 */
import { identityFields, traceIdOf } from '../audit/call-entry.js';
import type { AuditEntry } from '../domain/audit-record.js';
import {
  createAuthFailureReporter,
  type AuthFailure,
  type ReportedAuthFailure,
} from './auth-failure-reporter.js';
import type { ExchangeFacts } from './exchange-ledger.js';
import type { Logger } from './logger.js';

export interface RefusalRecordsOptions {
  readonly logger: Logger;
  /** This deployment's environment, for records of callers not known. */
  readonly environment: string;
  /** Writes an audit record without waiting for it; a failure raises the log's alert. */
  readonly note: (entry: Omit<AuditEntry, 'time'>) => void;
  readonly windowMs?: number;
  readonly now?: () => number;
}

export interface RefusalRecords {
  /** Stage 1 refused the exchange's caller (or the caller lacks the role a route needs). */
  reportAuthFailure(
    exchange: ExchangeFacts,
    failure: {
      readonly code: string;
      readonly reason: string | undefined;
      /** The client certificate the listener refused, when that is why (optional mode). */
      readonly certificate?: RefusedCertificate | undefined;
    },
  ): void;
  /** The exchange ended with a refusal that no record tells. */
  recordRefusal(
    exchange: ExchangeFacts,
    refusal: { readonly code: string; readonly status: number },
  ): void;
  /** Records the pending summaries (at shutdown, before the audit log closes). */
  flush(): void;
}

/** A presented client certificate that did not count, as its refusal's record names it. */
export interface RefusedCertificate {
  /** What failed: OpenSSL's code, the CA, the trust domain or the serial. */
  readonly detail: string;
  readonly fingerprint: string | undefined;
}

/** What an aggregated report carries into its record besides the reporter's own fields. */
interface ExchangeRefusal extends AuthFailure {
  readonly exchange: ExchangeFacts;
  readonly status: number | undefined;
  readonly certificate?: RefusedCertificate | undefined;
}

export function createRefusalRecords(options: RefusalRecordsOptions): RefusalRecords {
  const { environment, note } = options;
  const aggregate = (event: 'auth.failed' | 'request.refused') =>
    createAuthFailureReporter<ExchangeRefusal>(options.logger, {
      ...(options.windowMs !== undefined && { windowMs: options.windowMs }),
      ...(options.now !== undefined && { now: options.now }),
      event,
      ...(event === 'request.refused' && {
        message: 'request refused',
        summary: 'repeated refused requests',
      }),
      sink: (report) => note(describeReport(event, report, environment)),
    });
  const authFailures = aggregate('auth.failed');
  const anonymousRefusals = aggregate('request.refused');

  return {
    reportAuthFailure(exchange, failure) {
      exchange.told = true;
      authFailures.report({
        ...toReported(exchange, failure.code, failure.reason, undefined),
        certificate: failure.certificate,
      });
    },
    recordRefusal(exchange, refusal) {
      exchange.told = true;
      if (exchange.identity === undefined) {
        anonymousRefusals.report(toReported(exchange, refusal.code, undefined, refusal.status));
        return;
      }
      note(describeRefusal('request.refused', exchange, refusal.code, refusal.status, environment));
    },
    flush() {
      authFailures.flush();
      anonymousRefusals.flush();
    },
  };
}

function toReported(
  exchange: ExchangeFacts,
  code: string,
  reason: string | undefined,
  status: number | undefined,
): ExchangeRefusal {
  return {
    requestId: exchange.requestId,
    source: exchange.source,
    upstream: exchange.upstream,
    code,
    reason,
    exchange,
    status,
  };
}

function describeReport(
  event: 'auth.failed' | 'request.refused',
  report: ReportedAuthFailure<ExchangeRefusal>,
  environment: string,
): Omit<AuditEntry, 'time'> {
  if (report.kind === 'repeated') {
    return {
      event,
      environment,
      details: { source: report.source, repeated: report.repeated, codes: report.codes },
    };
  }
  const { exchange, code, reason, status, certificate } = report.failure;
  const entry = describeRefusal(event, exchange, code, status, environment);
  return {
    ...entry,
    details: {
      ...entry.details,
      ...(reason !== undefined && { reason }),
      ...(certificate !== undefined && {
        certificate: {
          detail: certificate.detail,
          ...(certificate.fingerprint !== undefined && { fingerprint: certificate.fingerprint }),
        },
      }),
    },
  };
}

function describeRefusal(
  event: 'auth.failed' | 'request.refused',
  exchange: ExchangeFacts,
  code: string,
  status: number | undefined,
  environment: string,
): Omit<AuditEntry, 'time'> {
  const traceId = traceIdOf(exchange.traceparent);
  return {
    event,
    requestId: exchange.requestId,
    ...(traceId !== undefined && { traceId }),
    environment,
    ...(exchange.identity !== undefined && identityFields(exchange.identity)),
    ...(exchange.upstream !== undefined && { upstream: exchange.upstream }),
    errorCode: code,
    details: {
      source: exchange.source,
      httpMethod: exchange.method,
      path: exchange.path,
      ...(status !== undefined && { status }),
    },
  };
}
