/**
 * What of a call's arguments reaches the audit log. Configured paths are replaced by
 * '[redacted]'; so are, by default, values under keys named like credentials (password, secret,
 * token, api_key, authorization, …) and substrings that look like secrets (JWTs, bearer and basic
 * credentials, AWS access key ids, PEM blocks, provider tokens such as sk-…, ghp_…, xox…-, AIza…,
 * and long high-entropy hex or base64 runs). Over-redaction is the accepted failure mode.
 *
 * The log also keeps a keyed hash of the unredacted arguments, HMAC-SHA256 over their canonical
 * JSON: two calls with equal arguments show equal hashes, so an investigator can correlate them,
 * while nobody without the key can test a guess (a phone number, an IBAN) against the log.
 */
import { createHmac } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json.js';
import { AuditError } from './errors.js';

export const REDACTED = '[redacted]';

export interface ArgumentRedactorOptions {
  /** The HMAC key for argumentsHash, at least 16 bytes; keep it out of the audit store. */
  readonly hashKey: Buffer;
  /**
   * Dotted paths from the arguments' root to redact: 'recipient.iban', 'card.*' (every member of
   * card), '**.iban' (at any depth). Arrays are transparent: 'recipients.iban' reaches the iban
   * of every element; a numeric segment names one index.
   */
  readonly redactPaths?: readonly string[];
  /** Longer strings are cut (after secret detection), with a note of how much was cut. */
  readonly maxStringLength?: number;
  /** Redact secret-looking values and credential-named keys; on unless set to false. */
  readonly detectSecrets?: boolean;
}

export interface RedactedArguments {
  readonly arguments: unknown;
  /** HMAC-SHA256 (base64url) of the unredacted arguments' canonical JSON. */
  readonly argumentsHash: string;
}

export interface ArgumentRedactor {
  redact(args: unknown): RedactedArguments;
  /** The keyed hash alone (e.g. for an approval, which binds the arguments it approved). */
  hashArguments(args: unknown): string;
  /** A redacted copy of any JSON value (e.g. a result excerpt), without hashing it. */
  redactValue(value: unknown): unknown;
}

const DEFAULT_MAX_STRING_LENGTH = 4096;
/** Deeper values are replaced, so a hostile nesting cannot exhaust the stack. */
const MAX_DEPTH = 64;
const TOO_DEEP = '[too deep]';
const MIN_HASH_KEY_BYTES = 16;

/** Key names (lowercased, punctuation removed) that hold credentials wherever they appear. */
const CREDENTIAL_KEY_PARTS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'apikey',
  'authorization',
  'privatekey',
  'accesskey',
  'credential',
  'cookie',
  'bearer',
];

interface SecretPattern {
  readonly pattern: RegExp;
  /** Extra test on a match, to spare look-alikes. */
  readonly accept?: (match: string) => boolean;
  /** Keep capture group 1 (e.g. the auth scheme) before the '[redacted]'. */
  readonly keepPrefix?: boolean;
}

const hasDigit = (text: string): boolean => /\d/.test(text);

/** Every pattern is linear: no nested quantifiers, so no catastrophic backtracking. */
const SECRET_PATTERNS: readonly SecretPattern[] = [
  { pattern: /-----BEGIN [A-Z0-9 ]{1,40}-----[\s\S]*?(?:-----END [A-Z0-9 ]{1,40}-----|$)/g },
  { pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*/gi, accept: hasDigit, keepPrefix: true },
  { pattern: /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}/g },
  { pattern: /\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g },
  { pattern: /\bsk-[A-Za-z0-9_-]{20,}/g, accept: hasDigit },
  { pattern: /\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}/g },
  { pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/g },
  { pattern: /\bglpat-[A-Za-z0-9_-]{20,}/g },
  { pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
  { pattern: /\bAIza[0-9A-Za-z_-]{35}/g },
  { pattern: /[A-Za-z0-9+/_=-]{32,}/g, accept: looksRandom },
];

