/**
 * Turns zod's issues about warden.yaml into lines a newcomer can act on: each names the key, what
 * was written there, and the fix ("did you mean …" for a misspelt key or option).
 */
import type { z } from 'zod';
import { suggestName } from './closest-name.js';

type Issue = z.core.$ZodIssue;

/** What to write for a required key that is absent, by key path. */
const MISSING_HINTS: Readonly<Record<string, string>> = {
  auth: 'add an auth section: every endpoint is authenticated, so Warden needs its own URL and who issues tokens, e.g. auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
  'auth.resource':
    'the URL agents use to reach this gateway, which is the audience of their tokens, e.g. resource: https://warden.example.com/mcp',
  upstreams:
    'name the MCP servers Warden guards, e.g. upstreams: { files: { url: http://127.0.0.1:3001/mcp } }',
  agents: 'register who may call, e.g. agents: { research-bot: { roles: [research] } }',
};

/** A wrong branch of a union scores at least this: the value is not even of its type. */
const WRONG_TYPE = 100;

/** Describes every issue of a failed parse of `input` against `schema`. */
export function describeConfigIssues(
  issues: readonly Issue[],
  input: unknown,
  schema: z.core.$ZodType,
): string[] {
  return issues.flatMap((issue) => describeIssue(issue, input, schema));
}

function describeIssue(issue: Issue, input: unknown, schema: z.core.$ZodType): string[] {
  const path = formatPath(issue.path);
  const value = valueAt(input, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, issue.path, input);
      return issue.keys.map((key) => {
        const suggestion = allowed === undefined ? '' : suggestName(key, allowed);
        const listed =
          suggestion === '' && allowed !== undefined
            ? `; the keys here are ${allowed.join(', ')}`
            : '';
        return `${path}: unknown key "${key}"${suggestion}${listed}`;
      });
    }
    case 'invalid_union': {
      // Report what is wrong with the branch the value is evidently meant to be, not the first.
      const branch = pickUnionBranch(issue.errors, value);
      if (branch !== undefined) {
        return branch.flatMap((inner) =>
          describeIssue({ ...inner, path: [...issue.path, ...inner.path] }, input, schema),
        );
      }
      return [`${path}: ${issue.message}`];
    }
    case 'invalid_type':
      return [`${path}: ${describeWrongType(issue.expected, value, path)}`];
    case 'invalid_value': {
      const options = issue.values.map(String);
      const suggestion = typeof value === 'string' ? suggestName(value, options) : '';
      return [`${path}: ${show(value)} is not one of ${options.join(', ')}${suggestion}`];
    }
    case 'invalid_format':
      return issue.format === 'url'
        ? [`${path}: ${describeBadUrl(value)}`]
        : [`${path}: ${show(value)}: ${issue.message}`];
    case 'too_small':
      return [`${path}: ${describeTooSmall(issue, value)}`];
    case 'too_big':
      return [`${path}: ${describeTooBig(issue, value)}`];
    case 'invalid_key':
      return [`${path}: invalid name: ${issue.issues.map((inner) => inner.message).join('; ')}`];
    default:
      return [`${path}: ${issue.message}`];
  }
}

/**
 * The branch of a union the value was meant as: the one it fits best, counting keys it does not
 * know and required keys it lacks at the union's own level. Undefined when no branch fits better
 * than another, or the value has the type of none (the union's own message then says what it takes).
 */
function pickUnionBranch(
  branches: readonly (readonly Issue[])[],
  value: unknown,
): readonly Issue[] | undefined {
  const scored = branches.map((issues) => ({ issues, misfit: misfitOf(issues, value) }));
  const best = Math.min(...scored.map((branch) => branch.misfit));
  const fitting = scored.filter((branch) => branch.misfit === best);
  return best < WRONG_TYPE && fitting.length === 1 ? fitting[0]?.issues : undefined;
}

function misfitOf(issues: readonly Issue[], value: unknown): number {
  let misfit = 0;
  for (const issue of issues) {
    if (issue.path.length === 0) {
      // A refinement's complaint means the value has the branch's shape: it fits.
      if (issue.code === 'custom') continue;
      misfit += issue.code === 'unrecognized_keys' ? issue.keys.length : WRONG_TYPE;
    } else if (
      issue.path.length === 1 &&
      issue.code === 'invalid_type' &&
      valueAt(value, issue.path) === undefined
    ) {
      // A key this branch requires is not there.
      misfit += 1;
    }
  }
  return misfit;
}

function describeWrongType(expected: string, value: unknown, path: string): string {
  if (value === undefined || value === null) {
    const hint = MISSING_HINTS[path] ?? `expected ${nameOfType(expected)}`;
    return `${value === undefined ? 'missing' : 'empty'}; ${hint}`;
  }
  return `expected ${nameOfType(expected)}, got ${describeValue(value)}${fixForType(expected, value)}`;
}

