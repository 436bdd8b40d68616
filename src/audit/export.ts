/**
 * Audit exports. The JSONL export is verifiable offline with the public key alone:
 *
 *   {"type":"header","format":"warden-audit-export","version":1,"exportedAt":…,"keyId":…,
 *    "publicKey":"-----BEGIN PUBLIC KEY-----…","streams":[{"stream":…,"headSeq":…},…]}
 *   {"type":"checkpoint",…}   a stream's checkpoints up to its exported head, then
 *   {"type":"record",…}       its records in seq order; then the next stream.
 *
 * Every line is canonical JSON. Checkpoints precede their records, so cutting the file short
 * removes records a checkpoint still vouches for, and verification reports the truncation; a
 * stream whose records were cut in the store keeps its checkpoints in the export, for the same. The
 * header's public key is informative only: a verifier must use a key it trusts, never the file's.
 *
 * The OCSF export is one OCSF API Activity event (class 6003) per line, for SIEMs.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { AuditCheckpoint, AuditRecord } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import type { AuditRepository } from '../store/types.js';
import { auditKeyId } from './checkpoint.js';
import { AuditError } from './errors.js';
import { toOcsfApiActivity } from './ocsf.js';
import { readStreamRecords, snapshotStreams } from './read-stream.js';
import type { AuditStreamInput } from './verify.js';

export const AUDIT_EXPORT_FORMAT = 'warden-audit-export';
export const AUDIT_EXPORT_VERSION = 1;

export interface AuditExportHeader {
  readonly type: 'header';
  readonly format: typeof AUDIT_EXPORT_FORMAT;
  readonly version: typeof AUDIT_EXPORT_VERSION;
  readonly exportedAt: string;
  readonly keyId: string;
  /** SPKI PEM of the audit key at export time; informative, not a trust anchor. */
  readonly publicKey: string;
  readonly streams: readonly { readonly stream: string; readonly headSeq: number }[];
}

export interface AuditExportSummary {
  readonly streams: number;
  readonly records: number;
  readonly checkpoints: number;
}

type AuditExportSource = Pick<AuditRepository, 'streams' | 'head' | 'checkpoints' | 'readStream'>;

export interface WriteAuditExportOptions {
  readonly publicKeyPem: string;
  /** The streams to export (default: all). */
  readonly streams?: readonly string[];
  readonly now?: () => number;
  readonly pageSize?: number;
  /** Called with the number of records written so far, now and then. */
  readonly onProgress?: (written: number) => void;
}

/** Writes the JSONL export of the repository's streams, each up to its head at the start. */
export async function writeAuditExport(
  repository: AuditExportSource,
  out: Writable,
  options: WriteAuditExportOptions,
): Promise<AuditExportSummary> {
  const snapshots = await snapshotStreams(repository, options.streams);
  const header: AuditExportHeader = {
    type: 'header',
    format: AUDIT_EXPORT_FORMAT,
    version: AUDIT_EXPORT_VERSION,
    exportedAt: new Date((options.now ?? Date.now)()).toISOString(),
    keyId: auditKeyId(options.publicKeyPem),
    publicKey: options.publicKeyPem,
    streams: snapshots.map(({ stream, head }) => ({ stream, headSeq: head?.seq ?? 0 })),
  };
  await writeLine(out, canonicalJson(header));
  let records = 0;
  let checkpoints = 0;
  for (const { stream, head, checkpoints: streamCheckpoints } of snapshots) {
    for (const checkpoint of streamCheckpoints) {
      await writeLine(out, canonicalJson({ ...checkpoint, type: 'checkpoint' }));
      checkpoints++;
    }
    for await (const record of readStreamRecords(
      repository,
      stream,
      pageOptions(options, head?.seq ?? 0),
    )) {
      await writeLine(out, canonicalJson({ ...record, type: 'record' }));
      if (++records % 1000 === 0) options.onProgress?.(records);
    }
  }
  options.onProgress?.(records);
  return { streams: snapshots.length, records, checkpoints };
}

/** Writes every record as an OCSF API Activity event, one per line. */
export async function writeOcsfExport(
  repository: AuditExportSource,
  out: Writable,
  options: { readonly streams?: readonly string[]; readonly pageSize?: number } = {},
): Promise<AuditExportSummary> {
  const snapshots = await snapshotStreams(repository, options.streams);
  let records = 0;
  for (const { stream, head } of snapshots) {
    for await (const record of readStreamRecords(
      repository,
      stream,
      pageOptions(options, head?.seq ?? 0),
    )) {
      await writeLine(out, JSON.stringify(toOcsfApiActivity(record)));
      records++;
    }
  }
  return { streams: snapshots.length, records, checkpoints: 0 };
}