/** A redactor with the given key and paths; the options are copied, the input never mutated. */
export function createArgumentRedactor(options: ArgumentRedactorOptions): ArgumentRedactor {
  if (!Buffer.isBuffer(options.hashKey) || options.hashKey.length < MIN_HASH_KEY_BYTES) {
    throw new AuditError(
      'AUDIT_KEY_INVALID',
      `the arguments hash key must be at least ${MIN_HASH_KEY_BYTES} bytes`,
    );
  }
  const hashKey = Buffer.from(options.hashKey);
  const paths = (options.redactPaths ?? []).map(parsePath);
  const maxStringLength = options.maxStringLength ?? DEFAULT_MAX_STRING_LENGTH;
  const detectSecrets = options.detectSecrets ?? true;

  const redactString = (text: string): string => {
    const redacted = detectSecrets ? redactSecrets(text) : text;
    return truncate(redacted, maxStringLength);
  };

  const redactNode = (value: unknown, matches: readonly PathMatch[], depth: number): unknown => {
    if (typeof value === 'string') return redactString(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= MAX_DEPTH) return TOO_DEEP;
    if (Array.isArray(value)) {
      return value.map((item, index) => {
        const next = matches.flatMap((match) => advanceInArray(match, String(index)));
        return next.some(isComplete) ? REDACTED : redactNode(item, next, depth + 1);
      });
    }
    // Built as entries: an assignment to a "__proto__" key (which JSON.parse makes an own key,
    // and the upstream receives) would set the copy's prototype and drop the key from the record.
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([key, member]) => {
        const next = matches.flatMap((match) => advance(match, key));
        const redacted =
          next.some(isComplete) || (detectSecrets && isCredentialKey(key))
            ? REDACTED
            : redactNode(member, next, depth + 1);
        return [key, redacted];
      }),
    );
  };

  const rootMatches: PathMatch[] = paths.map((segments) => ({ segments, index: 0 }));
  const hashArguments = (args: unknown): string =>
    createHmac('sha256', hashKey).update(canonicalJson(args), 'utf8').digest('base64url');
  const redactValue = (value: unknown): unknown => redactNode(value, rootMatches, 0);

  return Object.freeze({
    redact: (args: unknown): RedactedArguments =>
      Object.freeze({ arguments: redactValue(args), argumentsHash: hashArguments(args) }),
    hashArguments,
    redactValue,
  });
}

/** Replaces every secret-looking substring with '[redacted]'. */
export function redactSecrets(text: string): string {
  let result = text;
  for (const { pattern, accept, keepPrefix } of SECRET_PATTERNS) {
    result = result.replace(pattern, (match: string, prefix: unknown) => {
      if (accept && !accept(match)) return match;
      return keepPrefix && typeof prefix === 'string' ? `${prefix} ${REDACTED}` : REDACTED;
    });
  }
  return result;
}

/** True for key names that hold credentials: password, client_secret, X-Api-Key, accessToken… */
export function isCredentialKey(key: string): boolean {
  const name = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return name.endsWith('token') || CREDENTIAL_KEY_PARTS.some((part) => name.includes(part));
}

/**
 * A long run that is plausibly random: hex with letters and digits, or base64 with upper case,
 * lower case and digits and high per-character entropy (words and paths stay below it).
 */
function looksRandom(run: string): boolean {
  const core = run.replace(/=+$/, '');
  if (/^[0-9a-f]+$/i.test(core)) return /\d/.test(core) && /[a-f]/i.test(core);
  if (!/[a-z]/.test(core) || !/[A-Z]/.test(core) || !/\d/.test(core)) return false;
  return shannonEntropy(core) >= 4.2;
}

function shannonEntropy(text: string): number {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  let entropy = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    entropy -= p * Math.log2(p);
  }
  return entropy;
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  // Never split a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(text.charAt(max - 1)) ? max - 1 : max;
  return `${text.slice(0, end)}…[${text.length - end} more characters]`;
}

interface PathMatch {
  readonly segments: readonly string[];
  readonly index: number;
}

function parsePath(path: string): readonly string[] {
  const segments = path.split('.');
  if (segments.some((segment) => segment === '')) {
    throw new AuditError('AUDIT_INVALID_ENTRY', `invalid redaction path "${path}"`);
  }
  return segments;
}

const isComplete = (match: PathMatch): boolean => match.index === match.segments.length;

/** The states a path can be in after descending into member `key`. */
function advance(match: PathMatch, key: string): PathMatch[] {
  const segment = match.segments[match.index];
  if (segment === undefined) return [];
  if (segment === '**') {
    // '**' consumes this key and stays, or matches nothing and lets the next segment try it.
    return [match, ...advance({ ...match, index: match.index + 1 }, key)];
  }
  return segment === '*' || segment === key ? [{ ...match, index: match.index + 1 }] : [];
}

/** Arrays are transparent to name segments: the path applies to every element. */
function advanceInArray(match: PathMatch, index: string): PathMatch[] {
  const segment = match.segments[match.index];
  if (segment === undefined) return [];
  if (segment === '*' || segment === '**' || /^\d+$/.test(segment)) return advance(match, index);
  return [match];
}
