/**
 * `warden audit verify|export|public-key|query|show|tail|archive`: check the forensic audit log
 * for tampering, against the store or offline from an export and the public key alone; export it
 * as verifiable JSONL or as OCSF for a SIEM; print the audit public key to pin it somewhere the
 * log's writers cannot reach; investigate it as a timeline, one call's story, or a live tail;
 * archive and prune its old part. `verify` exits 0 when the log is intact, 1 when it is not, 2 on
 * a usage mistake; `show` exits 1 when no record has the request id (or an id starting with
 * it), 2 when several ids start with it; `archive` exits 2 when it cannot write the archive (and
 * then prunes nothing).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { tellCallStory } from '../audit/call-story.js';
import { parsePublicKey } from '../audit/checkpoint.js';
import { AUDIT_EXPORT_FORMATS, type AuditExportFormat } from '../audit/export-audit-log.js';
import {
  AUDIT_QUERY_DEFAULT_LIMIT,
  AUDIT_QUERY_MAX_LIMIT,
  type AuditQuery,
} from '../audit/query-audit-log.js';
import {
  formatTimeline,
  formatTimelineHeader,
  formatTimelineRow,
  resolveTimeBound,
} from '../audit/timeline.js';
import { verifyAuditExport } from '../audit/verify-audit-export.js';
import type { StoreVerifyReport } from '../audit/verify-audit-store.js';
import { parseDuration } from '../config/duration.js';
import { AUDIT_EVENTS, type AuditRecord } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import {
  CONFIG_OPTION,
  DEFAULT_CONFIG_FILE,
  exitWithUsageCode,
  runCliAction,
  UsageError,
  withSession,
} from './operator.js';

/** Below this many records verification is quick enough to need no progress bar. */
const LARGE_LOG = 10_000;

interface VerifyOptions {
  readonly config?: string;
  readonly file?: string;
  readonly publicKey?: string;
  readonly witness?: string;
  readonly json?: boolean;
}

interface ExportOptions {
  readonly config: string;
  readonly out?: string;
  readonly format: string;
}

interface QueryOptions {
  readonly config: string;
  readonly user?: string;
  readonly agent?: string;
  readonly role?: string;
  readonly tool?: string;
  readonly upstream?: string;
  readonly event?: string;
  readonly effect?: string;
  readonly request?: string;
  readonly stream?: string;
  readonly since?: string;
  readonly until?: string;
  readonly limit: string;
  readonly oldest?: boolean;
  readonly format: string;
}

interface TailOptions {
  readonly config: string;
  readonly lines: string;
  readonly follow?: boolean;
  readonly interval: string;
  readonly format: string;
}

interface ArchiveOptions {
  readonly config: string;
  readonly before: string;
  readonly out: string;
  readonly publicKey?: string;
}

const EFFECTS = ['allow', 'deny', 'approval_required'] as const;
/** --follow polls no faster than this (the store is shared with the gateway) and no slower. */
const POLL_INTERVAL_MS = { min: 100, max: 60_000 } as const;

