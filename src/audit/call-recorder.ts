/**
 * Records the story of each call: the decision, durably, before the call is forwarded (so a call
 * the log does not know about cannot happen), then its result or error when it ends.
 */
import type { AuditEntry } from '../domain/audit-record.js';
import type { Decision } from '../domain/decision.js';
import { WardenError } from '../domain/errors.js';
import type { JsonRpcResponse } from '../domain/jsonrpc.js';
import type { AuditChain } from './audit-chain.js';
import { callEntryBase, describeTarget, type CallFacts } from './call-entry.js';
import type { ArgumentRedactor } from './redaction.js';
import { digestResult } from './result-digest.js';

export type { Decision } from '../domain/decision.js';

/** Records how a recorded call ended. */
export interface CallOutcome {
  answered(response: JsonRpcResponse): void;
  failed(error: unknown): void;
}

export interface CallRecorder {
  /**
   * Durably records the decision on a call (`call.allowed` or `call.denied`). Rejects with
   * WARDEN_AUDIT_UNAVAILABLE when the log cannot take it: the call must then not proceed.
   */
  recordDecision(
    facts: CallFacts,
    decision: Decision,
    options?: {
      readonly failOpen?: boolean;
      /** For a denial: the code the caller was refused with, so the log can be queried by it. */
      readonly errorCode?: string;
    },
  ): Promise<CallOutcome>;
  /** Tries once more to record what is spooled, then stops retrying. */
  close(): Promise<void>;
}

export interface CallRecorderOptions {
  readonly chain: Pick<AuditChain, 'record'>;
  readonly redactor: ArgumentRedactor;
  /** Bytes of each result kept (redacted) in the log; 0 keeps none. */
  readonly excerptBytes: number;
  readonly now?: () => number;
  /** This deployment's region, on every call record. */
  readonly region?: string | undefined;
  /** Told when the log could not take a record (decision or outcome): raise an alert. */
  readonly onFailure: (error: unknown, entry: AuditEntry) => void;
  /** Records held for a later retry while the log is unavailable; beyond this, calls fail closed. */
  readonly spoolLimit?: number;
}

const DEFAULT_SPOOL_LIMIT = 10_000;
const SPOOL_RETRY_MS = 1000;

/** Records the log could not take yet, retried in order until it can. */
function createSpool(chain: Pick<AuditChain, 'record'>, limit: number) {
  const waiting: AuditEntry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  const flush = async (): Promise<void> => {
    while (waiting.length > 0) {
      await chain.record(waiting[0] as AuditEntry);
      waiting.shift();
    }
  };
  const schedule = () => {
    if (timer !== undefined) return;
    timer = setInterval(() => {
      flushing ??= flush()
        .catch(() => undefined)
        .finally(() => {
          flushing = undefined;
          if (waiting.length === 0 && timer !== undefined) {
            clearInterval(timer);
            timer = undefined;
          }
        });
    }, SPOOL_RETRY_MS);
    timer.unref();
  };
  return {
    /** Whether records wait for a retry: a later record of the same call must queue behind them. */
    get holding(): boolean {
      return waiting.length > 0;
    },
    /** False when the spool is full: the record could not be kept. */
    add(entry: AuditEntry): boolean {
      if (waiting.length >= limit) return false;
      waiting.push(entry);
      schedule();
      return true;
    },
    async close(): Promise<void> {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await flushing;
      await flush().catch(() => undefined);
    },
  };
}

export function createCallRecorder(options: CallRecorderOptions): CallRecorder {
  const now = options.now ?? Date.now;
  const time = () => new Date(now()).toISOString();

  const spool = createSpool(options.chain, options.spoolLimit ?? DEFAULT_SPOOL_LIMIT);
  const recordOutcome = (entry: AuditEntry): void => {
    // Behind a spooled record (a decision written late), so the log keeps the call's order.
    if (spool.holding && spool.add(entry)) return;
    options.chain.record(entry).catch((error: unknown) => {
      options.onFailure(error, entry);
      // Kept and retried, so an outage loses no outcome while the spool has room.
      spool.add(entry);
    });
  };
  // An outcome is digested and recorded after the answer has gone to the client: the reply does
  // not wait for the result's hash and canonical form. close() records what is still waiting.
  const deferred = new Map<NodeJS.Immediate, () => void>();
  const later = (work: () => void): void => {
    const immediate = setImmediate(() => {
      deferred.delete(immediate);
      work();
    });
    deferred.set(immediate, work);
  };

  return {
    async close() {
      for (const [immediate, work] of deferred) {
        clearImmediate(immediate);
        work();
      }
      deferred.clear();
      await spool.close();
    },
    async recordDecision(facts, decision, recordOptions = {}) {
      const { tool, args } = describeTarget(facts.call);
      const base = {
        ...callEntryBase(facts, tool),
        ...(options.region !== undefined && { region: options.region }),
      };
      const redacted = args === undefined ? undefined : options.redactor.redact(args);
      const entry: AuditEntry = {
        ...base,
        event: decision.effect === 'deny' ? 'call.denied' : 'call.allowed',
        time: time(),
        ...(redacted && { arguments: redacted.arguments, argumentsHash: redacted.argumentsHash }),
        decision,
        ...(recordOptions.errorCode !== undefined && { errorCode: recordOptions.errorCode }),
      };
      try {
        await options.chain.record(entry);
      } catch (error) {
        options.onFailure(error, entry);
        // Fail open only where configured (non-sensitive tools), and only while the spool has room:
        // the decision record is then written late, marked as such, never dropped.
        const late = {
          ...entry,
          details: { failOpen: 'the audit log was unavailable; recorded late' },
        };
        if (!recordOptions.failOpen || decision.effect === 'deny' || !spool.add(late)) {
          throw new WardenError('WARDEN_AUDIT_UNAVAILABLE', undefined, { cause: error });
        }
      }
      const started = now();
      let settled = false;
      return {
        answered(response) {
          if (settled) return;
          settled = true;
          const latencyMs = now() - started;
          const at = time();
          if ('error' in response) {
            recordOutcome({
              ...base,
              event: 'call.error',
              time: at,
              latencyMs,
              errorCode: String(response.error.code),
              details: { message: options.redactor.redactValue(response.error.message) },
            });
            return;
          }
          later(() =>
            recordOutcome({
              ...base,
              event: 'call.result',
              time: at,
              latencyMs,
              result: digestResult(response.result, {
                excerptBytes: options.excerptBytes,
                redactor: options.redactor,
              }),
            }),
          );
        },
        failed(error) {
          if (settled) return;
          settled = true;
          recordOutcome({
            ...base,
            event: 'call.error',
            time: time(),
            latencyMs: now() - started,
            errorCode: error instanceof WardenError ? error.code : 'WARDEN_INTERNAL',
          });
        },
      };
    },
  };
}
