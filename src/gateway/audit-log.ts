/**
 * Wires the audit log for one gateway: the replica's hash chain in the store, its Ed25519
 * checkpoint key, the argument redactor, and the call recorder the pipeline uses.
 */
import { createHash } from 'node:crypto';
import { createAuditChain, type AuditChain } from '../audit/audit-chain.js';
import { createCallRecorder, type CallRecorder } from '../audit/call-recorder.js';
import { openCheckpointSigner } from '../audit/checkpoint-signer.js';
import { loadOrCreateHashKey } from '../audit/hash-key.js';
import { createArgumentRedactor } from '../audit/redaction.js';
import { createCheckpointWitness } from '../audit/witness.js';
import type { Config } from '../config/config.js';
import type { AuditEntry, AuditRecord } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import type { Store } from '../store/types.js';
import { startAuditSelfCheck } from './audit-self-check.js';
import type { Logger } from './logger.js';

export interface GatewayAuditLog {
  readonly recorder: CallRecorder;
  /** Records a gateway event (token issued, revocation, config loaded); failures raise an alert. */
  note(entry: Omit<AuditEntry, 'time'>): void;
  /** Records an event and resolves once it is durable (rejects when the log cannot take it). */
  record(entry: AuditEntry): Promise<void>;
  /** The keyed hash of arguments, as the call's records carry it (approvals bind to it). */
  hashArguments(args: unknown): string;
  /** Commits what is pending and signs a final checkpoint. */
  close(): Promise<void>;
  /** Records waiting for their append (metrics). */
  queued(): number;
}

/** Told of each batch of records once durably stored, and how long the append took. */
export type AuditAppendObserver = (records: readonly AuditRecord[], latencyMs: number) => void;

/** Batches form while an append is in flight; an idle log commits at once (no added wait). */
const BATCH_WINDOW_MS = 0;

export async function setUpAuditLog(
  config: Config,
  store: Store,
  logger: Logger,
  onAppended?: AuditAppendObserver,
  /** Told when a record cannot be stored (the audit_unavailable alert rules). */
  onUnavailable?: (error: unknown, entry: Pick<AuditEntry, 'event'>) => void,
): Promise<GatewayAuditLog> {
  const key = await openCheckpointSigner(store.audit, config.audit.signingKey);
  const witness = createCheckpointWitness(config.audit.witness, {
    onError: (error) =>
      logger.error(
        { alert: 'audit_witness_failed', err: error },
        'audit witness missed a checkpoint',
      ),
  });
  const alert = (error: unknown, entry: Pick<AuditEntry, 'event' | 'requestId'>): void => {
    // An operator must hear of this at once: calls are being refused while it lasts.
    logger.error(
      { alert: 'audit_unavailable', err: error, event: entry.event, requestId: entry.requestId },
      'audit log cannot record',
    );
    onUnavailable?.(error, entry);
  };
  const chain: AuditChain = createAuditChain({
    repository: store.audit,
    stream: config.audit.stream,
    signer: key.signer,
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: config.audit.checkpointIntervalMs,
    batchWindowMs: BATCH_WINDOW_MS,
    onError: (error) =>
      logger.error({ alert: 'audit_checkpoint_failed', err: error }, 'audit checkpoint failed'),
    ...(onAppended !== undefined && { onAppended }),
    ...(witness !== undefined && { onCheckpoint: (checkpoint) => witness.publish(checkpoint) }),
  });
  const redactor = createArgumentRedactor({
    hashKey: loadOrCreateHashKey(config.audit.hashKeyFile),
    redactPaths: config.audit.redactPaths,
  });
  const recorder = createCallRecorder({
    chain,
    redactor,
    excerptBytes: config.audit.resultExcerptBytes,
    region: config.policy.region,
    onFailure: alert,
  });
  const note = (entry: Omit<AuditEntry, 'time'>): void => {
    const full = { ...entry, time: new Date().toISOString() } as AuditEntry;
    chain.record(full).catch((error: unknown) => alert(error, full));
  };
  note({
    event: 'config.loaded',
    environment: config.environment,
    details: {
      source: config.source,
      stream: config.audit.stream,
      upstreams: [...config.upstreams.keys()],
      agents: [...config.agents.keys()],
      auditKeyId: key.signer.keyId,
      auditKeyInStore: key.keyInStore,
      auditWitness: witness !== undefined,
      configHash: createHash('sha256')
        .update(canonicalJson(describeConfig(config)))
        .digest('base64url'),
    },
  });
  const selfCheck =
    config.audit.verifyEveryMs === undefined
      ? undefined
      : startAuditSelfCheck({
          repository: store.audit,
          publicKeyPem: key.publicKeyPem,
          witnessPath: config.audit.witness?.file,
          everyMs: config.audit.verifyEveryMs,
          note,
          logger,
        });
  const record = async (entry: AuditEntry): Promise<void> => {
    try {
      await chain.record(entry);
    } catch (error) {
      alert(error, entry);
      throw error;
    }
  };
  return {
    recorder,
    note,
    record,
    hashArguments: (args) => redactor.hashArguments(args),
    queued: () => chain.queued(),
    close: async () => {
      await selfCheck?.close();
      await recorder.close();
      await chain.close();
      await witness?.close();
    },
  };
}

/** The parts of the config that decide who may do what; secrets (hashes, keys) are left out. */
export function describeConfig(config: Config): unknown {
  return {
    environment: config.environment,
    auth: { ...config.auth },
    agents: [...config.agents.values()].map((agent) => ({
      id: agent.id,
      roles: agent.roles,
      tenant: agent.tenant ?? null,
    })),
    upstreams: [...config.upstreams.values()].map((upstream) =>
      upstream.kind === 'http'
        ? { name: upstream.name, url: upstream.url }
        : { name: upstream.name, command: upstream.command },
    ),
  };
}