export function registerAuditCommand(program: Command): void {
  const audit = program
    .command('audit')
    .description('verify, export, investigate and archive the tamper-evident audit log')
    // Usage mistakes exit 2 (1 means "not intact"); subcommands made below inherit this.
    .exitOverride(exitWithUsageCode);

  audit
    .command('verify')
    .description(
      'check every record, link and signed checkpoint; report the first bad sequence number (exit 0 intact, 1 not, 2 usage)',
    )
    .option('-c, --config <file>', `verify the configured store (default ${DEFAULT_CONFIG_FILE})`)
    .option('-f, --file <export>', 'verify a JSONL export offline (needs --public-key)')
    .option('--public-key <file>', 'the audit public key (PEM) to trust')
    .option(
      '--witness <file>',
      "compare the chain with this witness file (default with --config: the config's audit.witness.file)",
    )
    .option('--json', 'print the report as JSON')
    .action((options: VerifyOptions) => runCliAction(() => verifyCommand(options)));

  audit
    .command('export')
    .description('export the audit log: verifiable JSONL (records and checkpoints) or OCSF')
    .option(...CONFIG_OPTION)
    .option('-o, --out <file>', 'the file to write the export to (default, or -: stdout)')
    .option('--format <format>', 'jsonl (verifiable) or ocsf (API Activity, class 6003)', 'jsonl')
    .action((options: ExportOptions) => runCliAction(() => exportCommand(options)));

  audit
    .command('public-key')
    .description('print the audit public key (PEM), created on first use; pin it for verify')
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        const key = await withSession(options.config, (session) => session.audit.publicKey());
        process.stdout.write(key.publicKeyPem);
        process.stderr.write(`audit key id ${key.keyId}\n`);
      }),
    );

  audit
    .command('query')
    .description(
      'find records as a timeline: the newest --limit matches (--oldest: the first ones), printed oldest first; every filter narrows the result',
    )
    .option(...CONFIG_OPTION)
    .option('--user <user>', 'the user on whose behalf the call was made')
    .option('--agent <agent>', 'the calling agent')
    .option('--role <role>', 'a role the caller held')
    .option('--tool <tool>', 'the tool (or resource URI, prompt) called')
    .option('--upstream <name>', 'the upstream server')
    .option('--event <event>', 'the event (call.allowed, call.denied, call.result, …)')
    .option('--effect <effect>', 'the decision: allow, deny or approval_required')
    .option('--request <id>', 'the request id shared by the records of one call')
    .option('--stream <stream>', "one gateway replica's stream")
    .option('--since <time>', 'from this time: ISO 8601, or a duration ago (1h, 7d)')
    .option('--until <time>', 'before this time: ISO 8601, or a duration ago')
    .option(
      '--limit <n>',
      `at most this many records (1–${AUDIT_QUERY_MAX_LIMIT})`,
      String(AUDIT_QUERY_DEFAULT_LIMIT),
    )
    .option('--oldest', 'the oldest matching records instead of the newest')
    .option('--format <format>', 'table (a timeline) or jsonl (records exactly as stored)', 'table')
    .action((options: QueryOptions) => runCliAction(() => queryCommand(options)));

  audit
    .command('show')
    .description('tell the whole story of one call: who, what, the decision and why, the outcome')
    .argument(
      '<request-id>',
      'the request id (x-request-id of the response), or its start as query and tail print it',
    )
    .option(...CONFIG_OPTION)
    .action((requestId: string, options: { config: string }) =>
      runCliAction(() => showCommand(requestId, options.config)),
    );

  audit
    .command('tail')
    .description('print the last records; with --follow, keep printing new ones until Ctrl-C')
    .option(...CONFIG_OPTION)
    .option('-n, --lines <n>', 'how many of the last records to print', '20')
    .option('-f, --follow', 'poll for new records until interrupted')
    .option(
      '--interval <duration>',
      `how often --follow polls (${POLL_INTERVAL_MS.min}ms to ${POLL_INTERVAL_MS.max / 1000}s)`,
      '1s',
    )
    .option('--format <format>', 'table or jsonl', 'table')
    .action((options: TailOptions) => runCliAction(() => tailCommand(options)));

  audit
    .command('archive')
    .description(
      'write the records older than a date to a verifiable export, then prune them from the store (leaving a signed audit.pruned marker)',
    )
    .option(...CONFIG_OPTION)
    .requiredOption(
      '--before <time>',
      'archive records older than this: ISO 8601, or a duration ago (90d)',
    )
    .requiredOption('-o, --out <file>', 'the archive to create (JSONL export); never overwritten')
    .option(
      '--public-key <file>',
      'the audit public key (PEM) to check the archive with before pruning (default: the key in the store)',
    )
    .action((options: ArchiveOptions) => runCliAction(() => archiveCommand(options)));
}

