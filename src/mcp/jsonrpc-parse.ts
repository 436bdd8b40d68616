/** Turns a request body into one validated JSON-RPC message, or a specific WardenError. */
import { WardenError } from '../domain/errors.js';
import type { JsonRpcMessage } from '../domain/jsonrpc.js';

/** Parses text received from a client; batches are refused (MCP removed them in 2025-06-18). */
export function parseClientMessage(body: string): JsonRpcMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new WardenError('WARDEN_PARSE_ERROR');
  }
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
