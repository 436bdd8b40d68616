/**
 * Resource URIs in one normal form (RFC 3986 §6.2.2), so the policy judges the resource the
 * upstream will read. Harmless differences are normalised: scheme and host lower-cased,
 * percent-encoded unreserved characters decoded, the hex of the other escapes upper-cased, an
 * empty port dropped, non-ASCII text percent-encoded as UTF-8 (the RFC 3987 mapping an SDK
 * server's `new URL()` applies too). What a server could resolve differently from the string the
 * policy sees is refused, never guessed at: dot segments (`.`, `..`, also `..;`), empty segments
 * (`//`), encoded dots, slashes and backslashes, backslashes, double encoding, invalid or non-UTF-8
 * escapes, control, whitespace, invisible and Unicode-compatibility characters (fullwidth dots),
 * user information and escapes in the authority, fragments, and a `.`/`..` piece in the query.
 * A URI of a special scheme (http, https, ws, wss, ftp, file) then takes the form a WHATWG URL
 * parser gives it, as an SDK server's lookup does: default port dropped, `file://localhost/` and
 * `file:/` as `file:///`, numeric IPv4 hosts dotted.
 */
import type { Decision } from '../domain/decision.js';

export type UriNormalisation =
  { readonly ok: true; readonly uri: string } | { readonly ok: false; readonly problem: string };

export interface UriNormalisationOptions {
  /** A URI template (RFC 6570): `{…}` expressions are kept as written. */
  readonly template?: boolean;
  /** A grant's prefix: its last segment may be cut short, so it is not taken for a dot segment. */
  readonly prefix?: boolean;
}

/** The id under which a refused resource URI is recorded in a decision's policies. */
export const RESOURCE_URI_POLICY = 'warden.resource_uri';

/** A denial of an ambiguous resource URI, before any grant is consulted. */
export function refuseResourceUri(problem: string, policyVersion?: string): Decision {
  return {
    effect: 'deny',
    reasons: [`the resource URI is refused as ambiguous: ${problem}`],
    policies: [RESOURCE_URI_POLICY],
    ...(policyVersion !== undefined && { policyVersion }),
  };
}

class AmbiguousUri extends Error {}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const UNRESERVED = /[A-Za-z0-9\-_~]/;
const SUB_DELIMS = "!$&'()*+,;=";
const HOST = /^[a-z0-9\-._~!$&'()*+,;=]*$/;
const IP_LITERAL = /^\[[0-9a-f:.]+\]$/;
const TEMPLATE_EXPRESSION = /\{([^{}]*)\}/g;
const TEMPLATE_VARIABLES =
  /^[+#./;?&]?[A-Za-z0-9_%.]+(?::[1-9]\d{0,3}|\*)?(?:,[A-Za-z0-9_%.]+(?::[1-9]\d{0,3}|\*)?)*$/;
/** Template expressions stand in the text as one private-use character each while it is parsed. */
const PLACEHOLDER_BASE = 0xe000;
const MAX_TEMPLATE_EXPRESSIONS = 1000;
const QUERY_PIECE_SEPARATORS = /[/\\?&=;]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The schemes a WHATWG URL parser treats specially (normalising host, port and path). */
const SPECIAL_SCHEMES: ReadonlySet<string> = new Set(['http', 'https', 'ws', 'wss', 'ftp', 'file']);

/**
 * The normal form of a resource URI, or why it is refused. Idempotent: a normal form normalises
 * to itself.
 */
export function normaliseResourceUri(
  text: string,
  options: UriNormalisationOptions = {},
): UriNormalisation {
  try {
    return { ok: true, uri: normalise(text, options) };
  } catch (error) {
    if (error instanceof AmbiguousUri) return { ok: false, problem: error.message };
    throw error;
  }
}

function refuse(problem: string): never {
  throw new AmbiguousUri(problem);
}

function normalise(text: string, options: UriNormalisationOptions): string {
  // A prefix may stop before its scheme ends (`research:*` is every resource of research).
  if (options.prefix && /^[A-Za-z0-9+.-]*$/.test(text)) return text.toLowerCase();
  screenCharacters(text);
  const expressions: string[] = [];
  const source = options.template ? withPlaceholders(text, expressions) : text;
  const scheme = SCHEME.exec(source);
  if (scheme === null) refuse('it is not an absolute URI (scheme:…)');
  let rest = source.slice(scheme[0].length);
  if (rest.includes('#')) refuse('it has a fragment (#…), which a server never receives');
  let authority: string | undefined;
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?]/);
    authority = end === -1 ? rest.slice(2) : rest.slice(2, end + 2);
    rest = end === -1 ? '' : rest.slice(end + 2);
  }
  const queryAt = rest.indexOf('?');
  const path = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const query = queryAt === -1 ? undefined : rest.slice(queryAt + 1);
  const schemeName = (scheme[1] ?? '').toLowerCase();
  const normal =
    `${schemeName}:` +
    (authority === undefined ? '' : `//${normaliseAuthority(authority)}`) +
    normalisePath(path, authority !== undefined, options) +
    (query === undefined ? '' : `?${normaliseQuery(query)}`);
  if (expressions.length === 0) {
    return SPECIAL_SCHEMES.has(schemeName) && !options.prefix ? asUrlParserReadsIt(normal) : normal;
  }
  return normal.replace(
    /[\ue000-\uf8ff]/g,
    (ch) => expressions[ch.charCodeAt(0) - PLACEHOLDER_BASE] ?? ch,
  );
}