async function verifyCommand(options: VerifyOptions): Promise<void> {
  if (options.file !== undefined && options.config !== undefined) {
    throw new UsageError('give either --config (the store) or --file (an export), not both');
  }
  const trustedPem = options.publicKey === undefined ? undefined : readPublicKey(options.publicKey);
  if (options.file !== undefined && options.witness !== undefined) {
    throw new UsageError('--witness compares the chain in a store: give it with --config');
  }
  const progress = createProgressBar();
  let report: StoreVerifyReport;
  try {
    if (options.file !== undefined) {
      if (trustedPem === undefined) {
        throw new UsageError(
          '--file needs --public-key KEY.pem: the key to trust must not come from the file itself',
        );
      }
      const verified = await verifyAuditExport(options.file, {
        trustedPublicKeyPem: trustedPem,
        onStart: ({ records }) => progress.start(records),
      });
      if (verified.otherKeyId !== undefined) {
        process.stderr.write(
          `warning: the export names audit key ${verified.otherKeyId}, not the given key ${verified.report.keyId}\n`,
        );
      }
      report = verified.report;
    } else {
      report = await withSession(options.config ?? DEFAULT_CONFIG_FILE, (session) => {
        const witnessPath = options.witness ?? session.config.audit.witness?.file;
        return session.audit.verify({
          ...(trustedPem !== undefined && { trustedPublicKeyPem: trustedPem }),
          ...(witnessPath !== undefined && { witnessPath }),
          onStart: ({ records, keyFromStore }) => {
            if (keyFromStore) {
              process.stderr.write(
                'note: verifying with the key kept in the same store; pin it (warden audit public-key) and pass --public-key for an independent check\n',
              );
            }
            return progress.start(records);
          },
        });
      });
    }
  } finally {
    progress.end();
  }
  process.stdout.write(
    options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report),
  );
  process.exitCode = report.ok ? 0 : 1;
}

async function exportCommand(options: ExportOptions): Promise<void> {
  const format = options.format as AuditExportFormat;
  if (!AUDIT_EXPORT_FORMATS.includes(format)) {
    throw new UsageError(`--format must be jsonl or ocsf, not "${options.format}"`);
  }
  const summary = await withSession(options.config, (session) =>
    session.audit.export({
      format,
      to:
        options.out === undefined || options.out === '-'
          ? { stream: process.stdout }
          : { path: options.out },
    }),
  );
  process.stderr.write(
    `exported ${summary.records} records and ${summary.checkpoints} checkpoints of ${summary.streams} stream(s)\n`,
  );
}

async function queryCommand(options: QueryOptions): Promise<void> {
  const format = checkFormat(options.format);
  const limit = parseCount('--limit', options.limit, 1, AUDIT_QUERY_MAX_LIMIT);
  if (options.event !== undefined && !(AUDIT_EVENTS as readonly string[]).includes(options.event)) {
    throw new UsageError(`--event must be one of ${AUDIT_EVENTS.join(', ')}`);
  }
  if (options.effect !== undefined && !(EFFECTS as readonly string[]).includes(options.effect)) {
    throw new UsageError(`--effect must be one of ${EFFECTS.join(', ')}`);
  }
  const now = Date.now();
  const query: AuditQuery = {
    ...definedFields({
      user: options.user,
      agent: options.agent,
      role: options.role,
      tool: options.tool,
      upstream: options.upstream,
      event: options.event,
      effect: options.effect,
      requestId: options.request,
      stream: options.stream,
      from: options.since === undefined ? undefined : timeBound('--since', options.since, now),
      to: options.until === undefined ? undefined : timeBound('--until', options.until, now),
    }),
    limit,
    newest: options.oldest !== true,
  };
  const records = await withSession(options.config, (session) => session.audit.query(query));
  if (records.length === 0) {
    process.stderr.write('no audit records match\n');
    return;
  }
  process.stdout.write(format === 'jsonl' ? toJsonLines(records) : formatTimeline(records));
  if (records.length === limit) {
    const which = options.oldest === true ? 'oldest' : 'newest';
    process.stderr.write(
      `showing the ${which} ${limit} matching records, oldest first: narrow with --since/--until or raise --limit\n`,
    );
  }
}

async function showCommand(requestId: string, configFile: string): Promise<void> {
  const records = await withSession(configFile, (session) =>
    session.audit.findCallRecords(requestId),
  );
  if (records.length === 0) {
    process.stderr.write(
      `warden: no audit record has request id ${JSON.stringify(requestId)}, nor one starting with it (archived records are in their archive)\n`,
    );
    process.exitCode = 1;
    return;
  }
  process.stdout.write(tellCallStory(records));
}

