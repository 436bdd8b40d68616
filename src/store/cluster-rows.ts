/** Row mapping for the replica, session and shared-secret tables (both dialects). */
import { type Row } from './row-mapping.js';
import type { ReplicaRecord, SessionRecord } from './types.js';

export const REPLICA_COLUMNS =
  'id, instance, url, audit_stream, started_at, seen_at, stopped_at, policy_version, config_digest, hash_key_digest';

export const SESSION_COLUMNS = 'id, replica, agent, upstream, created_at';

const optionalText = (value: unknown): string | undefined =>
  value === null || value === undefined ? undefined : String(value);

const optionalNumber = (value: unknown): number | undefined =>
  value === null || value === undefined ? undefined : Number(value);

export function toReplicaRecord(row: Row): ReplicaRecord {
  return {
    id: String(row.id),
    instance: String(row.instance),
    url: optionalText(row.url),
    auditStream: String(row.audit_stream),
    startedAt: Number(row.started_at),
    seenAt: Number(row.seen_at),
    stoppedAt: optionalNumber(row.stopped_at),
    policyVersion: String(row.policy_version),
    configDigest: String(row.config_digest),
    hashKeyDigest: String(row.hash_key_digest),
  };
}

export function toSessionRecord(row: Row): SessionRecord {
  return {
    id: String(row.id),
    replica: String(row.replica),
    agent: String(row.agent),
    upstream: String(row.upstream),
    createdAt: Number(row.created_at),
  };
}

/**
 * Why `replica` may not announce itself now: a live replica already writes its audit stream, or
 * a live instance of the same replica runs. Undefined when it may.
 */
export function announceConflict(
  replicas: readonly ReplicaRecord[],
  replica: Pick<ReplicaRecord, 'id' | 'instance' | 'auditStream'>,
  now: number,
  liveMs: number,
): string | undefined {
  for (const other of replicas) {
    if (other.stoppedAt !== undefined || now - other.seenAt >= liveMs) continue;
    const seen = `seen ${now - other.seenAt} ms ago`;
    if (other.id === replica.id && other.instance !== replica.instance) {
      return `replica "${replica.id}" is running already (${seen})`;
    }
    if (other.id !== replica.id && other.auditStream === replica.auditStream) {
      return `audit stream "${replica.auditStream}" is written by replica "${other.id}" (${seen})`;
    }
  }
  return undefined;
}
