/**
 * Compares the chain in the store with a witness file (see witness.ts). Every witnessed head
 * must still be in the chain, at its seq, with the same hash: a chain rewritten and re-signed by
 * whoever can write the store diverges from what was witnessed before, and a chain cut short
 * ends before it. The witness itself is checked too: each entry signed by the audit key, no line
 * damaged, and no checkpoint of the store missing from it.
 */
import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import type { AuditRepository } from '../store/types.js';
import { verifyCheckpoint } from './checkpoint.js';
import { AuditError } from './errors.js';
import { readPrunedPrefix } from './pruned-prefix.js';
import type { WitnessEntry } from './witness.js';

export type WitnessProblemKind =
  /** A line is not a witness entry (damaged, or cut off by a truncation). */
  | 'malformed_line'
  /** A witnessed entry is not signed by the audit key. */
  | 'bad_signature'
  /** The chain holds another record at a witnessed seq: it was rewritten. */
  | 'chain_diverges'
  /** The chain ends before a witnessed seq: records were cut off. */
  | 'chain_shorter'
  /** The store holds a checkpoint the witness lacks: witness lines were lost or removed. */
  | 'missing_in_witness';

export interface WitnessProblem {
  readonly kind: WitnessProblemKind;
  readonly stream: string | undefined;
  readonly seq: number | undefined;
  readonly detail: string;
}

export interface WitnessReport {
  readonly ok: boolean;
  readonly path: string;
  readonly entries: number;
  /** Witnessed heads found in the chain with the same hash. */
  readonly matched: number;
  /** Witnessed heads within an archived prefix (in the archive, not in the store). */
  readonly archived: number;
  /** Streams with checkpoints in the store but none in the witness (e.g. CLI streams). */
  readonly unwitnessedStreams: readonly string[];
  /** The first problem of each stream, and every damaged line. */
  readonly problems: readonly WitnessProblem[];
}

type WitnessSource = Pick<AuditRepository, 'streams' | 'head' | 'checkpoints' | 'readStream'>;

interface ParsedWitness {
  readonly entries: WitnessEntry[];
  readonly problems: WitnessProblem[];
}

/** Reads a witness file; a missing or unreadable file throws AUDIT_WITNESS_INVALID. */
export async function readWitnessFile(path: string): Promise<ParsedWitness> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new AuditError('AUDIT_WITNESS_INVALID', `cannot read the audit witness ${path}`, {
      cause,
    });
  }
  const lines = text.split('\n');
  const last = lines.pop();
  const entries: WitnessEntry[] = [];
  const problems: WitnessProblem[] = [];
  const damaged = (lineNo: number, why: string): void => {
    problems.push({
      kind: 'malformed_line',
      stream: undefined,
      seq: undefined,
      detail: `witness line ${lineNo} ${why}`,
    });
  };
  lines.forEach((line, index) => {
    const entry = parseEntry(line);
    if (entry) entries.push(entry);
    else damaged(index + 1, 'is not a witness entry');
  });
  if (last !== undefined && last !== '') {
    damaged(lines.length + 1, 'is cut off (no newline at the end): the file was truncated');
  }
  return { entries, problems };
}

function parseEntry(line: string): WitnessEntry | undefined {
  try {
    const value = JSON.parse(line) as Partial<WitnessEntry>;
    const { stream, seq, headHash, time, keyId, signature } = value;
    return typeof stream === 'string' &&
      Number.isSafeInteger(seq) &&
      typeof headHash === 'string' &&
      typeof time === 'string' &&
      typeof keyId === 'string' &&
      typeof signature === 'string'
      ? { stream, seq: seq as number, headHash, time, keyId, signature }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Compares the store's chain with the witness file at `path`, signatures checked with `publicKey`. */
export async function verifyAgainstWitness(
  repository: WitnessSource,
  path: string,
  publicKey: KeyObject,
): Promise<WitnessReport> {
  const parsed = await readWitnessFile(path);
  const problems = [...parsed.problems];
  const byStream = new Map<string, WitnessEntry[]>();
  for (const entry of parsed.entries) {
    byStream.set(entry.stream, [...(byStream.get(entry.stream) ?? []), entry]);
  }
  let matched = 0;
  let archived = 0;
  for (const [stream, entries] of byStream) {
    entries.sort((a, b) => a.seq - b.seq);
    const outcome = await compareStream(repository, stream, entries, publicKey);
    matched += outcome.matched;
    archived += outcome.archived;
    if (outcome.problem) problems.push(outcome.problem);
  }
  const unwitnessedStreams: string[] = [];
  for (const stream of await repository.streams()) {
    if (byStream.has(stream)) continue;
    if ((await repository.checkpoints(stream)).length > 0) unwitnessedStreams.push(stream);
  }
  return Object.freeze({
    ok: problems.length === 0,
    path,
    entries: parsed.entries.length,
    matched,
    archived,
    unwitnessedStreams,
    problems,
  });
}

interface StreamOutcome {
  matched: number;
  archived: number;
  problem: WitnessProblem | undefined;
}

async function compareStream(
  repository: WitnessSource,
  stream: string,
  entries: readonly WitnessEntry[],
  publicKey: KeyObject,
): Promise<StreamOutcome> {
  const outcome: StreamOutcome = { matched: 0, archived: 0, problem: undefined };
  const problem = (kind: WitnessProblemKind, seq: number, detail: string): StreamOutcome => ({
    ...outcome,
    problem: { kind, stream, seq, detail },
  });
  const head = await repository.head(stream);
  const first = (await repository.readStream(stream, 1, 1))[0];
  const firstSeq = first?.seq ?? 1;
  for (const entry of entries) {
    if (!verifyCheckpoint(entry, publicKey)) {
      return problem(
        'bad_signature',
        entry.seq,
        `the witnessed checkpoint ${stream}#${entry.seq} is not signed by the audit key in use (it names key ${entry.keyId})`,
      );
    }
    if (first !== undefined && entry.seq < firstSeq) {
      outcome.archived++;
      continue;
    }
    if (head === undefined || entry.seq > head.seq) {
      return problem(
        'chain_shorter',
        entry.seq,
        `the chain of ${stream} ends at seq ${head?.seq ?? 0}, but the witness holds its head at seq ${entry.seq}: records were cut off`,
      );
    }
    const record = (await repository.readStream(stream, entry.seq, 1))[0];
    const prefix = record && record.seq === firstSeq ? readPrunedPrefix(record) : undefined;
    const hash = prefix?.throughSeq === entry.seq ? prefix.lastHash : record?.hash;
    if (record?.seq !== entry.seq || hash !== entry.headHash) {
      return problem(
        'chain_diverges',
        entry.seq,
        record?.seq !== entry.seq
          ? `the chain of ${stream} has no record at the witnessed seq ${entry.seq}`
          : `the chain of ${stream} diverges from the witness at seq ${entry.seq}: the witness holds head hash ${entry.headHash}, the store ${String(hash)} (the chain was rewritten)`,
      );
    }
    outcome.matched++;
  }
  const witnessed = new Set(entries.map((entry) => entry.seq));
  const fromSeq = entries[0]?.seq ?? 0;
  const missing = (await repository.checkpoints(stream)).find(
    (checkpoint) => checkpoint.seq >= fromSeq && !witnessed.has(checkpoint.seq),
  );
  if (missing) {
    return problem(
      'missing_in_witness',
      missing.seq,
      `the store holds checkpoint ${stream}#${missing.seq}, but the witness does not: witness entries were lost or removed`,
    );
  }
  return outcome;
}
