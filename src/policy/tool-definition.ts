/**
 * The part of an MCP Tool object that Warden pins: what the model reads (name, title,
 * description, annotations) and what the tool accepts and returns (inputSchema, outputSchema).
 * A pinned definition is identified by the SHA-256 of its RFC 8785 canonical JSON, so a server
 * that changes a tool's description or schema after it was approved (a "rug pull") changes the hash.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json.js';

/** A JSON object as it arrived on the wire; Warden does not interpret it beyond its shape. */
export type JsonObject = Readonly<Record<string, unknown>>;

/** The fields of an MCP Tool that Warden pins. */
export interface ToolDefinition {
  readonly name: string;
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema: JsonObject;
  readonly outputSchema?: JsonObject;
  readonly annotations?: JsonObject;
}

/**
 * Reads the tool definitions from a `tools/list` result (`{ tools: [...], nextCursor? }`).
 * Never throws: a result without a `tools` array yields no definitions, and an entry that is not
 * a well-formed Tool (no string `name`, an `inputSchema` that is not an object, or a pinned
 * optional field of the wrong type) is skipped, so a caller that pins definitions treats that
 * tool as unknown. A `null` optional field is read as absent. Fields Warden does not pin are
 * dropped from the returned definitions.
 */
export function readToolDefinitions(result: unknown): ToolDefinition[] {
  if (!isJsonObject(result) || !Array.isArray(result.tools)) return [];
  const definitions: ToolDefinition[] = [];
  for (const entry of result.tools as unknown[]) {
    const definition = readToolDefinition(entry);
    if (definition !== undefined) definitions.push(definition);
  }
  return definitions;
}

/**
 * SHA-256 (lowercase hex) of the RFC 8785 canonical JSON of the pinned fields, absent fields
 * omitted. Stable under key reordering at any depth.
 */
export function hashToolDefinition(definition: ToolDefinition): string {
  // Built field by field rather than hashing the object given: extra fields such as `_meta` or
  // `icons` are presentation and transport metadata, not what the model reads or what the tool
  // accepts, so a server may change them without the pinned definition changing.
  const pinned: Record<string, unknown> = {
    name: definition.name,
    inputSchema: definition.inputSchema,
  };
  if (definition.title !== undefined) pinned.title = definition.title;
  if (definition.description !== undefined) pinned.description = definition.description;
  if (definition.outputSchema !== undefined) pinned.outputSchema = definition.outputSchema;
  if (definition.annotations !== undefined) pinned.annotations = definition.annotations;
  return createHash('sha256').update(canonicalJson(pinned), 'utf8').digest('hex');
}

function readToolDefinition(entry: unknown): ToolDefinition | undefined {
  if (!isJsonObject(entry)) return undefined;
  const { name, title, description, inputSchema, outputSchema, annotations } = entry;
  if (typeof name !== 'string' || !isJsonObject(inputSchema)) return undefined;
  const definition: {
    -readonly [K in keyof ToolDefinition]: ToolDefinition[K];
  } = { name, inputSchema };
  if (title !== undefined && title !== null) {
    if (typeof title !== 'string') return undefined;
    definition.title = title;
  }
  if (description !== undefined && description !== null) {
    if (typeof description !== 'string') return undefined;
    definition.description = description;
  }
  if (outputSchema !== undefined && outputSchema !== null) {
    if (!isJsonObject(outputSchema)) return undefined;
    definition.outputSchema = outputSchema;
  }
  if (annotations !== undefined && annotations !== null) {
    if (!isJsonObject(annotations)) return undefined;
    definition.annotations = annotations;
  }
  return definition;
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
