/**
 * The audit writer thread: its own better-sqlite3 connection to the store's file, so a batch's
 * inserts and its fsync block this thread instead of the gateway's event loop. Started and
 * spoken to by SqliteAuditWriterThread; the messages are defined there.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { prepareSqliteAuditWrites, type SqliteAuditWrites } from './sqlite-audit-writes.js';
import type {
  AuditWorkerData,
  AuditWorkerReply,
  AuditWorkerRequest,
  WorkerError,
} from './sqlite-audit-writer-thread.js';

const port = parentPort;
if (port === null) throw new Error('sqlite-audit-worker runs only as a worker thread');
const { path, busyTimeoutMs } = workerData as AuditWorkerData;

let db: Database.Database | undefined;
let writes: SqliteAuditWrites | undefined;

function toWorkerError(cause: unknown): WorkerError {
  if (cause instanceof StoreError) return { storeCode: cause.code, message: cause.message };
  const code = (cause as { code?: unknown } | null)?.code;
  return {
    driverCode: typeof code === 'string' ? code : undefined,
    message: cause instanceof Error ? cause.message : String(cause),
  };
}

function reply(message: AuditWorkerReply): void {
  port?.postMessage(message);
}

try {
  // fileMustExist: the main thread created and migrated the file; a missing one means it was
  // removed, and writing to a fresh empty file would silently start a second log.
  db = new Database(path, { fileMustExist: true, timeout: busyTimeoutMs });
  // Per connection, like the main one: every commit is fsynced before the append resolves.
  db.pragma('synchronous = FULL');
  writes = prepareSqliteAuditWrites(db);
} catch (cause) {
  db?.close();
  db = undefined;
  reply({ type: 'failed', error: toWorkerError(cause) });
  port.close();
}

// Messages are handled one at a time, in order: a close arrives after every write sent before it.
port.on('message', (message: AuditWorkerRequest) => {
  if (message.type === 'close') {
    db?.close();
    writes = undefined;
    port.close();
    return;
  }
  const { id, write } = message;
  try {
    if (writes === undefined) throw new StoreError('STORE_CLOSED', 'the audit writer is closed');
    reply({ type: 'done', id, count: writes.execute(write) });
  } catch (cause) {
    reply({ type: 'done', id, error: toWorkerError(cause) });
  }
});
