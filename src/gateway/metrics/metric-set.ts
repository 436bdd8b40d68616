/**
 * The counters and histograms Warden exposes (the gauges read at scrape are in
 * scrape-gauges.ts), on one registry per gateway (no global registry: two gateways in
 * one process, as in tests, keep their own counts). The names are the contract the Grafana
 * dashboard (deploy/grafana/warden-dashboard.json) and alert rules are written against.
 */
import { Counter, Histogram, Registry } from 'prom-client';

/** Seconds; a decision is in-process policy evaluation, usually well under a millisecond. */
const DECISION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];
/** Seconds; a call includes the upstream's own work. */
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds; one append is one store transaction (one sync) for a whole batch. */
const APPEND_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

export interface MetricSet {
  readonly registry: Registry;
  readonly toolCalls: Counter<'upstream' | 'tool' | 'effect'>;
  readonly decisionSeconds: Histogram<'effect'>;
  readonly callSeconds: Histogram<'upstream' | 'outcome'>;
  readonly approvalsDecided: Counter<'outcome'>;
  readonly approvalsExpired: Counter;
  readonly authFailures: Counter<'code' | 'reason'>;
  readonly breakglassUsed: Counter;
  readonly quotaRefusals: Counter<'upstream' | 'tool'>;
  readonly auditRecords: Counter<'event'>;
  readonly auditAppendSeconds: Histogram;
}

export function createMetricSet(): MetricSet {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    toolCalls: new Counter({
      name: 'warden_tool_calls_total',
      help: 'Tool calls decided, by upstream, tool and effect (allow, deny, monitor, approval, error).',
      labelNames: ['upstream', 'tool', 'effect'],
      registers,
    }),
    decisionSeconds: new Histogram({
      name: 'warden_decision_duration_seconds',
      help: 'Time the policy stage took to decide a tool call, by effect.',
      labelNames: ['effect'],
      buckets: DECISION_BUCKETS,
      registers,
    }),
    callSeconds: new Histogram({
      name: 'warden_call_duration_seconds',
      help: 'Time from the recorded decision to the end of an allowed tool call, by upstream and outcome (result, tool_error, error).',
      labelNames: ['upstream', 'outcome'],
      buckets: CALL_BUCKETS,
      registers,
    }),
    approvalsDecided: new Counter({
      name: 'warden_approvals_decided_total',
      help: 'Approval requests decided by approvers, by outcome (granted, refused).',
      labelNames: ['outcome'],
      registers,
    }),
    approvalsExpired: new Counter({
      name: 'warden_approvals_expired_total',
      help: 'Approval requests that expired undecided.',
      registers,
    }),
    authFailures: new Counter({
      name: 'warden_auth_failures_total',
      help: 'Refused authentications, by error code and reason, as the audit log records them (repeats from one source arrive with their summary).',
      labelNames: ['code', 'reason'],
      registers,
    }),
    breakglassUsed: new Counter({
      name: 'warden_breakglass_used_total',
      help: 'Calls let through by a break-glass grant.',
      registers,
    }),
    quotaRefusals: new Counter({
      name: 'warden_quota_refusals_total',
      help: 'Tool calls refused because a quota (rate or budget) had no room left, by upstream and tool.',
      labelNames: ['upstream', 'tool'],
      registers,
    }),
    auditRecords: new Counter({
      name: 'warden_audit_records_total',
      help: 'Records durably appended to the audit log, by event.',
      labelNames: ['event'],
      registers,
    }),
    auditAppendSeconds: new Histogram({
      name: 'warden_audit_append_duration_seconds',
      help: 'Time one batch append to the audit store took (one transaction per batch).',
      buckets: APPEND_BUCKETS,
      registers,
    }),
  };
}
