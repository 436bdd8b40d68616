/**
 * The audit log on SQLite. Reads run on the store's connection (WAL lets them run beside the
 * writer). Writes to a file run on the audit writer thread, so a batch's inserts and fsync never
 * block the event loop; a memory database can only be reached from its own thread, and has no
 * fsync to wait for, so its writes run inline.
 */
import type { Database } from 'better-sqlite3';
import type { AuditCheckpoint, AuditRecord } from '../../domain/audit-record.js';
import {
  assertAuditSigningKey,
  assertSeq,
  checkStream,
  AUDIT_KEY_COLUMNS,
  AUDIT_STORED_COLUMNS,
  AUDIT_STREAMS_SQL,
  buildAuditQuery,
  checkLimit,
  toAuditCheckpoint,
  toAuditCheckpointParams,
  toAuditRecord,
  toAuditRecordParams,
  toAuditSigningKey,
  toPruneMarkerParams,
  type AuditQueryDialect,
} from '../audit-rows.js';
import { toStoreError } from '../errors.js';
import type { Row } from '../row-mapping.js';
import type { AuditRepository, AuditSigningKey } from '../types.js';
import {
  prepareSqliteAuditWrites,
  type SqliteAuditBatch,
  type SqliteAuditWrite,
} from './sqlite-audit-writes.js';
import { SqliteAuditWriterThread } from './sqlite-audit-writer-thread.js';
import { isSqliteDuplicateKey } from './sqlite-errors.js';

export interface SqliteAuditOptions {
  readonly db: Database;
  /** The database file, or undefined for a memory database. */
  readonly file: string | undefined;
  /** For error messages: the file path or `:memory:`. */
  readonly target: string;
  readonly busyTimeoutMs: number;
  readonly now: () => number;
  /** Throws STORE_CLOSED once the store is closed. */
  readonly assertOpen: (action: string) => void;
  /** Runs a statement on the main connection, turning driver errors into StoreErrors. */
  readonly run: <T>(action: string, statement: () => T) => T;
}

/** Longer than the busy timeout: an append fails on a held lock before it counts as stuck. */
const APPEND_TIMEOUT_EXTRA_MS = 5000;

const SQLITE_DIALECT: AuditQueryDialect = {
  placeholder: () => '?',
  hasRole: (placeholder) =>
    `EXISTS (SELECT 1 FROM json_each(audit_records.roles) WHERE json_each.value = ${placeholder})`,
};

export function createSqliteAuditRepository(options: SqliteAuditOptions): {
  readonly repository: AuditRepository;
  close(): Promise<void>;
} {
  const { db, run, target } = options;
  const sql = {
    head: db.prepare(
      `SELECT ${AUDIT_STORED_COLUMNS} FROM audit_records WHERE stream = ? ORDER BY seq DESC LIMIT 1`,
    ),
    readStream: db.prepare(
      `SELECT ${AUDIT_STORED_COLUMNS} FROM audit_records WHERE stream = ? AND seq >= ? ORDER BY seq LIMIT ?`,
    ),
    streams: db.prepare(AUDIT_STREAMS_SQL).pluck(),
    checkpoints: db.prepare(
      `SELECT ${AUDIT_STORED_COLUMNS} FROM audit_checkpoints WHERE stream = ? ORDER BY seq`,
    ),
    firstKey: db.prepare(
      `SELECT ${AUDIT_KEY_COLUMNS} FROM audit_keys ORDER BY created_at, key_id LIMIT 1`,
    ),
    insertKey: db.prepare(`INSERT INTO audit_keys (${AUDIT_KEY_COLUMNS}) VALUES (?, ?, ?, ?)`),
  };

  // Check-then-insert in one BEGIN IMMEDIATE transaction: a second writer, in this or another
  // process, waits for the first to commit and then finds its key.
  const saveKey = db.transaction((key: AuditSigningKey, createdAt: number): AuditSigningKey => {
    const existing = sql.firstKey.get() as Row | undefined;
    if (existing !== undefined) return toAuditSigningKey(existing);
    sql.insertKey.run(key.keyId, key.privateKeyPem, key.publicKeyPem, createdAt);
    return { keyId: key.keyId, privateKeyPem: key.privateKeyPem, publicKeyPem: key.publicKeyPem };
  });

  const writer: SqliteAuditWriter =
    options.file === undefined
      ? createInlineWriter(db, target)
      : new SqliteAuditWriterThread({
          path: options.file,
          busyTimeoutMs: options.busyTimeoutMs,
          appendTimeoutMs: options.busyTimeoutMs + APPEND_TIMEOUT_EXTRA_MS,
        });

  async function write(action: string, request: SqliteAuditWrite): Promise<number> {
    options.assertOpen(action);
    return writer.execute(request, action);
  }

  const repository: AuditRepository = {
    append: async (records: readonly AuditRecord[], checkpoint?: AuditCheckpoint) => {
      const batch: SqliteAuditBatch = {
        records: records.map(toAuditRecordParams),
        checkpoint: checkpoint === undefined ? undefined : toAuditCheckpointParams(checkpoint),
      };
      if (batch.records.length === 0 && batch.checkpoint === undefined) return;
      await write('append audit records', { op: 'append', batch });
    },
    head: async (name) => {
      const stream = checkStream(name);
      const row = run('read the audit head', () => sql.head.get(stream) as Row | undefined);
      return row === undefined ? undefined : toAuditRecord(row);
    },
    query: async (query) => {
      const { text, values } = buildAuditQuery(query, SQLITE_DIALECT);
      return run('query the audit log', () => db.prepare(text).all(values) as Row[]).map(
        toAuditRecord,
      );
    },
    readStream: async (name, fromSeq, limit) => {
      const stream = checkStream(name);
      assertSeq('fromSeq', fromSeq, 0);
      checkLimit(limit);
      return run(
        'read an audit stream',
        () => sql.readStream.all(stream, fromSeq, limit) as Row[],
      ).map(toAuditRecord);
    },
    streams: async () => run('list audit streams', () => sql.streams.all() as string[]),
    checkpoints: async (name) => {
      const stream = checkStream(name);
      return run('list audit checkpoints', () => sql.checkpoints.all(stream) as Row[]).map(
        toAuditCheckpoint,
      );
    },
    prune: async (name, throughSeq, marker) => {
      const stream = checkStream(name);
      assertSeq('throughSeq', throughSeq, 0);
      const markerParams =
        marker === undefined ? undefined : toPruneMarkerParams(stream, throughSeq, marker);
      return write('prune the audit log', {
        op: 'prune',
        stream,
        throughSeq,
        marker: markerParams,
      });
    },
    signingKey: async () => {
      const row = run('read the audit signing key', () => sql.firstKey.get() as Row | undefined);
      return row === undefined ? undefined : toAuditSigningKey(row);
    },
    saveSigningKey: async (key) => {
      assertAuditSigningKey(key);
      return run('save the audit signing key', () => saveKey.immediate(key, options.now()));
    },
  };

  return {
    repository,
    close: () => writer.close(),
  };
}

interface SqliteAuditWriter {
  execute(write: SqliteAuditWrite, action: string): Promise<number>;
  close(): Promise<void>;
}

function createInlineWriter(db: Database, target: string): SqliteAuditWriter {
  const writes = prepareSqliteAuditWrites(db);
  return {
    async execute(write, action) {
      try {
        return writes.execute(write);
      } catch (cause) {
        throw toStoreError(cause, action, target, isSqliteDuplicateKey(cause));
      }
    },
    close: async () => undefined,
  };
}
