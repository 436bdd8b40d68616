/**
 * Audit append throughput with durability on, as a group-committing writer drives it: one stream,
 * one batch in flight at a time, each batch one durable transaction.
 *
 *   node --import tsx bench/audit-bench.ts [--seconds 3] [--batches 16,256]
 *     [--backends sqlite,sqlite-inline,postgres] [--postgres postgres://root@127.0.0.1:5432/test]
 *     [--markdown] [--json FILE]
 *
 * --markdown prints the table as Markdown (bench/run.ts runs it so at the end of `npm run bench`);
 * --json also writes the rows to FILE (bench/run.ts reads one durable commit's p50 from it).
 *
 * - sqlite: the store as shipped: a file in a temp dir, WAL, synchronous=FULL, writes on the audit
 *   writer thread.
 * - sqlite-inline: the same write code (prepareSqliteAuditWrites) on the main thread, which is what
 *   the writer thread replaced; its event-loop block per batch is why.
 * - postgres: a fresh schema, dropped afterwards; synchronous_commit as the server has it (on by
 *   default).
 *
 * Records are realistic (~600 bytes of canonical JSON, hash-chained with SHA-256); each batch is
 * built before its append starts and only appends are timed, so records/s is the store's rate for
 * one writer. "call blocks" is how long append() runs before returning its promise (for
 * sqlite-inline that is the whole transaction with its fsync). "loop busy/batch" is the event
 * loop's active time (eventLoopUtilization) during an append, including garbage collection and
 * the reply: time the gateway's other calls could not use. "max stall" is the longest event-loop
 * delay seen (including the bench's own batch building).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { canonicalJson } from '../src/domain/canonical-json.js';
import { toAuditRecordParams } from '../src/store/audit-rows.js';
import { openStore } from '../src/store/open-store.js';
import { prepareSqliteAuditWrites } from '../src/store/sqlite/sqlite-audit-writes.js';

type BackendName = 'sqlite' | 'sqlite-inline' | 'postgres';

interface Settings {
  readonly seconds: number;
  readonly batches: readonly number[];
  readonly backends: readonly BackendName[];
  readonly postgresUrl: string;
  readonly markdown: boolean;
  readonly json: string | undefined;
}

/** Appends one batch durably; resolves when committed. */
interface Appender {
  append(records: readonly AuditRecord[]): Promise<void>;
  close(): Promise<void>;
}

interface Result {
  readonly backend: BackendName;
  readonly batch: number;
  readonly appends: number;
  readonly recordsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly blockP50Ms: number;
  readonly blockMaxMs: number;
  readonly loopBusyMsPerBatch: number;
  readonly maxStallMs: number;
}

/** Never more than this many records per row, whatever --seconds says (bounds disk use). */
const MAX_RECORDS = 500_000;
const WARMUP_APPENDS = 20;

function parseSettings(): Settings {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      batches: { type: 'string', default: '16,256' },
      backends: { type: 'string', default: 'sqlite,sqlite-inline,postgres' },
      markdown: { type: 'boolean', default: false },
      json: { type: 'string' },
      postgres: {
        type: 'string',
        default: process.env['WARDEN_TEST_POSTGRES_URL'] ?? 'postgres://root@127.0.0.1:5432/test',
      },
    },
  });
  const known: readonly BackendName[] = ['sqlite', 'sqlite-inline', 'postgres'];
  const backends = values.backends.split(',').map((name) => {
    if (!(known as readonly string[]).includes(name)) throw new Error(`unknown backend ${name}`);
    return name as BackendName;
  });
  return {
    seconds: Number(values.seconds),
    batches: values.batches.split(',').map(Number),
    backends,
    postgresUrl: values.postgres,
    markdown: values.markdown,
    json: values.json,
  };
}

/** A chain of realistic call.allowed records: what a busy gateway writes most. */
function createChain(stream: string): (count: number) => AuditRecord[] {
  let seq = 0;
  let prevHash = '0'.repeat(64);
  return (count) =>
    Array.from({ length: count }, () => {
      seq += 1;
      const entry = {
        stream,
        seq,
        prevHash,
        event: 'call.allowed' as const,
        time: new Date().toISOString(),
        requestId: randomUUID(),
        traceId: randomBytes(16).toString('hex'),
        user: 'ada@example.com',
        agent: 'research-bot',
        roles: ['research'],
        upstream: 'crm',
        method: 'tools/call',
        tool: 'search_customers',
        arguments: { query: 'renewals due in Q3', limit: 25 },
        argumentsHash: randomBytes(32).toString('base64url'),
        decision: {
          effect: 'allow' as const,
          reasons: ['research may read the CRM'],
          policies: ['permit-research-crm-read'],
        },
        latencyMs: 4,
      };
      const hash = createHash('sha256').update(canonicalJson(entry)).digest('hex');
      prevHash = hash;
      return { ...entry, hash };
    });
}

