/**
 * Publishes every signed checkpoint outside the store, as it is appended: to an append-only
 * JSON-lines file (ideally on another volume) and/or a webhook. Whoever can write the store can
 * rewrite the chain, but not what was already witnessed elsewhere; `verify --witness` compares.
 *
 * Publishing never blocks or fails the chain: a write or delivery that fails is told to
 * `onError` (an operator alert), and a webhook is retried a bounded number of times.
 */
import { createHmac } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { AuditWitnessConfig } from '../config/config.js';
import type { AuditCheckpoint } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import { AuditError } from './errors.js';

/**
 * One line of the witness file, and the body of one webhook POST: the signed checkpoint itself
 * (stream, seq, head hash, time, key id as the key's fingerprint, signature).
 */
export type WitnessEntry = AuditCheckpoint;

export interface CheckpointWitness {
  /** Queues the checkpoint for every witness; returns at once. */
  publish(checkpoint: AuditCheckpoint): void;
  /** Waits for what was queued (webhook retries included), then closes the file. */
  close(): Promise<void>;
}

export interface CheckpointWitnessOptions {
  readonly onError: (error: Error) => void;
  readonly env?: NodeJS.ProcessEnv;
  /** Attempts per webhook delivery (default 3), and the wait before the first retry. */
  readonly webhookAttempts?: number;
  readonly retryDelayMs?: number;
}

/** The header carrying `sha256=<hex HMAC-SHA256 of the body>` on each webhook POST. */
export const WITNESS_SIGNATURE_HEADER = 'x-warden-signature';

const WEBHOOK_TIMEOUT_MS = 5_000;

export function witnessEntryOf(checkpoint: AuditCheckpoint): WitnessEntry {
  const { stream, seq, headHash, time, keyId, signature } = checkpoint;
  return { stream, seq, headHash, time, keyId, signature };
}

/** The witness for `config`; undefined when none is configured. */
export function createCheckpointWitness(
  config: AuditWitnessConfig | undefined,
  options: CheckpointWitnessOptions,
): CheckpointWitness | undefined {
  if (config === undefined || (config.file === undefined && config.webhook === undefined)) {
    return undefined;
  }
  const sinks: ((line: string) => Promise<void>)[] = [];
  const closers: (() => Promise<void>)[] = [];
  if (config.file !== undefined) {
    const file = appendToFile(config.file);
    sinks.push(file.append);
    closers.push(file.close);
  }
  if (config.webhook !== undefined) {
    const secret = (options.env ?? process.env)[config.webhook.secretEnv];
    if (!secret) {
      throw new AuditError(
        'AUDIT_WITNESS_FAILED',
        `audit.witness.webhook: the environment variable ${config.webhook.secretEnv} is not set`,
      );
    }
    const { url } = config.webhook;
    const attempts = Math.max(1, options.webhookAttempts ?? 3);
    const delayMs = options.retryDelayMs ?? 500;
    sinks.push((line) => postWithRetries(url, secret, line, attempts, delayMs));
  }
  const inFlight = new Set<Promise<void>>();
  return {
    publish(checkpoint) {
      const line = canonicalJson(witnessEntryOf(checkpoint));
      for (const sink of sinks) {
        const delivery = sink(line)
          .catch((error: unknown) => options.onError(error as Error))
          .finally(() => inFlight.delete(delivery));
        inFlight.add(delivery);
      }
    },
    async close() {
      await Promise.all(inFlight);
      for (const close of closers) await close();
    },
  };
}

/** Appends lines in order, each written with O_APPEND and synced before the next. */
function appendToFile(path: string): {
  append: (line: string) => Promise<void>;
  close: () => Promise<void>;
} {
  let handle: Promise<FileHandle> | undefined;
  let queue: Promise<void> = Promise.resolve();
  const append = (line: string): Promise<void> => {
    const write = queue.then(async () => {
      handle ??= open(path, 'a', 0o600);
      const file = await handle.catch((error: unknown) => {
        handle = undefined; // try to open again for the next checkpoint
        throw error;
      });
      await file.write(`${line}\n`);
      await file.sync();
    });
    queue = write.catch(() => undefined);
    return write.catch((cause: unknown) => {
      throw new AuditError('AUDIT_WITNESS_FAILED', `cannot append to the audit witness ${path}`, {
        cause,
      });
    });
  };
  const close = async (): Promise<void> => {
    await queue;
    const file = await handle?.catch(() => undefined);
    handle = undefined;
    await file?.close();
  };
  return { append, close };
}

async function postWithRetries(
  url: string,
  secret: string,
  body: string,
  attempts: number,
  delayMs: number,
): Promise<void> {
  const signature = createHmac('sha256', secret).update(body, 'utf8').digest('hex');
  let lastProblem = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [WITNESS_SIGNATURE_HEADER]: `sha256=${signature}`,
        },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (response.ok) return;
      lastProblem = `HTTP ${response.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    if (attempt < attempts) await sleep(delayMs * 2 ** (attempt - 1));
  }
  throw new AuditError(
    'AUDIT_WITNESS_FAILED',
    `the audit witness webhook ${new URL(url).origin} did not take a checkpoint after ${attempts} attempts (${lastProblem})`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
