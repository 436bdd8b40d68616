/**
 * `warden audit verify|export|public-key`: check the forensic audit log for tampering, against
 * the store or offline from an export and the public key alone; export it as verifiable JSONL or
 * as OCSF for a SIEM; print the audit public key to pin it somewhere the log's writers cannot
 * reach. `verify` exits 0 when the log is intact, 1 when it is not, 2 on a usage mistake.
 */
import { createWriteStream, readFileSync, renameSync, rmSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { Command, CommanderError } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { auditKeyId, loadOrCreateAuditKey, parsePublicKey } from '../audit/checkpoint.js';
import { AuditError } from '../audit/errors.js';
import { readAuditExport, writeAuditExport, writeOcsfExport } from '../audit/export.js';
import { repositoryVerifyInput, snapshotStreams } from '../audit/read-stream.js';
import { verifyAuditLog, type VerifyReport } from '../audit/verify.js';
import { runCliAction, UsageError, withStore } from './keys.js';

const DEFAULT_CONFIG = 'warden.yaml';
/** Below this many records verification is quick enough to need no progress bar. */
const LARGE_LOG = 10_000;

interface VerifyOptions {
  readonly config?: string;
  readonly file?: string;
  readonly publicKey?: string;
  readonly json?: boolean;
}

interface ExportOptions {
  readonly config: string;
  readonly out: string;
  readonly format: string;
}

export function registerAuditCommand(program: Command): void {
  const audit = program
    .command('audit')
    .description('verify and export the tamper-evident audit log')
    // Usage mistakes exit 2 (1 means "not intact"); subcommands made below inherit this.
    .exitOverride((error: CommanderError) => process.exit(error.exitCode === 0 ? 0 : 2));

  audit
    .command('verify')
    .description(
      'check every record, link and signed checkpoint; report the first bad sequence number (exit 0 intact, 1 not, 2 usage)',
    )
    .option('-c, --config <file>', `verify the configured store (default ${DEFAULT_CONFIG})`)
    .option('-f, --file <export>', 'verify a JSONL export offline (needs --public-key)')
    .option('--public-key <file>', 'the audit public key (PEM) to trust')
    .option('--json', 'print the report as JSON')
    .action((options: VerifyOptions) => runAuditAction(() => verifyCommand(options)));

  audit
    .command('export')
    .description('export the audit log: verifiable JSONL (records and checkpoints) or OCSF')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .requiredOption('-o, --out <file>', 'where to write the export (- for stdout)')
    .option('--format <format>', 'jsonl (verifiable) or ocsf (API Activity, class 6003)', 'jsonl')
    .action((options: ExportOptions) => runAuditAction(() => exportCommand(options)));

  audit
    .command('public-key')
    .description('print the audit public key (PEM), created on first use; pin it for verify')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .action((options: { config: string }) =>
      runAuditAction(async () => {
        await withStore(loadConfigFile(options.config), async (store) => {
          const key = await loadOrCreateAuditKey(store.audit);
          process.stdout.write(key.publicKeyPem);
          process.stderr.write(`audit key id ${key.keyId}\n`);
        });
      }),
    );
}

async function verifyCommand(options: VerifyOptions): Promise<void> {
  if (options.file !== undefined && options.config !== undefined) {
    throw new UsageError('give either --config (the store) or --file (an export), not both');
  }
  const trustedPem = options.publicKey === undefined ? undefined : readPublicKey(options.publicKey);
  let report: VerifyReport;
  if (options.file !== undefined) {
    if (trustedPem === undefined) {
      throw new UsageError(
        '--file needs --public-key KEY.pem: the key to trust must not come from the file itself',
      );
    }
    const file = await readAuditExport(options.file);
    if (file.header.keyId !== auditKeyId(trustedPem)) {
      process.stderr.write(
        `warning: the export names audit key ${file.header.keyId}, not the given key ${auditKeyId(trustedPem)}\n`,
      );
    }
    report = await withProgress(file.recordCount, (onProgress) =>
      verifyAuditLog({ streams: file.streams, publicKeyPem: trustedPem, onProgress }),
    );
  } else {
    report = await verifyStore(options.config ?? DEFAULT_CONFIG, trustedPem);
  }
  process.stdout.write(
    options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report),
  );
  process.exitCode = report.ok ? 0 : 1;
}

