/**
 * The audit log as a forensic timeline: one line per record (time, event, request, who, which
 * tool, the decision, latency, error), in fixed-width columns so that a followed log (`warden
 * audit tail --follow`) lines up with the header printed once at the start.
 */
import { parseDuration } from '../config/duration.js';
import type { AuditRecord } from '../domain/audit-record.js';
import { toTerminalText } from './terminal-text.js';

interface Column {
  readonly title: string;
  /** Cells longer than this are cut with '…'; the last column is never padded or cut. */
  readonly width: number;
  readonly cell: (record: AuditRecord) => string | undefined;
}

/** A request id as the timeline shows it: enough to tell calls apart, short enough to read. */
export function shortRequestId(requestId: string): string {
  return requestId.slice(0, 8);
}

const COLUMNS: readonly Column[] = [
  { title: 'TIME', width: 24, cell: (record) => record.time },
  { title: 'EVENT', width: 23, cell: (record) => record.event },
  {
    title: 'REQUEST',
    width: 8,
    cell: (record) =>
      record.requestId === undefined ? undefined : shortRequestId(record.requestId),
  },
  { title: 'USER', width: 24, cell: (record) => record.user },
  { title: 'AGENT', width: 20, cell: (record) => record.agent },
  { title: 'TOOL', width: 24, cell: (record) => record.tool ?? methodUnlessCall(record) },
  { title: 'DECISION', width: 17, cell: (record) => record.decision?.effect },
  {
    title: 'LATENCY',
    width: 9,
    cell: (record) => (record.latencyMs === undefined ? undefined : `${record.latencyMs} ms`),
  },
  {
    title: 'ERROR',
    width: 0,
    cell: (record) => record.errorCode ?? (record.result?.isError ? 'tool error' : undefined),
  },
];

/** For calls without a tool (initialize, tools/list), the method says what was asked. */
function methodUnlessCall(record: AuditRecord): string | undefined {
  return record.method === undefined ? undefined : `(${record.method})`;
}

function fit(text: string, width: number, last: boolean): string {
  if (last) return text;
  const chars = [...text];
  const cut = chars.length > width ? `${chars.slice(0, width - 1).join('')}…` : text;
  return cut.padEnd(width);
}

function formatRow(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((cell, index) => fit(cell, widths[index] ?? 0, index === COLUMNS.length - 1))
    .join('  ')
    .trimEnd();
}

/** The cells of a record's line; caller-chosen text is made safe to print. */
function cellsOf(record: AuditRecord): string[] {
  return COLUMNS.map((column) => toTerminalText(column.cell(record) ?? '-'));
}

const TITLES = COLUMNS.map((column) => column.title);
const MAX_WIDTHS = COLUMNS.map((column) => column.width);

/** The header line of a followed timeline, whose rows come later: every column at full width. */
export function formatTimelineHeader(): string {
  return formatRow(TITLES, MAX_WIDTHS);
}

/** One record as a line of a followed timeline, lined up with `formatTimelineHeader`. */
export function formatTimelineRow(record: AuditRecord): string {
  return formatRow(cellsOf(record), MAX_WIDTHS);
}

/** The records as a table, each column as wide as its content needs (up to its maximum). */
export function formatTimeline(records: readonly AuditRecord[]): string {
  const rows = records.map(cellsOf);
  const widths = COLUMNS.map((column, index) =>
    Math.min(
      column.width,
      Math.max(column.title.length, ...rows.map((row) => [...(row[index] ?? '')].length)),
    ),
  );
  return [TITLES, ...rows]
    .map((row) => formatRow(row, widths))
    .join('\n')
    .concat('\n');
}

/** A date (UTC midnight), or a date and time with `Z` or an offset, as the store accepts. */
const ISO_TIME =
  /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;
/** `1h`, `30m`, `7d`, optionally followed by `ago`. */
const AGO = /^(\d+(?:\.\d+)?\s*(?:ms|s|m|h|d))(?:[\s-]*ago)?$/;

/**
 * A time bound given on the command line: ISO 8601 (a date, or a date and time with a zone) as
 * is, or a duration (`1h`, `7d`, `30m ago`) meaning that long before `now`. Undefined when the
 * value is neither; a zone-less time is refused, as it would name a different instant per host.
 */
export function resolveTimeBound(value: string, now: number): string | undefined {
  const text = value.trim();
  const ago = AGO.exec(text);
  if (ago) {
    const ms = parseDuration(ago[1] ?? '');
    return ms === undefined ? undefined : new Date(now - ms).toISOString();
  }
  return ISO_TIME.test(text) && !Number.isNaN(Date.parse(text)) ? text : undefined;
}

/** Orders records as a timeline: by time, then stream and seq (as the store's query does). */
export function compareTimeline(a: AuditRecord, b: AuditRecord): number {
  const byTime = Date.parse(a.time) - Date.parse(b.time);
  if (byTime !== 0) return byTime;
  if (a.stream !== b.stream) return a.stream < b.stream ? -1 : 1;
  return a.seq - b.seq;
}
