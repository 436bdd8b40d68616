/**
 * Reads one client exchange on an upstream's MCP endpoint: its HTTP method, the revision it names
 * in MCP-Protocol-Version and, for a POST, the one JSON-RPC message its body holds, within the
 * size and depth limits. Refuses what no revision allows (another method; a GET or DELETE in
 * 2026-07-28) and a body that is no JSON-RPC message. What may pass is not decided here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import type { JsonRpcMessage } from '../domain/jsonrpc.js';
import { STATELESS_REVISION } from '../domain/protocol.js';
import { readHeader } from '../http/http-headers.js';
import { readBody } from '../http/read-body.js';
import { DEFAULT_MAX_JSON_DEPTH, parseClientMessage } from './jsonrpc-parse.js';

/** How much of a client message the endpoint reads. */
export interface ExchangeLimits {
  readonly maxBodyBytes: number;
  /** Deepest nesting of objects and arrays in a client message (limits.max_json_depth). */
  readonly maxJsonDepth?: number;
}

/** What the gateway established about the exchange before handing it over. */
export interface ExchangeCaller {
  /** The reference its records and replies carry. */
  readonly requestId: string;
  /** Aborted when the client goes away or the gateway stops. */
  readonly signal: AbortSignal;
  /** Who is calling, as authenticated. */
  readonly identity: Identity;
}

/** One client exchange, read. */
export interface ClientExchange extends ExchangeCaller {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** MCP-Protocol-Version as the client sent it. */
  readonly version: string | undefined;
}

/** A POST: one client message. */
export interface PostedExchange extends ClientExchange {
  readonly kind: 'post';
  readonly message: JsonRpcMessage;
}

/** A GET (the server-to-client stream) or a DELETE (the end of a session). */
export interface SessionExchange extends ClientExchange {
  readonly kind: 'get' | 'delete';
}

export type McpExchange = PostedExchange | SessionExchange;

export async function readMcpExchange(
  request: IncomingMessage,
  response: ServerResponse,
  { requestId, signal, identity }: ExchangeCaller,
  limits: ExchangeLimits,
): Promise<McpExchange> {
  const version = readHeader(request, 'mcp-protocol-version');
  if (version === STATELESS_REVISION && request.method !== 'POST') {
    throw new WardenError(
      'WARDEN_METHOD_NOT_ALLOWED',
      'Revision 2026-07-28 has no GET or DELETE: every request is a POST.',
      { details: { allow: 'POST' } },
    );
  }
  switch (request.method) {
    case 'POST': {
      const message = await readClientMessage(request, limits);
      return { kind: 'post', request, response, requestId, signal, identity, version, message };
    }
    case 'GET':
      return { kind: 'get', request, response, requestId, signal, identity, version };
    case 'DELETE':
      return { kind: 'delete', request, response, requestId, signal, identity, version };
    default:
      throw new WardenError('WARDEN_METHOD_NOT_ALLOWED');
  }
}

/** A GET opens an SSE stream: its client must accept one. */
export function requireEventStreamAccepted(exchange: ClientExchange): void {
  if (acceptsAll(readHeader(exchange.request, 'accept') ?? '', ['text/event-stream'])) return;
  throw new WardenError('WARDEN_NOT_ACCEPTABLE', 'GET requests must accept text/event-stream.');
}

async function readClientMessage(
  request: IncomingMessage,
  { maxBodyBytes, maxJsonDepth = DEFAULT_MAX_JSON_DEPTH }: ExchangeLimits,
): Promise<JsonRpcMessage> {
  const contentType = readHeader(request, 'content-type');
  if (!contentType || !/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE');
  }
  const accept = readHeader(request, 'accept') ?? '';
  if (!acceptsAll(accept, ['application/json', 'text/event-stream'])) {
    throw new WardenError(
      'WARDEN_NOT_ACCEPTABLE',
      'POST requests must accept both application/json and text/event-stream.',
    );
  }
  return parseClientMessage(await readBody(request, maxBodyBytes), { maxDepth: maxJsonDepth });
}

function acceptsAll(accept: string, types: readonly string[]): boolean {
  const listed = accept.split(',').map((part) => part.split(';')[0]?.trim().toLowerCase());
  if (listed.includes('*/*')) return true;
  return types.every((type) => listed.includes(type) || listed.includes(`${type.split('/')[0]}/*`));
}