function fixForType(expected: string, value: unknown): string {
  if (typeof value !== 'string') return '';
  const text = value.trim();
  if (
    (expected === 'number' || expected === 'int') &&
    text !== '' &&
    Number.isFinite(Number(text))
  ) {
    return `; write ${text} without quotes`;
  }
  if (expected === 'boolean' && /^(true|false)$/i.test(text)) {
    return `; write ${text.toLowerCase()} without quotes`;
  }
  if (expected === 'array') {
    return `; write a list, e.g. [${text
      .split(/[\s,]+/)
      .filter(Boolean)
      .join(', ')}]`;
  }
  return '';
}

function describeBadUrl(value: unknown): string {
  if (typeof value !== 'string') return `expected a URL, got ${describeValue(value)}`;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1]?.toLowerCase();
  if (value.includes('://') && scheme !== 'http' && scheme !== 'https') {
    return `${show(value)} is not an http:// or https:// URL; only those are allowed here`;
  }
  if (!value.includes('://')) {
    const rest = value.replace(/^\/+/, '');
    // Loopback servers usually speak plain HTTP; anything else should be HTTPS.
    const scheme = /^(localhost|127\.|\[::1\])/.test(rest) ? 'http' : 'https';
    return `${show(value)} is not a URL: it has no scheme; write it like ${scheme}://${rest}`;
  }
  return `${show(value)} is not a valid URL; write it like https://host:port/path`;
}

function describeTooSmall(issue: z.core.$ZodIssueTooSmall, value: unknown): string {
  if (issue.origin === 'array') {
    return `the list is too short: give at least ${issue.minimum} ${issue.minimum === 1 ? 'entry' : 'entries'}`;
  }
  if (issue.origin === 'string') {
    return issue.minimum === 1
      ? 'is empty'
      : `${show(value)} is shorter than ${issue.minimum} characters`;
  }
  const bound =
    issue.inclusive === false ? `more than ${issue.minimum}` : `at least ${issue.minimum}`;
  return `${show(value)} is too small: it must be ${bound}`;
}

function describeTooBig(issue: z.core.$ZodIssueTooBig, value: unknown): string {
  if (issue.origin === 'array') return `the list is too long: at most ${issue.maximum} entries`;
  if (issue.origin === 'string') return `is longer than ${issue.maximum} characters`;
  const bound =
    issue.inclusive === false ? `less than ${issue.maximum}` : `at most ${issue.maximum}`;
  return `${show(value)} is too big: it must be ${bound}`;
}

function nameOfType(expected: string): string {
  switch (expected) {
    case 'number':
      return 'a number';
    case 'int':
      return 'a whole number';
    case 'string':
      return 'text';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
    case 'record':
      return 'a mapping (key: value)';
    default:
      return expected;
  }
}

/** What a newcomer wrote, in words: `the text "8080"`, `a list`. */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the text ${show(value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return `the date ${value.toISOString().slice(0, 10)}`;
  return value !== null && typeof value === 'object' ? 'a mapping' : String(value);
}

/** A value as it would be written in the file. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  if (typeof value === 'object' && value !== null)
    return Array.isArray(value) ? 'a list' : 'a mapping';
  return String(value);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.length > 0 ? path.map(String).join('.') : '(top level)';
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/**
 * The keys an object schema at `path` allows. Inside a union, the branch whose keys the written
 * value uses most is the one meant.
 */
function allowedKeysAt(
  schema: z.core.$ZodType,
  path: readonly PropertyKey[],
  input: unknown,
): string[] | undefined {
  let current: z.core.$ZodType | undefined = schema;
  for (let depth = 0; current !== undefined; depth++) {
    current = unwrap(current, valueAt(input, path.slice(0, depth)));
    const def = current._zod.def;
    if (depth === path.length) {
      return def.type === 'object' ? Object.keys((def as z.core.$ZodObjectDef).shape) : undefined;
    }
    const key = path[depth];
    if (def.type === 'object') current = (def as z.core.$ZodObjectDef).shape[String(key)];
    else if (def.type === 'record') current = (def as z.core.$ZodRecordDef).valueType;
    else if (def.type === 'array') current = (def as z.core.$ZodArrayDef).element;
    else return undefined;
  }
  return undefined;
}

/** Looks through defaults, optionals and pipes; picks a union's branch by the keys `value` uses. */
function unwrap(schema: z.core.$ZodType, value: unknown): z.core.$ZodType {
  let current = schema;
  for (;;) {
    const def = current._zod.def as z.core.$ZodTypeDef & {
      innerType?: z.core.$ZodType;
      in?: z.core.$ZodType;
      options?: readonly z.core.$ZodType[];
    };
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) current = def.in;
    else if (def.type === 'union' && def.options !== undefined) {
      current = pickUnionOption(def.options, value) ?? current;
      if (current._zod.def.type === 'union') return current;
    } else return current;
  }
}

function pickUnionOption(
  options: readonly z.core.$ZodType[],
  value: unknown,
): z.core.$ZodType | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const used = Object.keys(value);
  let best: { option: z.core.$ZodType; shared: number } | undefined;
  for (const option of options) {
    const inner = unwrap(option, value);
    if (inner._zod.def.type !== 'object') continue;
    const keys = Object.keys((inner._zod.def as z.core.$ZodObjectDef).shape);
    const shared = used.filter((key) => keys.includes(key)).length;
    if (best === undefined || shared > best.shared) best = { option: inner, shared };
  }
  return best?.option;
}