async function tailCommand(options: TailOptions): Promise<void> {
  const format = checkFormat(options.format);
  const lines = parseCount('--lines', options.lines, 0, AUDIT_QUERY_MAX_LIMIT);
  const intervalMs = parseDuration(options.interval);
  if (
    intervalMs === undefined ||
    intervalMs < POLL_INTERVAL_MS.min ||
    intervalMs > POLL_INTERVAL_MS.max
  ) {
    throw new UsageError(
      `--interval must be a duration from ${POLL_INTERVAL_MS.min}ms to ${POLL_INTERVAL_MS.max / 1000}s`,
    );
  }
  const print = (records: readonly AuditRecord[]): void => {
    if (records.length === 0) return;
    process.stdout.write(
      format === 'jsonl'
        ? toJsonLines(records)
        : records.map((record) => `${formatTimelineRow(record)}\n`).join(''),
    );
  };
  await withSession(options.config, async (session) => {
    const tail = session.audit.tail();
    if (format === 'table') process.stdout.write(`${formatTimelineHeader()}\n`);
    print(await tail.latest(lines));
    if (!options.follow) return;
    await untilInterrupted(async ({ stopped, pause }) => {
      while (!stopped()) {
        print(await tail.poll());
        await pause(intervalMs);
      }
    });
  });
}

interface Interruptible {
  /** True once SIGINT or SIGTERM arrived, or stdout closed (e.g. piped into `head`). */
  stopped(): boolean;
  /** Waits `ms`, or less when stopped meanwhile, so Ctrl-C never waits for the poll interval. */
  pause(ms: number): Promise<void>;
}

/** Runs `loop` until interrupted; the loop ends at its next check, so the store closes cleanly. */
async function untilInterrupted(loop: (control: Interruptible) => Promise<void>): Promise<void> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  const pause = (ms: number): Promise<void> =>
    stopped
      ? Promise.resolve()
      : new Promise((done) => {
          const timer = setTimeout(finish, ms);
          function finish(): void {
            clearTimeout(timer);
            wake = undefined;
            done();
          }
          wake = finish;
        });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stdout.on('error', stop);
  try {
    await loop({ stopped: () => stopped, pause });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.stdout.off('error', stop);
  }
}

async function archiveCommand(options: ArchiveOptions): Promise<void> {
  const now = Date.now();
  const before = timeBound('--before', options.before, now);
  if (options.out === '-') {
    throw new UsageError('--out must be a file: the archive is synced to disk before pruning');
  }
  if (existsSync(options.out)) {
    throw new UsageError(`${options.out} exists already: an archive is never overwritten`);
  }
  const trustedPem = options.publicKey === undefined ? undefined : readPublicKey(options.publicKey);
  const outcome = await withSession(options.config, (session) =>
    session.audit.archive({
      before: Date.parse(before),
      path: options.out,
      ...(trustedPem !== undefined && { trustedPublicKeyPem: trustedPem }),
    }),
  );
  if (outcome === undefined) {
    process.stderr.write(
      `nothing to archive: no stream has a signed checkpoint whose records are all older than ${before}\n`,
    );
    return;
  }
  const { summary } = outcome;
  process.stderr.write(
    `wrote ${options.out}: ${summary.records} records and ${summary.checkpoints} checkpoints, synced and verified\n`,
  );
  for (const stream of outcome.streams) {
    process.stdout.write(
      `stream ${stream.stream}: archived seq ${stream.firstSeq}–${stream.throughSeq}, pruned ${stream.deleted} record(s); an audit.pruned marker at seq ${stream.throughSeq} stands in for them\n`,
    );
  }
  process.stdout.write(
    `keep ${options.out}: it is the only copy of those records (check it with warden audit verify --file ${options.out} --public-key KEY.pem)\n`,
  );
}

function checkFormat(format: string): 'table' | 'jsonl' {
  if (format !== 'table' && format !== 'jsonl') {
    throw new UsageError(`--format must be table or jsonl, not "${format}"`);
  }
  return format;
}