export interface AuditExportFile {
  readonly header: AuditExportHeader;
  /** Records in the file, over all streams (for a progress bar). */
  readonly recordCount: number;
  /** The verify input: give it to verifyAuditLog with a public key from a trusted place. */
  readonly streams: AsyncIterable<AuditStreamInput>;
}

/**
 * Reads a JSONL export for verification: one pass now for the header and checkpoints, then one
 * streaming pass per stream as verification reads it, so the file is never held in memory.
 * Rejects with AUDIT_EXPORT_INVALID when the file is not an export or a line is not JSON.
 */
export async function readAuditExport(path: string): Promise<AuditExportFile> {
  let header: AuditExportHeader | undefined;
  const checkpoints = new Map<string, AuditCheckpoint[]>();
  const streamsSeen = new Set<string>();
  let recordCount = 0;
  for await (const { line, number } of readLines(path)) {
    if (number === 1) {
      header = parseHeader(line, path);
      continue;
    }
    const { type, ...item } = parseLine(line, number, path);
    if (type === 'record') {
      streamsSeen.add(streamKey(item));
      recordCount++;
    } else if (type === 'checkpoint') {
      const stream = streamKey(item);
      streamsSeen.add(stream);
      const list = checkpoints.get(stream) ?? [];
      list.push(item as unknown as AuditCheckpoint);
      checkpoints.set(stream, list);
    } else {
      throw exportError(path, number, `unknown line type ${JSON.stringify(type)}`);
    }
  }
  if (!header) throw exportError(path, 1, 'the file is empty');
  const exportHeader: AuditExportHeader = header;
  const declared = new Map(exportHeader.streams.map(({ stream, headSeq }) => [stream, headSeq]));
  const order = [...new Set([...declared.keys(), ...streamsSeen])];
  return {
    header: exportHeader,
    recordCount,
    streams: (async function* () {
      for (const stream of order) {
        const headSeq = declared.get(stream);
        yield {
          stream,
          checkpoints: checkpoints.get(stream) ?? [],
          records: readExportRecords(path, stream),
          ...(headSeq === undefined ? {} : { expectedHeadSeq: headSeq }),
        };
      }
    })(),
  };
}

async function* readExportRecords(path: string, stream: string): AsyncGenerator<AuditRecord> {
  for await (const { line, number } of readLines(path)) {
    if (number === 1) continue;
    const { type, ...item } = parseLine(line, number, path);
    if (type === 'record' && streamKey(item) === stream) yield item as unknown as AuditRecord;
  }
}

async function* readLines(path: string): AsyncGenerator<{ line: string; number: number }> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let number = 0;
  try {
    for await (const line of lines) {
      number++;
      if (line.trim() === '') continue;
      yield { line, number };
    }
  } catch (cause) {
    throw new AuditError('AUDIT_EXPORT_INVALID', `cannot read ${path}`, { cause });
  } finally {
    lines.close();
    input.destroy();
  }
}

function parseLine(line: string, number: number, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw exportError(path, number, 'not valid JSON (the file was cut or edited)');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw exportError(path, number, 'not a JSON object');
  }
  return value as Record<string, unknown>;
}

function parseHeader(line: string, path: string): AuditExportHeader {
  const header = parseLine(line, 1, path);
  if (header['type'] !== 'header' || header['format'] !== AUDIT_EXPORT_FORMAT) {
    throw exportError(path, 1, 'not a Warden audit export (no header line)');
  }
  if (header['version'] !== AUDIT_EXPORT_VERSION) {
    throw exportError(path, 1, `unsupported export version ${String(header['version'])}`);
  }
  const streams = header['streams'];
  if (
    !Array.isArray(streams) ||
    !streams.every(
      (entry: { stream?: unknown; headSeq?: unknown } | null) =>
        typeof entry?.stream === 'string' && Number.isSafeInteger(entry.headSeq),
    )
  ) {
    throw exportError(path, 1, 'the header does not list its streams');
  }
  return header as unknown as AuditExportHeader;
}

/** The stream a line names; a line without one forms a stream of its own (and fails there). */
function streamKey(item: Record<string, unknown>): string {
  return typeof item['stream'] === 'string' ? item['stream'] : '(no stream)';
}

function exportError(path: string, line: number, problem: string): AuditError {
  return new AuditError('AUDIT_EXPORT_INVALID', `${path}, line ${line}: ${problem}`);
}

function pageOptions(
  options: { readonly pageSize?: number },
  throughSeq: number,
): { throughSeq: number; pageSize?: number } {
  return options.pageSize === undefined
    ? { throughSeq }
    : { throughSeq, pageSize: options.pageSize };
}

async function writeLine(out: Writable, line: string): Promise<void> {
  if (!out.write(`${line}\n`)) await once(out, 'drain');
}