async function verifyStore(
  configFile: string,
  trustedPem: string | undefined,
): Promise<VerifyReport> {
  let report = emptyReport();
  await withStore(loadConfigFile(configFile), async (store) => {
    const snapshots = await snapshotStreams(store.audit);
    const publicKeyPem = trustedPem ?? (await store.audit.signingKey())?.publicKeyPem;
    if (publicKeyPem === undefined) {
      if (snapshots.length === 0) return;
      throw new AuditError(
        'AUDIT_KEY_INVALID',
        'the store has audit records but no audit key: give --public-key',
      );
    }
    if (trustedPem === undefined) {
      process.stderr.write(
        'note: verifying with the key kept in the same store; pin it (warden audit public-key) and pass --public-key for an independent check\n',
      );
    }
    const total = snapshots.reduce((sum, { head }) => sum + (head?.seq ?? 0), 0);
    report = await withProgress(total, (onProgress) =>
      verifyAuditLog({
        streams: repositoryVerifyInput(store.audit, snapshots),
        publicKeyPem,
        onProgress,
      }),
    );
  });
  return report;
}

async function exportCommand(options: ExportOptions): Promise<void> {
  if (options.format !== 'jsonl' && options.format !== 'ocsf') {
    throw new UsageError(`--format must be jsonl or ocsf, not "${options.format}"`);
  }
  const config = loadConfigFile(options.config);
  await withStore(config, async (store) => {
    const summary = await writeTo(options.out, async (out) =>
      options.format === 'ocsf'
        ? writeOcsfExport(store.audit, out)
        : writeAuditExport(store.audit, out, {
            publicKeyPem: (await loadOrCreateAuditKey(store.audit)).publicKeyPem,
          }),
    );
    process.stderr.write(
      `exported ${summary.records} records and ${summary.checkpoints} checkpoints of ${summary.streams} stream(s)\n`,
    );
  });
}

/** Writes through a temporary file renamed at the end, so a failed export leaves no partial file. */
async function writeTo<T>(path: string, write: (out: Writable) => Promise<T>): Promise<T> {
  if (path === '-') return write(process.stdout);
  const partial = `${path}.partial`;
  const out = createWriteStream(partial, { mode: 0o600 });
  try {
    const result = await write(out);
    out.end();
    await finished(out);
    renameSync(partial, path);
    return result;
  } catch (error) {
    out.destroy();
    rmSync(partial, { force: true });
    throw error;
  }
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

function emptyReport(): VerifyReport {
  return { ok: true, keyId: '-', recordsChecked: 0, streams: [] };
}

function formatReport(report: VerifyReport): string {
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
  const bad = report.streams.find((stream) => stream.problem);
  lines.push(
    bad?.problem
      ? `audit log NOT intact: first bad seq ${bad.problem.seq} in stream ${bad.stream} (${bad.problem.kind})`
      : `audit log intact: ${report.recordsChecked} records in ${report.streams.length} stream(s), key ${report.keyId}`,
  );
  return `${lines.join('\n')}\n`;
}

/** Runs `work` with a progress bar on stderr when it is a terminal and the log is large. */
async function withProgress<T>(
  total: number,
  work: (onProgress: ((checked: number) => void) | undefined) => Promise<T>,
): Promise<T> {
  if (!process.stderr.isTTY || total < LARGE_LOG) return work(undefined);
  const width = 30;
  let lastDraw = 0;
  const draw = (checked: number): void => {
    const now = Date.now();
    if (now - lastDraw < 100 && checked < total) return;
    lastDraw = now;
    const ratio = Math.min(1, checked / total);
    const filled = Math.round(ratio * width);
    process.stderr.write(
      `\rverifying [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(ratio * 100)}% ${checked}/${total} records`,
    );
  };
  try {
    return await work(draw);
  } finally {
    process.stderr.write('\r\x1b[K');
  }
}

/**
 * Runs an audit subcommand: a usage mistake exits 2, an audit error (unreadable export, bad key)
 * exits 1 with one line; the rest is handled as for every command.
 */
function runAuditAction(action: () => Promise<void>): Promise<void> {
  return runCliAction(async () => {
    try {
      await action();
    } catch (error) {
      if (error instanceof UsageError) {
        process.stderr.write(`warden: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (error instanceof AuditError) {
        process.stderr.write(`warden: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw error;
    }
  });
}