function parseCount(flag: string, value: string, min: number, max: number): number {
  const count = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(count) || count < min || count > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}`);
  }
  return count;
}

function timeBound(flag: string, value: string, now: number): string {
  const bound = resolveTimeBound(value, now);
  if (bound === undefined) {
    throw new UsageError(
      `${flag} must be an ISO 8601 date, or date and time with Z or an offset, or a duration ago (1h, 7d); got "${value}"`,
    );
  }
  return bound;
}

/** Records exactly as stored: the store keeps each one as its canonical JSON. */
function toJsonLines(records: readonly AuditRecord[]): string {
  return records.map((record) => `${canonicalJson(record)}\n`).join('');
}

/** The fields whose value is defined (exactOptionalPropertyTypes: absent, never undefined). */
function definedFields<T extends Record<string, string | undefined>>(
  fields: T,
): { [K in keyof T]?: string } {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: string;
  };
}

function readPublicKey(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `cannot read the public key ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  parsePublicKey(pem);
  return pem;
}

function formatReport(report: StoreVerifyReport): string {
  const lines = report.streams.map((stream) => {
    const range =
      stream.firstSeq === undefined ? 'no records' : `seq ${stream.firstSeq}–${stream.headSeq}`;
    if (stream.problem) {
      const { seq, kind, detail } = stream.problem;
      return `stream ${stream.stream}: NOT INTACT at seq ${seq}: ${kind}: ${detail}`;
    }
    const sealed =
      stream.lastCheckpointSeq === undefined
        ? 'no signed checkpoint'
        : `last checkpoint at seq ${stream.lastCheckpointSeq}`;
    const unsealed =
      stream.unsealedRecords > 0
        ? `, ${stream.unsealedRecords} record(s) after it not yet sealed`
        : '';
    const pruned =
      stream.prunedThroughSeq === undefined ? '' : `, seq 1–${stream.prunedThroughSeq} archived`;
    return `stream ${stream.stream}: intact, ${stream.recordsChecked} records (${range})${pruned}, ${sealed}${unsealed}`;
  });
  if (report.keyProblem !== undefined) lines.push(`audit key NOT trusted: ${report.keyProblem}`);
  lines.push(...formatWitness(report));
  const bad = report.streams.find((stream) => stream.problem);
  lines.push(
    !report.ok && bad === undefined
      ? 'audit log NOT intact: see the witness or key problems above'
      : bad?.problem
        ? `audit log NOT intact: first bad seq ${bad.problem.seq} in stream ${bad.stream} (${bad.problem.kind})`
        : `audit log intact: ${report.recordsChecked} records in ${report.streams.length} stream(s), key ${report.keyId}`,
  );
  return `${lines.join('\n')}\n`;
}

function formatWitness(report: StoreVerifyReport): string[] {
  const { witness } = report;
  if (witness === undefined) return [];
  const lines = witness.problems.map(
    (problem) => `witness ${witness.path}: MISMATCH: ${problem.kind}: ${problem.detail}`,
  );
  if (witness.ok) {
    lines.push(
      `witness ${witness.path}: ${witness.matched} witnessed head(s) found in the chain${witness.archived > 0 ? `, ${witness.archived} archived` : ''}`,
    );
  }
  if (witness.unwitnessedStreams.length > 0) {
    lines.push(`note: stream(s) never witnessed: ${witness.unwitnessedStreams.join(', ')}`);
  }
  return lines;
}

interface ProgressBar {
  /** The function to tell of the records checked so far, when a bar is drawn for `total`. */
  start(total: number): ((checked: number) => void) | undefined;
  /** Clears the bar, if one was drawn. */
  end(): void;
}

/** A progress bar on stderr, drawn only when it is a terminal and the log is large. */
function createProgressBar(): ProgressBar {
  const width = 30;
  let drawn = false;
  return {
    start(total) {
      if (!process.stderr.isTTY || total < LARGE_LOG) return undefined;
      drawn = true;
      let lastDraw = 0;
      return (checked) => {
        const now = Date.now();
        if (now - lastDraw < 100 && checked < total) return;
        lastDraw = now;
        const ratio = Math.min(1, checked / total);
        const filled = Math.round(ratio * width);
        process.stderr.write(
          `\rverifying [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(ratio * 100)}% ${checked}/${total} records`,
        );
      };
    },
    end() {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
}
