/**
 * The main-thread side of the audit writer thread. better-sqlite3 is synchronous: a 256-record
 * batch with its fsync would hold the event loop for milliseconds (with tails of tens of ms when
 * the WAL is checkpointed), so a file store's audit writes run on a worker thread with its own
 * connection, and the event loop only builds the parameters and posts them.
 *
 * Started on the first write (a CLI command that only reads never pays for it), unref'd while
 * idle (an idle store does not keep the process alive), drained and stopped by close().
 */
import { Worker } from 'node:worker_threads';
import { StoreError, toStoreError, type StoreErrorCode } from '../errors.js';
import type { SqliteAuditWrite } from './sqlite-audit-writes.js';
import { isSqliteDuplicateKey } from './sqlite-errors.js';

export interface AuditWorkerData {
  readonly path: string;
  readonly busyTimeoutMs: number;
}

export type AuditWorkerRequest =
  | { readonly type: 'write'; readonly id: number; readonly write: SqliteAuditWrite }
  | { readonly type: 'close' };

/** A failure as it crosses the thread boundary (an Error's own properties do not). */
export interface WorkerError {
  readonly storeCode?: StoreErrorCode;
  readonly driverCode?: string | undefined;
  readonly message: string;
}

export type AuditWorkerReply =
  | { readonly type: 'done'; readonly id: number; readonly count: number }
  | { readonly type: 'done'; readonly id: number; readonly error: WorkerError }
  /** The thread could not open the database; it exits after sending this. */
  | { readonly type: 'failed'; readonly error: WorkerError };

export interface SqliteAuditWriterThreadOptions extends AuditWorkerData {
  /** An append unanswered for this long fails, and the thread is replaced (fail closed). */
  readonly appendTimeoutMs: number;
}

interface Pending {
  readonly action: string;
  readonly resolve: (count: number) => void;
  readonly reject: (error: StoreError) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/** How long close() waits for the thread to finish its queued writes before stopping it. */
const CLOSE_GRACE_MS = 10_000;

export class SqliteAuditWriterThread {
  readonly #options: SqliteAuditWriterThreadOptions;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | undefined;
  #nextId = 1;
  #closed = false;

  constructor(options: SqliteAuditWriterThreadOptions) {
    this.#options = options;
  }

  /** Runs a write on the thread; rejects with a StoreError, never hangs past the append timeout. */
  execute(write: SqliteAuditWrite, action: string): Promise<number> {
    if (this.#closed) {
      return Promise.reject(
        new StoreError('STORE_CLOSED', `cannot ${action}: the store is closed`),
      );
    }
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    return new Promise<number>((resolve, reject) => {
      // Prunes may legitimately run long; appends are what a call waits for.
      const timer =
        write.op === 'append'
          ? setTimeout(() => this.#abandon(worker, id), this.#options.appendTimeoutMs)
          : undefined;
      this.#pending.set(id, { action, resolve, reject, timer });
      worker.ref();
      worker.postMessage({ type: 'write', id, write } satisfies AuditWorkerRequest);
    });
  }

  /** Lets the queued writes finish, then stops the thread. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    if (worker === undefined) return;
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' } satisfies AuditWorkerRequest);
    const grace = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(grace);
  }

  #start(): Worker {
    const worker = startWorker({
      path: this.#options.path,
      busyTimeoutMs: this.#options.busyTimeoutMs,
    });
    this.#worker = worker;
    worker.on('message', (reply: AuditWorkerReply) => {
      if (reply.type === 'failed') {
        this.#discard(worker, (action) => fromWorkerError(reply.error, action, this.#options.path));
        return;
      }
      const pending = this.#pending.get(reply.id);
      if (pending === undefined || worker !== this.#worker) return;
      this.#settle(reply.id);
      if ('error' in reply) {
        pending.reject(fromWorkerError(reply.error, pending.action, this.#options.path));
      } else {
        pending.resolve(reply.count);
      }
    });
    worker.on('error', (cause) => {
      this.#discard(worker, (action) =>
        toStoreError(
          cause,
          `${action} (the audit writer thread failed)`,
          this.#options.path,
          false,
        ),
      );
    });
    worker.on('exit', () => {
      this.#discard(worker, (action) =>
        this.#closed
          ? new StoreError('STORE_CLOSED', `cannot ${action}: the store closed`)
          : new StoreError(
              'STORE_QUERY_FAILED',
              `cannot ${action}: the audit writer thread exited`,
              {
                target: this.#options.path,
              },
            ),
      );
    });
    return worker;
  }

  #settle(id: number): void {
    const pending = this.#pending.get(id);
    clearTimeout(pending?.timer);
    this.#pending.delete(id);
    if (this.#pending.size === 0 && !this.#closed) this.#worker?.unref();
  }

  /**
   * An append went unanswered: the disk or the lock holder is stuck. Every pending write fails
   * (their outcome is unknown: the chain's owner re-reads the head), and the next write starts a
   * fresh thread rather than queueing behind the stuck one.
   */
  #abandon(worker: Worker, id: number): void {
    if (worker !== this.#worker || !this.#pending.has(id)) return;
    this.#discard(
      worker,
      (action) =>
        new StoreError(
          'STORE_QUERY_FAILED',
          `cannot ${action}: the audit writer did not answer within ${this.#options.appendTimeoutMs} ms ` +
            '(the write may still commit)',
          { target: this.#options.path },
        ),
    );
    void worker.terminate();
  }

  /** Drops `worker` (if still current) and fails everything it had not answered. */
  #discard(worker: Worker, failure: (action: string) => StoreError): void {
    if (worker !== this.#worker) return;
    this.#worker = undefined;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { action, reject, timer } of pending) {
      clearTimeout(timer);
      reject(failure(action));
    }
  }
}

function fromWorkerError(error: WorkerError, action: string, target: string): StoreError {
  if (error.storeCode !== undefined) {
    return new StoreError(error.storeCode, error.message, { target });
  }
  const cause = Object.assign(new Error(error.message), { code: error.driverCode });
  return toStoreError(cause, action, target, isSqliteDuplicateKey(cause));
}

/**
 * Starts the worker from the compiled .js beside this module, or from the .ts source when running
 * under tsx (tests, development): Node 20 does not apply the parent's --import loader hooks in a
 * worker, so there the worker registers tsx before importing its TypeScript entry.
 */
function startWorker(workerData: AuditWorkerData): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(`./sqlite-audit-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  if (!fromSource) return new Worker(entry, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsx)})` +
    `.then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}
