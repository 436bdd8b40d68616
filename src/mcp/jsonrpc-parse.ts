/**
 * Turns a request body into one validated JSON-RPC message, or a specific WardenError.
 *
 * What the policy judges is the parsed value, and what an upstream receives is that value
 * serialised again (JSON.stringify), never the client's text. So a client message is accepted only
 * when the two cannot differ: no number the round trip would change (1e999 parses as Infinity and
 * is sent as null; 9007199254740993 is sent as 9007199254740992), no lone UTF-16 surrogate (an
 * upstream may read it as U+FFFD or refuse it), and no nesting deeper than the limit (a
 * recursive reader downstream, the audit log's canonical hashing among them, would exhaust its
 * stack). These are judged on the whole text, values a repeated key overrides included. A key
 * repeated in an object is not itself refused: JSON.parse keeps the last value, and that one
 * value is what the policy judges and the upstream receives.
 */
import { WardenError } from '../domain/errors.js';
import type { JsonRpcMessage } from '../domain/jsonrpc.js';

/** Deepest nesting of objects and arrays accepted in a client message (`limits.max_json_depth`). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export interface ClientMessageLimits {
  /** Deepest nesting of objects and arrays; the message object itself is depth 1. */
  readonly maxDepth: number;
}

/** Parses text received from a client; batches are refused (MCP removed them in 2025-06-18). */
export function parseClientMessage(
  body: string,
  limits: ClientMessageLimits = { maxDepth: DEFAULT_MAX_JSON_DEPTH },
): JsonRpcMessage {
  // The text is scanned before it is parsed, so a hostile nesting costs one linear pass, not a
  // deep structure built and then walked.
  const scan = scanJsonText(body, limits.maxDepth);
  if (scan.tooDeep) {
    throw new WardenError('WARDEN_NESTING_TOO_DEEP', undefined, {
      details: { maxDepth: limits.maxDepth },
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new WardenError('WARDEN_PARSE_ERROR');
  }
  if (scan.inexactNumber !== undefined) {
    throw new WardenError('WARDEN_NUMBER_OUT_OF_RANGE', undefined, {
      details: { ...scan.inexactNumber },
    });
  }
  if (scan.loneSurrogate) throw new WardenError('WARDEN_INVALID_UNICODE');
  if (Array.isArray(value)) throw new WardenError('WARDEN_BATCH_UNSUPPORTED');
  const problem = describeInvalidMessage(value);
  if (problem !== undefined)
    throw new WardenError('WARDEN_INVALID_MESSAGE', `Invalid JSON-RPC message: ${problem}.`);
  return value as JsonRpcMessage;
}

/** Parses text received from an upstream; anything malformed is an upstream protocol error. */
export function parseUpstreamMessage(text: string): JsonRpcMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR');
  }
  if (describeInvalidMessage(value) !== undefined)
    throw new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR');
  return value as JsonRpcMessage;
}

/** Returns what is wrong with a would-be JSON-RPC message, or undefined when it is well formed. */
export function describeInvalidMessage(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return 'expected a JSON object';
  const message = value as Record<string, unknown>;
  if (message['jsonrpc'] !== '2.0') return 'jsonrpc must be "2.0"';
  const hasId = 'id' in message;
  const id = message['id'];
  if (
    hasId &&
    !(typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) || id === null)
  ) {
    return 'id must be a string or a number';
  }
  if ('params' in message) {
    const params = message['params'];
    if (params === null || typeof params !== 'object' || Array.isArray(params))
      return 'params must be an object';
  }
  if ('method' in message) {
    if (typeof message['method'] !== 'string' || message['method'] === '')
      return 'method must be a non-empty string';
    if (hasId && id === null) return 'a request id must not be null';
    return undefined;
  }
  if (!hasId) return 'expected a request, a notification or a response';
  const hasResult = 'result' in message;
  const hasError = 'error' in message;
  if (hasResult === hasError) return 'a response carries exactly one of result or error';
  if (hasError) {
    const error = message['error'] as Record<string, unknown> | null;
    if (
      error === null ||
      typeof error !== 'object' ||
      typeof error['code'] !== 'number' ||
      typeof error['message'] !== 'string'
    ) {
      return 'error must have a numeric code and a message';
    }
  }
  return undefined;
}

/** Why a number cannot be relayed as written, and where it starts in the body. */
export interface InexactNumber {
  /**
   * overflow: beyond ±1.8e308; underflow: not zero, but nearer zero than 5e-324; precision: more
   * significant digits than a 64-bit float keeps.
   */
  readonly reason: 'overflow' | 'underflow' | 'precision';
  /** Offset of the number in the body, in UTF-16 code units. */
  readonly offset: number;
}