/**
 * A URI of a special scheme as the WHATWG URL parser reads it, which is how an SDK server looks a
 * resource up (`new URL(uri)`): it folds spellings RFC 3986 keeps apart into one URL
 * (`file:/etc/passwd`, `file://localhost/etc/passwd` and `file:etc/passwd` are
 * `file:///etc/passwd`; `https://host:443/x` and `https:host/x` are `https://host/x`; a numeric
 * IPv4 host is dotted), so a rule on the one form would miss the others. A host ending in a dot
 * (the same DNS name) is refused; so is what the parser refuses.
 */
function asUrlParserReadsIt(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    refuse('a URL parser cannot read it');
  }
  if (url.hostname.endsWith('.')) refuse('its host ends with a dot');
  return url.href;
}

/** Characters refused wherever they stand, before the URI is taken apart. */
function screenCharacters(text: string): void {
  if (text === '') refuse('it is empty');
  if (/\p{Cc}/u.test(text)) refuse('it holds a control character');
  if (/[\s\p{Z}]/u.test(text)) refuse('it holds whitespace');
  if (/[\p{Cf}\p{Default_Ignorable_Code_Point}]/u.test(text)) {
    refuse('it holds an invisible or format character (zero-width, bidi, soft hyphen)');
  }
  if (/\p{Cs}/u.test(text)) refuse('it holds an unpaired surrogate');
  if (/[\p{Co}\p{Cn}]/u.test(text)) refuse('it holds a private-use or unassigned character');
  if (text.includes('\\')) refuse('it holds a backslash');
  if (text.normalize('NFKC') !== text) {
    refuse(
      'it holds a character Unicode folds into another (NFKC): a fullwidth form or a decomposed accent',
    );
  }
}

/** Replaces each `{…}` template expression with one placeholder character, recording it. */
function withPlaceholders(text: string, expressions: string[]): string {
  return text.replace(TEMPLATE_EXPRESSION, (expression, variables: string) => {
    if (!TEMPLATE_VARIABLES.test(variables)) refuse('it holds an invalid template expression');
    if (expressions.length >= MAX_TEMPLATE_EXPRESSIONS) refuse('it holds too many expressions');
    expressions.push(expression);
    return String.fromCharCode(PLACEHOLDER_BASE + expressions.length - 1);
  });
}

function isPlaceholder(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return code >= PLACEHOLDER_BASE && code <= 0xf8ff;
}

function normaliseAuthority(authority: string): string {
  if (authority.includes('@')) refuse('it names user information (…@) in the authority');
  if (authority.includes('%')) refuse('it percent-encodes the authority');
  if (/[^\x21-\x7e]/.test(authority)) {
    refuse('its host is not ASCII (write an internationalised host in punycode)');
  }
  let host = authority;
  let port = '';
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) refuse('its IP literal is not closed');
    host = authority.slice(0, close + 1);
    port = authority.slice(close + 1);
    if (!IP_LITERAL.test(host.toLowerCase())) refuse('its IP literal is not valid');
  } else {
    const colon = authority.indexOf(':');
    if (colon !== -1) {
      host = authority.slice(0, colon);
      port = authority.slice(colon);
    }
  }
  host = host.toLowerCase();
  if (!host.startsWith('[') && !HOST.test(host))
    refuse('its host holds a character not allowed there');
  if (host === '.' || host === '..') refuse('its host is a dot segment');
  if (port !== '' && !/^:\d*$/.test(port)) refuse('its port is not a number');
  // An empty port means the default one (RFC 3986 §6.2.3).
  return port === ':' ? host : `${host}${port}`;
}

