/**
 * Checks a tool call's arguments against the tool's pinned `inputSchema`, so that a client (or a
 * model steered by injected text) cannot smuggle arguments the tool never declared. Schemas come
 * from upstream servers, not from Warden: they are read leniently (no strict mode, formats not
 * checked), but a schema that cannot be compiled refuses every call rather than allowing it.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';

/** One way the arguments break the schema. */
export interface SchemaViolation {
  /** JSON pointer into the arguments ('' for the arguments object itself). */
  readonly path: string;
  /** What the schema requires there; never echoes the argument's value. */
  readonly message: string;
}

export type InputSchemaCheck =
  { readonly ok: true } | { readonly ok: false; readonly errors: readonly SchemaViolation[] };

export interface InputSchemaCheckerOptions {
  /** Most schemas kept compiled; the least recently used is evicted first. Default 1,000. */
  readonly maxCachedSchemas?: number;
  /** Called once per compilation, successful or not (metrics, tests). */
  readonly onCompile?: (definitionHash: string) => void;
}

export interface InputSchemaChecker {
  /**
   * Checks `args` (undefined is checked as `{}`) against `inputSchema`. The schema is compiled
   * once per `definitionHash` (see `hashToolDefinition`): the caller must pass the hash of the
   * definition that carries this schema, since a cached schema is not compared again.
   */
  check(definitionHash: string, inputSchema: object, args: unknown): InputSchemaCheck;
  /** Number of schemas (compiled or refused) currently cached. */
  readonly size: number;
}

export const DEFAULT_MAX_CACHED_SCHEMAS = 1_000;
/** allErrors can report one error per array item; a client needs the first few, not thousands. */
export const MAX_REPORTED_VIOLATIONS = 20;
const MAX_COMPILE_MESSAGE_LENGTH = 300;
const DRAFT_07_IDS = new Set([
  'http://json-schema.org/draft-07/schema#',
  'http://json-schema.org/draft-07/schema',
]);

type InputSchemaRefusal = Extract<InputSchemaCheck, { ok: false }>;
type SchemaValidator = Ajv | Ajv2020;
type CacheEntry =
  | {
      readonly validate: ValidateFunction;
      readonly validator: SchemaValidator;
      readonly schema: object;
    }
  | { readonly refusal: InputSchemaRefusal };

/** Creates a checker with its own compiled-schema cache. */
export function createInputSchemaChecker(
  options: InputSchemaCheckerOptions = {},
): InputSchemaChecker {
  const maxCachedSchemas = options.maxCachedSchemas ?? DEFAULT_MAX_CACHED_SCHEMAS;
  if (!Number.isInteger(maxCachedSchemas) || maxCachedSchemas < 1) {
    throw new RangeError('maxCachedSchemas must be a positive integer');
  }
  const onCompile = options.onCompile;
  // addUsedSchema: false keeps one tool's `$id` from clashing with another's in the shared
  // instance; MCP's default dialect is 2020-12, draft-07 only when the schema says so.
  const ajvOptions = {
    allErrors: true,
    strict: false,
    validateFormats: false,
    addUsedSchema: false,
    logger: false,
    // 0.07 is not an exact multiple of 0.01 in binary floating point; compare to 9 digits instead.
    multipleOfPrecision: 9,
  } as const;
  const draft2020 = new Ajv2020(ajvOptions);
  const draft07 = new Ajv(ajvOptions);
  const cache = new Map<string, CacheEntry>();

  function compile(inputSchema: object): CacheEntry {
    if (typeof inputSchema !== 'object' || inputSchema === null || Array.isArray(inputSchema)) {
      return { refusal: compileRefusal('it is not a JSON object') };
    }
    // A private copy: ajv's generated code reads enum and const values from the schema object,
    // so a caller mutating its object later must not change what the cached validator accepts.
    let schema: Record<string, unknown>;
    try {
      schema = structuredClone(inputSchema) as Record<string, unknown>;
    } catch {
      return { refusal: compileRefusal('it is not JSON') };
    }
    const validator =
      typeof schema.$schema === 'string' && DRAFT_07_IDS.has(schema.$schema) ? draft07 : draft2020;
    try {
      return { validate: validator.compile(schema), validator, schema };
    } catch (error) {
      forget(validator, schema);
      return { refusal: compileRefusal(error instanceof Error ? error.message : String(error)) };
    }
  }

  function lookup(definitionHash: string, inputSchema: object): CacheEntry {
    const cached = cache.get(definitionHash);
    if (cached !== undefined) {
      cache.delete(definitionHash);
      cache.set(definitionHash, cached);
      return cached;
    }
    const entry = compile(inputSchema);
    onCompile?.(definitionHash);
    cache.set(definitionHash, entry);
    while (cache.size > maxCachedSchemas) {
      const [oldestHash, oldest] = cache.entries().next().value as [string, CacheEntry];
      cache.delete(oldestHash);
      if ('validate' in oldest) forget(oldest.validator, oldest.schema);
    }
    return entry;
  }

  return {
    check(definitionHash, inputSchema, args) {
      const entry = lookup(definitionHash, inputSchema);
      if ('refusal' in entry) return entry.refusal;
      let valid: boolean;
      try {
        valid = entry.validate(args === undefined ? {} : args);
      } catch {
        // e.g. arguments nested deeply enough under a recursive schema to overflow the stack.
        return UNCHECKABLE;
      }
      if (valid) return { ok: true };
      const errors = (entry.validate.errors ?? [])
        .slice(0, MAX_REPORTED_VIOLATIONS)
        .map(toViolation);
      // An invalid result always carries errors; this keeps the refusal non-empty regardless.
      if (errors.length === 0) errors.push({ path: '', message: 'must match the input schema' });
      return { ok: false, errors };
    },
    get size() {
      return cache.size;
    },
  };
}

const UNCHECKABLE: InputSchemaRefusal = Object.freeze({
  ok: false,
  errors: Object.freeze([
    { path: '', message: 'the arguments could not be checked against the input schema' },
  ]),
});

function compileRefusal(reason: string): InputSchemaRefusal {
  const detail =
    reason.length > MAX_COMPILE_MESSAGE_LENGTH
      ? `${reason.slice(0, MAX_COMPILE_MESSAGE_LENGTH)}…`
      : reason;
  return Object.freeze({
    ok: false,
    errors: Object.freeze([
      { path: '', message: `the tool's input schema cannot be compiled: ${detail}` },
    ]),
  });
}

/** Drops ajv's own reference to a schema, so evicted and failed schemas do not accumulate. */
function forget(validator: SchemaValidator, schema: object): void {
  try {
    validator.removeSchema(schema);
  } catch {
    // A schema that failed before ajv registered it (e.g. a non-string $id) has nothing to remove.
  }
}

function toViolation(error: ErrorObject): SchemaViolation {
  // ajv's messages describe the schema ("must be integer", "must NOT have additional
  // properties"); none quote the instance, so argument values (possibly secrets) stay out.
  return { path: error.instancePath, message: error.message ?? `fails ${error.keyword}` };
}
