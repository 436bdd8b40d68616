/**
 * Decides which rules an audit record raises. Counting rules (denial_rate, auth_failure_burst)
 * keep, per key, the times of the events within their window; the others fire on one event.
 * Alert records (`alert.*`) never match: recording an alert must not raise another.
 */
import type { AlertRuleConfig } from '../../config/alerts-schema.js';
import type { AuditRecord } from '../../domain/audit-record.js';
import type { Alert } from './alert.js';

/** Keys tracked per counting rule; beyond it the oldest key is forgotten (bounded memory). */
const MAX_KEYS_PER_RULE = 10_000;

export interface AlertRuleMatcher {
  /** The alerts this record raises (before deduplication). */
  match(record: AuditRecord): Alert[];
}

export function createAlertRuleMatcher(
  rules: readonly AlertRuleConfig[],
  now: () => number,
): AlertRuleMatcher {
  const windows = new Map<AlertRuleConfig, Map<string, number[]>>();
  /** Adds `count` events for the key; returns how many (up to threshold + 1) fall in the window. */
  const countInWindow = (rule: AlertRuleConfig, key: string, count: number): number => {
    const timesByKey = windows.get(rule) ?? new Map<string, number[]>();
    windows.set(rule, timesByKey);
    const at = now();
    const times = (timesByKey.get(key) ?? []).filter((time) => time > at - rule.windowMs);
    // Only the newest threshold + 1 matter to the check.
    for (let i = 0; i < Math.min(count, rule.threshold + 1); i++) times.push(at);
    const kept = times.slice(-(rule.threshold + 1));
    timesByKey.delete(key);
    timesByKey.set(key, kept);
    if (timesByKey.size > MAX_KEYS_PER_RULE) {
      const oldest = timesByKey.keys().next().value;
      if (oldest !== undefined) timesByKey.delete(oldest);
    }
    return kept.length;
  };

  return {
    match(record) {
      if (record.event.startsWith('alert.')) return [];
      const alerts: Alert[] = [];
      for (const rule of rules) {
        const alert = matchRule(rule, record, countInWindow);
        if (alert !== undefined) alerts.push({ ...alert, time: record.time });
      }
      return alerts;
    },
  };
}

type Counter = (rule: AlertRuleConfig, key: string, count: number) => number;

function matchRule(
  rule: AlertRuleConfig,
  record: AuditRecord,
  count: Counter,
): Omit<Alert, 'time'> | undefined {
  const raise = (key: string, summary: string, facts: Record<string, unknown>) => ({
    rule: rule.name,
    kind: rule.kind,
    key,
    summary,
    facts: { event: record.event, stream: record.stream, seq: record.seq, ...facts },
  });
  const who = { agent: record.agent ?? null, user: record.user ?? null };
  const tool = `${record.upstream ?? '?'}.${record.tool ?? '?'}`;
  switch (rule.kind) {
    case 'breakglass_used':
      return record.event === 'breakglass.used'
        ? raise(
            record.agent ?? record.user ?? 'unknown',
            `break-glass used by ${record.user ?? record.agent ?? 'unknown'}`,
            {
              ...who,
              details: record.details ?? null,
            },
          )
        : undefined;
    case 'tool_definition_changed':
      return record.event === 'tool.definition_changed'
        ? raise(tool, `the definition of ${tool} changed upstream`, {
            upstream: record.upstream ?? null,
            tool: record.tool ?? null,
          })
        : undefined;
    case 'approval_expired':
      return record.event === 'approval.expired'
        ? raise(record.approval?.id ?? tool, `approval for ${tool} expired undecided`, {
            ...who,
            tool,
            approval: record.approval?.id ?? null,
          })
        : undefined;
    case 'denial_rate': {
      if (record.event !== 'call.denied' || record.agent === undefined) return undefined;
      const seen = count(rule, record.agent, 1);
      return seen > rule.threshold
        ? raise(
            record.agent,
            `agent ${record.agent} was denied more than ${rule.threshold} calls in ${rule.windowMs / 1000}s`,
            {
              ...who,
              threshold: rule.threshold,
              windowMs: rule.windowMs,
            },
          )
        : undefined;
    }
    case 'auth_failure_burst': {
      if (record.event !== 'auth.failed') return undefined;
      const source = record.details?.['source'];
      const key = typeof source === 'string' ? source : 'unknown';
      // A summary record counts the failures it stands for.
      const repeated = record.details?.['repeated'];
      const seen = count(rule, key, typeof repeated === 'number' && repeated > 0 ? repeated : 1);
      return seen > rule.threshold
        ? raise(
            key,
            `more than ${rule.threshold} authentication failures from ${key} in ${rule.windowMs / 1000}s`,
            {
              source: key,
              threshold: rule.threshold,
              windowMs: rule.windowMs,
              errorCode: record.errorCode ?? null,
            },
          )
        : undefined;
    }
    case 'verification_failure':
      return record.event === 'audit.verification_failed'
        ? raise('audit', 'the audit log in the store no longer verifies', {
            problems: record.details?.['problems'] ?? null,
          })
        : undefined;
    case 'breaker_open':
    case 'audit_unavailable':
      // Not audit records: raised directly by the circuit breaker and the audit log.
      return undefined;
  }
}