async function openAppender(
  backend: BackendName,
  settings: Settings,
  cleanups: (() => Promise<void>)[],
): Promise<Appender> {
  if (backend === 'postgres') {
    const schema = `warden_audit_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
    const store = await openStore(settings.postgresUrl, { schema });
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: settings.postgresUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    });
    return { append: (records) => store.audit.append(records), close: () => store.close() };
  }
  const directory = mkdtempSync(join(tmpdir(), 'warden-audit-bench-'));
  cleanups.push(async () => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, 'warden.db');
  const store = await openStore(`sqlite:${path}`);
  if (backend === 'sqlite') {
    return { append: (records) => store.audit.append(records), close: () => store.close() };
  }
  // The rejected design, for comparison: the same writes, on this thread, on a connection set up
  // as the store sets up its own.
  await store.close();
  const db = new Database(path, { timeout: 5000 });
  db.pragma('synchronous = FULL');
  const writes = prepareSqliteAuditWrites(db);
  return {
    append: async (records) => {
      writes.execute({
        op: 'append',
        batch: { records: records.map(toAuditRecordParams), checkpoint: undefined },
      });
    },
    close: async () => void db.close(),
  };
}

async function measure(backend: BackendName, batch: number, settings: Settings): Promise<Result> {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const appender = await openAppender(backend, settings, cleanups);
    const next = createChain(`bench-${backend}-${batch}`);
    for (let i = 0; i < WARMUP_APPENDS; i += 1) await appender.append(next(batch));

    // Each batch is built (and hashed) before its append starts; only the appends are timed, and
    // the event loop's busy time is summed over the appends alone.
    const latencies: number[] = [];
    /** How long each append() call ran before returning its promise: the caller's tick, blocked. */
    const blocks: number[] = [];
    let loopBusyMs = 0;
    let appendedMs = 0;
    const stalls = monitorEventLoopDelay({ resolution: 1 });
    stalls.enable();
    const deadline = performance.now() + settings.seconds * 1000;
    for (let records = 0; records < MAX_RECORDS && performance.now() < deadline; records += batch) {
      const batchRecords = next(batch);
      const loopBefore = performance.eventLoopUtilization();
      const sent = performance.now();
      const appended = appender.append(batchRecords);
      blocks.push(performance.now() - sent);
      await appended;
      const latency = performance.now() - sent;
      loopBusyMs += performance.eventLoopUtilization(loopBefore).active;
      appendedMs += latency;
      latencies.push(latency);
    }
    stalls.disable();
    await appender.close();

    latencies.sort((a, b) => a - b);
    blocks.sort((a, b) => a - b);
    const at = (q: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
    return {
      backend,
      batch,
      appends: latencies.length,
      recordsPerSecond: (latencies.length * batch) / (appendedMs / 1000),
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      blockP50Ms: blocks[Math.floor(blocks.length / 2)] ?? 0,
      blockMaxMs: blocks.at(-1) ?? 0,
      loopBusyMsPerBatch: loopBusyMs / latencies.length,
      maxStallMs: stalls.max / 1e6,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

function printTable(results: readonly Result[], markdown: boolean): void {
  const header = [
    'backend',
    'batch',
    'appends',
    'records/s',
    'p50 ms',
    'p99 ms',
    'call blocks p50/max ms',
    'loop busy/batch ms',
    'max stall ms',
  ];
  const rows = results.map((r) => [
    r.backend,
    String(r.batch),
    String(r.appends),
    Math.round(r.recordsPerSecond).toLocaleString('en-US'),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    `${r.blockP50Ms.toFixed(2)}/${r.blockMaxMs.toFixed(1)}`,
    r.loopBusyMsPerBatch.toFixed(3),
    r.maxStallMs.toFixed(1),
  ]);
  if (markdown) {
    console.log(`| ${header.join(' | ')} |`);
    console.log(
      `|---|${header
        .slice(1)
        .map(() => '---:|')
        .join('')}`,
    );
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
    return;
  }
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) =>
        column < 1 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

const settings = parseSettings();
const recordBytes = Buffer.byteLength(canonicalJson(createChain('size')(1)[0]));
console.log(
  `audit appends, durable, one batch in flight; ${recordBytes} bytes of canonical JSON per record; ` +
    `${settings.seconds} s per row`,
);
const results: Result[] = [];
for (const backend of settings.backends) {
  for (const batch of settings.batches) results.push(await measure(backend, batch, settings));
}
printTable(results, settings.markdown);
if (settings.json !== undefined) writeFileSync(settings.json, `${JSON.stringify(results)}\n`);
