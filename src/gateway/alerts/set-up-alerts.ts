/**
 * Wires alerts for one gateway: the rules watch the audit log's appended records (composed with
 * the metrics' observer, see app.ts), the circuit breakers and the audit log's own failures,
 * and the sender delivers what they raise. Each delivery is recorded through the audit log.
 */
import type { AlertKind } from '../../config/alerts-schema.js';
import type { Config } from '../../config/config.js';
import type { AuditEntry } from '../../domain/audit-record.js';
import type { CircuitStateChange } from '../../mcp/upstream/circuit-breaker.js';
import type { AuditAppendObserver } from '../audit-log.js';
import type { Logger } from '../logger.js';
import { createAlertRuleMatcher } from './match-alert-rules.js';
import { createAlertSender, type AlertSender, type AlertSenderOptions } from './alert-sender.js';

export interface GatewayAlerts {
  /** Matches each appended audit record against the rules. */
  readonly onAppended: AuditAppendObserver;
  /** The audit log could not record `entry`: the audit_unavailable rules fire. */
  auditUnavailable(error: unknown, entry: Pick<AuditEntry, 'event'>): void;
  /** A circuit changed state: the breaker_open rules fire when it opened. */
  circuitChanged(change: CircuitStateChange): void;
  /** Where delivery outcomes are recorded; set once the audit log exists (it observes us). */
  recordWith(note: (entry: Omit<AuditEntry, 'time'>) => void): void;
  readonly sender: AlertSender;
  close(): Promise<void>;
}

/** Undefined when no rule is configured. */
export function setUpAlerts(
  config: Pick<Config, 'alerts'>,
  logger: Logger,
  options: Pick<AlertSenderOptions, 'env' | 'now' | 'sleep' | 'dispatcher'> = {},
): GatewayAlerts | undefined {
  if (config.alerts.rules.length === 0) return undefined;
  const now = options.now ?? Date.now;
  let record: (entry: Omit<AuditEntry, 'time'>) => void = () => undefined;
  const sender = createAlertSender({
    ...options,
    config: config.alerts,
    record: (entry) => record(entry),
    onError: (error, message) => logger.warn({ event: 'alert.failed', err: error }, message),
  });
  const matcher = createAlertRuleMatcher(config.alerts.rules, now);
  const raiseDirect = (
    kind: AlertKind,
    key: string,
    summary: string,
    facts: Record<string, unknown>,
  ): void => {
    for (const rule of config.alerts.rules) {
      if (rule.kind !== kind) continue;
      sender.send({
        rule: rule.name,
        kind,
        key,
        summary,
        time: new Date(now()).toISOString(),
        facts,
      });
    }
  };
  return {
    sender,
    onAppended(records) {
      for (const record of records) {
        for (const alert of matcher.match(record)) sender.send(alert);
      }
    },
    auditUnavailable(error, entry) {
      // Recording an alert's delivery failed too: raising again would loop while the store is down.
      if (entry.event.startsWith('alert.')) return;
      raiseDirect('audit_unavailable', 'audit', 'the audit log cannot record: calls are refused', {
        event: entry.event,
        // The code only: an operator's channel still gets no SQL or paths.
        code: (error as { code?: unknown } | undefined)?.code ?? 'unknown',
      });
    },
    circuitChanged(change) {
      if (change.to !== 'open') return;
      raiseDirect(
        'breaker_open',
        change.upstream,
        `the circuit to upstream ${change.upstream} opened`,
        {
          upstream: change.upstream,
          from: change.from,
        },
      );
    },
    recordWith(note) {
      record = note;
    },
    close: () => sender.close(),
  };
}
