/**
 * Text as a lenient tool may read it. Policy comparisons that grant (allow-lists, `in`,
 * `in_list`) stay exact; comparisons that restrict (a `when` that applies a cap, a hand-written
 * forbid reading `context.normalized`) use the normal form here, so that a near-miss
 * ('Acme Supplies GmbH ', a fullwidth or differently cased name, a zero-width space) falls on the
 * restrictive side. Constrained arguments carrying characters a tool may silently drop are
 * refused outright by default (`findSuspiciousText`).
 */

/** Invisible characters a tool, a terminal or a comparison may drop: format (Cf), default-ignorable, lone surrogates. */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cs}]/gu;
/** Runs of whitespace and control characters: one space in the normal form. */
const SPACING = /[\s\p{Z}\p{Cc}]+/gu;
const EDGE_SPACE = /^[\s\p{Z}]|[\s\p{Z}]$/u;
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}]/u;
const INVISIBLE_ANYWHERE = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cs}]/u;
/** Rounds of normalisation before giving up on a fixpoint (case mapping can denormalise once). */
const MAX_ROUNDS = 4;

/**
 * The normal form restrictive comparisons use: Unicode NFKC, invisible and format characters
 * removed, case-folded, whitespace and control characters collapsed to one space, trimmed.
 * Idempotent: the normal form of a normal form is itself.
 */
export function normaliseText(text: string): string {
  let current = text;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const next = normaliseOnce(current);
    if (next === current) return next;
    current = next;
  }
  return current;
}

function normaliseOnce(text: string): string {
  return (
    text
      .normalize('NFKC')
      .replace(INVISIBLE, '')
      // Upper then lower: a full case fold for what a plain toLowerCase leaves (ß → ss, ς → σ).
      .toUpperCase()
      .toLowerCase()
      .normalize('NFKC')
      .replace(SPACING, ' ')
      .trim()
  );
}

/** Why a string is refused as an argument the policy compares; undefined when it is plain text. */
export type SuspiciousText = 'edge whitespace' | 'control character' | 'invisible character';

/**
 * Leading or trailing whitespace (NBSP included), control characters (newline and tab
 * included), and invisible, format or bidi characters (ZWSP, ZWJ, U+202E, soft hyphen, BOM).
 */
export function findSuspiciousText(text: string): SuspiciousText | undefined {
  if (EDGE_SPACE.test(text)) return 'edge whitespace';
  if (CONTROL.test(text)) return 'control character';
  if (INVISIBLE_ANYWHERE.test(text)) return 'invisible character';
  return undefined;
}

/** A number as a lenient tool reads it from text: decimal, exponent, or 0x/0o/0b. */
const NUMERIC_TEXT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|0x[0-9a-f]+|0o[0-7]+|0b[01]+)$/;

/**
 * The key under which a restrictive condition compares a value: text by its normal form, a
 * number (or text a tool would read as one: "1e3", " 1000.0 ") by its value, booleans (or
 * "TRUE") as such. Equal values always share a key; near-misses may too, which is the point.
 */
export function restrictiveKey(value: unknown): string | undefined {
  if (typeof value === 'boolean') return `b:${value}`;
  if (typeof value === 'number') return numberKey(value);
  if (typeof value !== 'string') return undefined;
  const text = normaliseText(value);
  if (NUMERIC_TEXT.test(text)) {
    const unsigned = text.replace(/^[+-]/, '');
    const magnitude = Number(unsigned);
    const key = numberKey(text.startsWith('-') ? -magnitude : magnitude);
    if (key !== undefined) return key;
  }
  if (text === 'true' || text === 'false') return `b:${text}`;
  return `s:${text}`;
}

function numberKey(value: number): string | undefined {
  if (!Number.isFinite(value)) return undefined;
  // -0 and 0 are one value to every tool.
  return `n:${value === 0 ? 0 : value}`;
}

/**
 * Does `value` meet a restrictive condition listing `keys` (from `restrictiveKey`)? A list
 * meets it when any of its items does, since a tool may take the one it expects.
 */
export function meetsRestrictiveCondition(value: unknown, keys: ReadonlySet<string>): boolean {
  if (Array.isArray(value)) return value.some((item) => meetsRestrictiveCondition(item, keys));
  const key = restrictiveKey(value);
  return key !== undefined && keys.has(key);
}