function normalisePath(
  path: string,
  afterAuthority: boolean,
  options: UriNormalisationOptions,
): string {
  const segments = path.split('/');
  const normal = segments.map((segment, index) => {
    const last = index === segments.length - 1;
    const root = index === 0 && (afterAuthority || path.startsWith('/'));
    if (segment === '' && !root && !last) refuse('it has an empty path segment (//)');
    const literal = segment.split(';')[0];
    if ((literal === '.' || literal === '..') && !(last && options.prefix)) {
      refuse('it has a dot segment (. or ..)');
    }
    return normaliseComponent(segment, 'path');
  });
  return normal.join('/');
}

function normaliseQuery(query: string): string {
  const normal = normaliseComponent(query, 'query');
  // A server may resolve a path passed in the query; its pieces are checked as path segments.
  const decoded = normal.replace(/%([0-7][0-9A-F])/g, (_, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
  if (decoded.split(QUERY_PIECE_SEPARATORS).some((piece) => piece === '.' || piece === '..')) {
    refuse('its query has a dot segment (. or ..)');
  }
  return normal;
}

/** One path segment or the query: escapes checked and normalised, non-ASCII text encoded. */
function normaliseComponent(text: string, part: 'path' | 'query'): string {
  let out = '';
  let index = 0;
  while (index < text.length) {
    const ch = text[index] as string;
    if (ch === '%') {
      const { normal, next } = normaliseEscapes(text, index, part);
      out += normal;
      index = next;
      continue;
    }
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x80) {
      const allowed =
        UNRESERVED.test(ch) ||
        ch === '.' ||
        SUB_DELIMS.includes(ch) ||
        ch === ':' ||
        ch === '@' ||
        (part === 'query' && (ch === '/' || ch === '?'));
      if (!allowed) refuse(`it holds "${ch}", which a URI cannot hold unencoded`);
      out += ch;
      index += 1;
      continue;
    }
    if (isPlaceholder(ch)) {
      out += ch;
      index += 1;
      continue;
    }
    const character = String.fromCodePoint(code);
    out += encodeURIComponent(character);
    index += character.length;
  }
  return out;
}

/** A run of escapes from `start`: unreserved bytes decoded, the rest upper-cased and checked. */
function normaliseEscapes(
  text: string,
  start: number,
  part: 'path' | 'query',
): { normal: string; next: number } {
  const bytes: number[] = [];
  let index = start;
  while (text[index] === '%') {
    const hex = text.slice(index + 1, index + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) refuse('it holds invalid percent-encoding');
    bytes.push(parseInt(hex, 16));
    index += 3;
  }
  let normal = '';
  let cursor = 0;
  while (cursor < bytes.length) {
    const byte = bytes[cursor] as number;
    if (byte >= 0x80) {
      let end = cursor;
      while (end < bytes.length && (bytes[end] as number) >= 0x80) end += 1;
      normal += checkedUtf8(bytes.slice(cursor, end));
      cursor = end;
      continue;
    }
    const ch = String.fromCharCode(byte);
    if (byte < 0x20 || byte === 0x7f) refuse('it holds an encoded control character');
    if (ch === '.' && part === 'path') refuse('it holds an encoded dot (%2E) in the path');
    if (ch === '/' && part === 'path') refuse('it holds an encoded slash (%2F) in the path');
    if (ch === '\\') refuse('it holds an encoded backslash (%5C)');
    if (ch === '%') {
      // %25 followed by two hex digits, raw or encoded again: a second decoding would reveal more.
      const following =
        String.fromCharCode(...bytes.slice(cursor + 1, cursor + 3)) + text.slice(index, index + 2);
      if (/^[0-9A-Fa-f]{2}/.test(following)) refuse('it is percent-encoded twice (%25…)');
    }
    normal += UNRESERVED.test(ch) || ch === '.' ? ch : `%${hex2(byte)}`;
    cursor += 1;
  }
  return { normal, next: index };
}

/** Encoded non-ASCII text: valid UTF-8, and held to the same rules as raw text. */
function checkedUtf8(bytes: readonly number[]): string {
  let decoded: string;
  try {
    decoded = utf8.decode(new Uint8Array(bytes));
  } catch {
    refuse('it holds percent-encoded bytes that are not UTF-8');
  }
  if (/[\s\p{Z}\p{C}\p{Default_Ignorable_Code_Point}]/u.test(decoded)) {
    refuse('it percent-encodes whitespace, a control or an invisible character');
  }
  if (decoded.normalize('NFKC') !== decoded) {
    refuse('it percent-encodes a character Unicode folds into another (NFKC)');
  }
  return bytes.map((byte) => `%${hex2(byte)}`).join('');
}

function hex2(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
}