interface TextScan {
  readonly tooDeep: boolean;
  /** The first number the parse-and-serialise round trip would change. */
  readonly inexactNumber: InexactNumber | undefined;
  /** A string (or key) holds half a surrogate pair, written raw or as a \u escape. */
  readonly loneSurrogate: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const PLUS = 0x2b;
const POINT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_U = 0x75;

/**
 * One pass over JSON text: the nesting depth (stops at the first level past `maxDepth`), the
 * first number that would not survive the round trip, and any lone surrogate. The whole text is
 * judged, a value a repeated key overrides included. Malformed text is left for JSON.parse.
 */
function scanJsonText(text: string, maxDepth: number): TextScan {
  let depth = 0;
  let inexactNumber: InexactNumber | undefined;
  let loneSurrogate = false;
  let index = 0;
  while (index < text.length) {
    const code = text.charCodeAt(index);
    if (code === QUOTE) {
      const string = scanString(text, index + 1);
      loneSurrogate ||= string.loneSurrogate;
      index = string.end;
      continue;
    }
    if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth += 1;
      if (depth > maxDepth) return { tooDeep: true, inexactNumber, loneSurrogate };
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth -= 1;
    } else if (code === MINUS || (code >= DIGIT_0 && code <= DIGIT_9)) {
      const end = numberEnd(text, index + 1);
      if (inexactNumber === undefined) {
        const reason = describeInexactNumber(text.slice(index, end));
        if (reason !== undefined) inexactNumber = { reason, offset: index };
      }
      index = end;
      continue;
    }
    index += 1;
  }
  return { tooDeep: false, inexactNumber, loneSurrogate };
}

/**
 * The index just past the string whose contents start at `index`, and whether the UTF-16 units
 * it stands for (raw, or written as \u escapes, which JSON.parse joins alike) hold a lone half
 * of a surrogate pair.
 */
function scanString(text: string, index: number): { end: number; loneSurrogate: boolean } {
  let awaitingLow = false;
  let lone = false;
  while (index < text.length) {
    let unit = text.charCodeAt(index);
    if (unit === QUOTE) break;
    if (unit === BACKSLASH) {
      const escaped = text.charCodeAt(index + 1);
      const hex = escaped === LOWER_U ? text.slice(index + 2, index + 6) : '';
      unit = /^[0-9a-fA-F]{4}$/.test(hex) ? Number.parseInt(hex, 16) : 0;
      index += hex === '' ? 2 : 6;
    } else {
      index += 1;
    }
    const isHigh = unit >= 0xd800 && unit <= 0xdbff;
    const isLow = unit >= 0xdc00 && unit <= 0xdfff;
    if (awaitingLow && !isLow) lone = true;
    if (!awaitingLow && isLow) lone = true;
    awaitingLow = isHigh;
  }
  return { end: index + 1, loneSurrogate: lone || awaitingLow };
}

/** The index just past a number token's characters (digits, sign, point, exponent). */
function numberEnd(text: string, index: number): number {
  while (index < text.length && isNumberCharacter(text.charCodeAt(index))) index += 1;
  return index;
}

function isNumberCharacter(code: number): boolean {
  return (
    (code >= DIGIT_0 && code <= DIGIT_9) ||
    code === MINUS ||
    code === PLUS ||
    code === POINT ||
    code === LOWER_E ||
    code === UPPER_E
  );
}

/**
 * Whether the double JSON.parse makes of `token` prints back as the same decimal value, as the
 * forwarded JSON would print it. `0.1` does (the double prints as 0.1), `1.0` does (as 1);
 * `9007199254740993` does not (9007199254740992), nor `1e999` (Infinity, sent as null).
 */
function describeInexactNumber(token: string): InexactNumber['reason'] | undefined {
  // Without an exponent and with at most 15 digits, a decimal always survives (a double keeps
  // 15 significant digits): the common case costs a length check.
  if (!token.includes('e') && !token.includes('E')) {
    const digits = token.length - (token.startsWith('-') ? 1 : 0) - (token.includes('.') ? 1 : 0);
    if (digits <= 15) return undefined;
  }
  const value = Number(token);
  if (Number.isNaN(value)) return undefined;
  if (!Number.isFinite(value)) return 'overflow';
  const denoted = normaliseDecimal(token);
  if (denoted === undefined || denoted.digits === '') return undefined;
  if (value === 0) return 'underflow';
  const printed = normaliseDecimal(String(value));
  return printed?.digits === denoted.digits && printed.exponent === denoted.exponent
    ? undefined
    : 'precision';
}

/** A decimal as significant digits (no leading or trailing zeros) times a power of ten. */
function normaliseDecimal(text: string): { digits: string; exponent: number } | undefined {
  const match = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) return undefined;
  const fraction = match[2] ?? '';
  const all = `${match[1] ?? ''}${fraction}`;
  let exponent = Number(match[3] ?? '0') - fraction.length;
  let start = 0;
  while (start < all.length && all.charCodeAt(start) === DIGIT_0) start += 1;
  let end = all.length;
  while (end > start && all.charCodeAt(end - 1) === DIGIT_0) {
    end -= 1;
    exponent += 1;
  }
  return { digits: all.slice(start, end), exponent };
}
