/**
 * Translation between the two eras for the legacy bridge: upstream replies and notifications
 * become what a 2026-07-28 client expects, and server-to-client requests a bridge cannot carry
 * are answered upstream on the client's behalf.
 */
import { WardenError } from '../../domain/errors.js';
import type {
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../../domain/jsonrpc.js';
import type { ForwardContext, UpstreamEvent, UpstreamReply } from '../upstream/types.js';
import type { BridgeSession } from './bridge-session.js';
import { MODERN_REVISIONS, SERVER_INFO_KEY } from './envelope.js';
import { toClientProgress, type ProgressMapping } from './progress-tokens.js';

/** Results that 2026-07-28 clients expect to carry caching hints. */
const CACHEABLE_METHODS = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** Upstream replies as one event sequence; an HTTP error status becomes a specific error. */
export async function* eventsOf(reply: UpstreamReply): AsyncGenerator<UpstreamEvent> {
  switch (reply.kind) {
    case 'json':
      yield { message: reply.message };
      return;
    case 'stream':
      yield* reply.events;
      return;
    case 'accepted':
      throw new WardenError(
        'WARDEN_UPSTREAM_PROTOCOL_ERROR',
        'The upstream accepted a request without answering it.',
      );
    case 'status':
      throw new WardenError(
        reply.status >= 500 ? 'WARDEN_UPSTREAM_UNAVAILABLE' : 'WARDEN_UPSTREAM_PROTOCOL_ERROR',
        `The upstream answered HTTP ${reply.status}.`,
      );
  }
}

/** The upstream's response under the client's id, with the result fields 2026-07-28 adds. */
export function toModernResponse(
  response: JsonRpcResponse,
  request: JsonRpcRequest,
  session: BridgeSession,
): JsonRpcResponse {
  if (!('result' in response)) return { ...response, id: request.id };
  const result: Record<string, unknown> = { ...response.result };
  result['resultType'] ??= 'complete';
  if (CACHEABLE_METHODS.has(request.method)) {
    result['ttlMs'] ??= 0;
    result['cacheScope'] ??= 'private';
  }
  result['_meta'] = {
    ...(result['_meta'] as Record<string, unknown> | undefined),
    [SERVER_INFO_KEY]: session.initializeResult['serverInfo'],
  };
  return { jsonrpc: '2.0', id: request.id, result };
}

/** server/discover, answered from what the upstream said at initialize. */
export function discoverResult(id: JsonRpcId, session: BridgeSession): JsonRpcResponse {
  const init = session.initializeResult;
  return {
    jsonrpc: '2.0',
    id,
    result: {
      resultType: 'complete',
      supportedVersions: MODERN_REVISIONS,
      capabilities: init['capabilities'] ?? {},
      ...(typeof init['instructions'] === 'string' && { instructions: init['instructions'] }),
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { [SERVER_INFO_KEY]: init['serverInfo'] },
    },
  };
}

/** Progress and log notifications reach the client; session-wide ones have no home in 2026. */
export function translateNotification(
  message: JsonRpcNotification,
  progress: ProgressMapping | undefined,
): JsonRpcMessage | undefined {
  if (message.method === 'notifications/progress') return toClientProgress(message, progress);
  if (message.method === 'notifications/message') return message;
  return undefined;
}

/** Answers upstream a server-to-client request the client cannot be asked: ping, or -32601. */
export async function answerUnsupported(
  session: BridgeSession,
  request: JsonRpcRequest,
  context: ForwardContext,
): Promise<void> {
  const answer: JsonRpcResponse =
    request.method === 'ping'
      ? { jsonrpc: '2.0', id: request.id, result: {} }
      : {
          jsonrpc: '2.0',
          id: request.id,
          error: { code: -32601, message: `Method not found: ${request.method}` },
        };
  await session.upstream.send(answer, context).catch(() => undefined);
}
