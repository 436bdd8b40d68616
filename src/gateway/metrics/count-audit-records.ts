/**
 * Turns the audit log's records into counters. The log already tells every decision, outcome,
 * approval event and refused authentication, so the metrics count exactly what it holds: a
 * counter and `warden audit` never disagree, and no pipeline stage knows metrics exist.
 */
import type { AuditRecord } from '../../domain/audit-record.js';
import type { Decision } from '../../domain/decision.js';
import { codeLabel, type MetricLabels } from './metric-labels.js';
import type { MetricSet } from './metric-set.js';

/** The code of a call refused for want of quota room (domain/errors.ts). */
const QUOTA_EXCEEDED = 'WARDEN_QUOTA_EXCEEDED';

/** Counts one appended batch, and how long its append took. */
export function countAuditRecords(
  metrics: MetricSet,
  labels: MetricLabels,
  records: readonly AuditRecord[],
  appendMs: number,
): void {
  metrics.auditAppendSeconds.observe(appendMs / 1000);
  for (const record of records) {
    metrics.auditRecords.inc({ event: record.event });
    countRecord(metrics, labels, record);
  }
}

function countRecord(metrics: MetricSet, labels: MetricLabels, record: AuditRecord): void {
  switch (record.event) {
    case 'tool.approved':
    case 'tool.definition_changed':
      if (record.upstream !== undefined && record.tool !== undefined) {
        labels.learnTool(record.upstream, record.tool);
      }
      return;
    case 'call.allowed':
    case 'call.denied':
      if (record.method === 'tools/call' && record.decision !== undefined) {
        countToolCall(metrics, labels, record, effectOf(record.decision));
        if (record.errorCode === QUOTA_EXCEEDED) {
          metrics.quotaRefusals.inc({
            upstream: labels.upstream(record.upstream),
            tool: labels.tool(record.upstream, record.tool),
          });
        }
      }
      return;
    case 'approval.requested':
      // Only tool grants ask for approval; the record names the held call's upstream and tool.
      countToolCall(metrics, labels, record, 'approval');
      return;
    case 'approval.granted':
      // One record per approve vote: a two-person approval is granted by its final vote.
      if (record.details?.['final'] !== false) metrics.approvalsDecided.inc({ outcome: 'granted' });
      return;
    case 'approval.refused':
      metrics.approvalsDecided.inc({ outcome: 'refused' });
      return;
    case 'approval.expired':
      metrics.approvalsExpired.inc();
      return;
    case 'call.result':
    case 'call.error':
      if (record.method === 'tools/call' && record.latencyMs !== undefined) {
        metrics.callSeconds.observe(
          { upstream: labels.upstream(record.upstream), outcome: outcomeOf(record) },
          record.latencyMs / 1000,
        );
      }
      return;
    case 'auth.failed':
      countAuthFailures(metrics, record);
      return;
    case 'breakglass.used':
      metrics.breakglassUsed.inc();
      return;
    default:
      return;
  }
}

function countToolCall(
  metrics: MetricSet,
  labels: MetricLabels,
  record: AuditRecord,
  effect: string,
): void {
  metrics.toolCalls.inc({
    upstream: labels.upstream(record.upstream),
    tool: labels.tool(record.upstream, record.tool),
    effect,
  });
}

/** allow, deny, monitor (allowed, but enforcement would have denied), approval, error. */
export function effectOf(decision: Decision): string {
  if (decision.effect === 'approval_required') return 'approval';
  if (decision.effect === 'allow') return decision.monitored === undefined ? 'allow' : 'monitor';
  // A policy that could not be evaluated denies: counted apart, as it calls for an operator.
  return decision.evaluationFailed === true || (decision.errors?.length ?? 0) > 0
    ? 'error'
    : 'deny';
}

function outcomeOf(record: AuditRecord): string {
  if (record.event === 'call.error') return 'error';
  return record.result?.isError === true ? 'tool_error' : 'result';
}

/** A failure in full counts once; a summary of a source's repeats counts each by its code. */
function countAuthFailures(metrics: MetricSet, record: AuditRecord): void {
  const repeated = record.details?.['codes'];
  if (record.errorCode === undefined && repeated !== null && typeof repeated === 'object') {
    for (const [code, count] of Object.entries(repeated as Record<string, unknown>)) {
      if (typeof count === 'number' && Number.isFinite(count) && count > 0) {
        metrics.authFailures.inc({ code: codeLabel(code), reason: 'repeated' }, count);
      }
    }
    return;
  }
  const reason = record.details?.['reason'];
  metrics.authFailures.inc({
    code: codeLabel(record.errorCode),
    reason: reason === undefined ? 'unspecified' : codeLabel(reason),
  });
}
