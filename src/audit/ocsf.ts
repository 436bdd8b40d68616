/**
 * Audit records as OCSF 1.6 API Activity events (class_uid 6003, category 6 Application
 * Activity), for SIEMs. Required attributes are always present (activity_id, category_uid,
 * class_uid, type_uid, severity_id, time, metadata.product, metadata.version, actor, api,
 * src_endpoint); what OCSF has no attribute for goes to `unmapped` under its Warden name, so no
 * fact of the record is lost.
 */
import type { AuditEvent, AuditRecord } from '../domain/audit-record.js';

export const OCSF_VERSION = '1.6.0';
export const OCSF_API_ACTIVITY_CLASS_UID = 6003;
const CATEGORY_UID = 6;

/** OCSF API Activity activity_id values. */
const ACTIVITY = { unknown: 0, create: 1, read: 2, update: 3, delete: 4, other: 99 } as const;
const ACTIVITY_NAMES: Readonly<Record<number, string>> = {
  0: 'Unknown',
  1: 'Create',
  2: 'Read',
  3: 'Update',
  4: 'Delete',
};

/** OCSF severity_id values. */
const SEVERITY = { informational: 1, low: 2, medium: 3, high: 4 } as const;
const SEVERITY_NAMES: Readonly<Record<number, string>> = {
  1: 'Informational',
  2: 'Low',
  3: 'Medium',
  4: 'High',
};

/** OCSF status_id values. */
const STATUS = { success: 1, failure: 2, other: 99 } as const;

const READ_METHODS = new Set([
  'tools/list',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'prompts/list',
  'prompts/get',
]);

const EVENT_ACTIVITY: Partial<Record<AuditEvent, number>> = {
  'token.issued': ACTIVITY.create,
  'token.revoked': ACTIVITY.delete,
  'key.rotated': ACTIVITY.update,
  'grant.changed': ACTIVITY.update,
  'tool.approved': ACTIVITY.update,
  'policy.loaded': ACTIVITY.update,
  'policy.pushed': ACTIVITY.update,
  'policy.rejected': ACTIVITY.update,
  'config.loaded': ACTIVITY.update,
  'audit.pruned': ACTIVITY.delete,
};

const FAILURE_EVENTS = new Set<AuditEvent>([
  'auth.failed',
  'request.refused',
  'call.denied',
  'approval.refused',
  'approval.expired',
  'approval.invalidated',
  'call.error',
  'policy.rejected',
  'audit.verification_failed',
]);

const EVENT_SEVERITY: Partial<Record<AuditEvent, number>> = {
  'auth.failed': SEVERITY.low,
  'request.refused': SEVERITY.low,
  'call.denied': SEVERITY.low,
  'approval.refused': SEVERITY.low,
  'approval.expired': SEVERITY.low,
  'approval.invalidated': SEVERITY.low,
  'call.error': SEVERITY.low,
  'grant.changed': SEVERITY.low,
  'token.revoked': SEVERITY.low,
  'tool.definition_changed': SEVERITY.medium,
  'audit.pruned': SEVERITY.medium,
  'breakglass.used': SEVERITY.high,
  'audit.verification_failed': SEVERITY.high,
};

/** The fields mapped to OCSF attributes; everything else goes to `unmapped`. */
const MAPPED_FIELDS = new Set<string>([
  'event',
  'time',
  'requestId',
  'tenant',
  'user',
  'agent',
  'upstream',
  'method',
  'tool',
  'latencyMs',
  'errorCode',
  'stream',
  'seq',
]);

/** One audit record as an OCSF API Activity event. */
export function toOcsfApiActivity(record: AuditRecord): Record<string, unknown> {
  const activityId = activityOf(record);
  const activityName = ACTIVITY_NAMES[activityId] ?? record.event;
  const severityId = EVENT_SEVERITY[record.event] ?? SEVERITY.informational;
  const status = statusOf(record);
  const unmapped = Object.fromEntries(
    Object.entries(record).filter(([key, value]) => !MAPPED_FIELDS.has(key) && value !== undefined),
  );
  const sourceIp = record.details?.['sourceIp'];

  return compact({
    activity_id: activityId,
    activity_name: activityName,
    category_uid: CATEGORY_UID,
    category_name: 'Application Activity',
    class_uid: OCSF_API_ACTIVITY_CLASS_UID,
    class_name: 'API Activity',
    type_uid: OCSF_API_ACTIVITY_CLASS_UID * 100 + activityId,
    type_name: `API Activity: ${activityName}`,
    time: Date.parse(record.time),
    timezone_offset: 0,
    duration: record.latencyMs,
    severity_id: severityId,
    severity: SEVERITY_NAMES[severityId],
    status_id: status.id,
    status: status.name,
    status_code: record.errorCode,
    status_detail: record.decision?.reasons.join('; ') || undefined,
    message: messageOf(record),
    metadata: compact({
      version: OCSF_VERSION,
      product: { name: 'Warden', vendor_name: 'Warden' },
      uid: `${record.stream}:${record.seq}`,
      sequence: record.seq,
      correlation_uid: record.requestId,
      event_code: record.event,
      log_name: 'audit',
      original_time: record.time,
      tenant_uid: record.tenant,
    }),
    actor: compact({
      user: record.user === undefined ? undefined : { name: record.user, uid: record.user },
      // OCSF asks for at least one of user, app_name, …: the gateway acts when neither is known.
      app_name: record.agent ?? (record.user === undefined ? 'Warden' : undefined),
      authorizations: record.decision && authorizationsOf(record.decision),
    }),
    api: compact({
      operation: record.method ?? record.event,
      request: record.requestId === undefined ? undefined : { uid: record.requestId },
      response: record.errorCode === undefined ? undefined : { error: record.errorCode },
      service: record.upstream === undefined ? undefined : { name: record.upstream },
    }),
    src_endpoint:
      typeof sourceIp === 'string' ? { ip: sourceIp } : { name: record.agent ?? 'unknown' },
    dst_endpoint: record.upstream === undefined ? undefined : { name: record.upstream },
    resources: record.tool === undefined ? undefined : [{ name: record.tool, type: 'tool' }],
    unmapped,
  });
}

function activityOf(record: AuditRecord): number {
  if (record.method !== undefined) {
    return READ_METHODS.has(record.method) ? ACTIVITY.read : ACTIVITY.other;
  }
  return EVENT_ACTIVITY[record.event] ?? ACTIVITY.other;
}

function statusOf(record: AuditRecord): { id: number; name: string } {
  if (record.event === 'approval.requested') return { id: STATUS.other, name: 'Pending' };
  const failed =
    FAILURE_EVENTS.has(record.event) ||
    record.result?.isError === true ||
    record.decision?.effect === 'deny';
  return failed ? { id: STATUS.failure, name: 'Failure' } : { id: STATUS.success, name: 'Success' };
}

function authorizationsOf(decision: NonNullable<AuditRecord['decision']>): object[] {
  if (decision.policies.length === 0) return [{ decision: decision.effect }];
  return decision.policies.map((policy) => ({
    decision: decision.effect,
    policy: { uid: policy, name: policy },
  }));
}

function messageOf(record: AuditRecord): string {
  const parts: string[] = [record.event];
  if (record.tool !== undefined) parts.push(record.tool);
  if (record.upstream !== undefined) parts.push(`on ${record.upstream}`);
  if (record.user !== undefined) parts.push(`by ${record.user}`);
  if (record.agent !== undefined) parts.push(`via ${record.agent}`);
  return parts.join(' ');
}

/** Drops undefined members, so absent facts are absent attributes, not nulls. */
function compact(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}
