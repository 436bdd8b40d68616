/**
 * Canonical JSON (RFC 8785, JCS): no whitespace, object keys sorted by their UTF-16 code units,
 * numbers as ECMAScript's Number#toString prints them (1e+21, 0.1, -0 as 0), strings escaped as
 * ECMAScript's JSON.stringify escapes them (only `"`, `\` and U+0000–U+001F; \b \t \n \f \r
 * short forms; other control characters as lowercase \u00xx; everything else as is).
 * Used wherever two JSON values must compare or hash equal regardless of key order.
 *
 * Values are taken as JSON.stringify takes them, so that hashing a value and hashing its stored,
 * re-parsed form agree: `toJSON()` is honoured, `undefined`, functions and symbols are dropped
 * from objects and become `null` in arrays and at the top level. Where RFC 8785 requires an
 * error it is thrown: a non-finite number (NaN, ±Infinity) and a bigint raise a TypeError,
 * rather than being written as `null` and colliding with it. One deliberate deviation: a lone
 * UTF-16 surrogate (not valid I-JSON, but JSON.parse accepts it from a client) is escaped as
 * \udxxx, as JSON.stringify does, instead of failing: the output stays deterministic and
 * injective, and a client cannot make hashing (hence auditing) throw.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value, '') ?? 'null';
}

/** One member of a canonical object: its name and its `"name":value` text. */
export interface CanonicalMember {
  readonly name: string;
  readonly text: string;
}

/**
 * A plain object's members in canonical order. With `joinCanonicalMembers` a caller can add
 * members later (the audit chain adds seq and hashes) without serialising the rest again.
 */
export function canonicalMembers(value: Readonly<Record<string, unknown>>): CanonicalMember[] {
  const members: CanonicalMember[] = [];
  for (const name of Object.keys(value).sort()) {
    const member = serialise(value[name], name);
    if (member !== undefined) members.push({ name, text: `${JSON.stringify(name)}:${member}` });
  }
  return members;
}

/**
 * The canonical JSON of the object `members` came from, with `extra` merged in order (an extra
 * member replaces a member of the same name; an undefined one is dropped, as canonicalJson does).
 */
export function joinCanonicalMembers(
  members: readonly CanonicalMember[],
  extra: Readonly<Record<string, unknown>> = {},
): string {
  const added = canonicalMembers(extra);
  const replaced = new Set(Object.keys(extra));
  const texts: string[] = [];
  let next = 0;
  for (const member of members) {
    while (next < added.length && (added[next] as CanonicalMember).name < member.name) {
      texts.push((added[next++] as CanonicalMember).text);
    }
    if (!replaced.has(member.name)) texts.push(member.text);
  }
  while (next < added.length) texts.push((added[next++] as CanonicalMember).text);
  return `{${texts.join(',')}}`;
}

/** Undefined when the value is dropped (undefined, function, symbol), as with JSON.stringify. */
function serialise(value: unknown, key: string): string | undefined {
  if (value !== null && typeof value === 'object') {
    const toJson = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJson === 'function') value = (toJson as (key: string) => unknown).call(value, key);
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError(`canonical JSON has no form for the number ${String(value)}`);
      }
      return JSON.stringify(value);
    case 'bigint':
      throw new TypeError('canonical JSON has no form for a bigint; send it as a string');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    return `[${value.map((item, index) => serialise(item, String(index)) ?? 'null').join(',')}]`;
  }
  const members: string[] = [];
  // Default string comparison orders by UTF-16 code units, which is what RFC 8785 §3.2.3 asks.
  for (const name of Object.keys(value as object).sort()) {
    const member = serialise((value as Record<string, unknown>)[name], name);
    if (member !== undefined) members.push(`${JSON.stringify(name)}:${member}`);
  }
  return `{${members.join(',')}}`;
}
