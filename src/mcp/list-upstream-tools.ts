/**
 * Asks an upstream for its tools on the client's own upstream session, with a request id of
 * Warden's own, following pagination. Used when a client calls a tool the gateway has never seen
 * listed, so the call can still be checked against the tool's pinned definition and inputSchema.
 */
import { randomUUID } from 'node:crypto';
import { WardenError } from '../domain/errors.js';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../domain/jsonrpc.js';
import { isResponse } from '../domain/jsonrpc.js';
import type { ForwardContext, UpstreamReply, UpstreamSession } from './upstream/types.js';

/** Bounded, so an upstream that pages forever cannot hold a call forever. */
const MAX_PAGES = 20;

export async function listUpstreamTools(
  session: UpstreamSession,
  context: ForwardContext,
): Promise<unknown[]> {
  const tools: unknown[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const request: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: `warden-tools-list-${randomUUID()}`,
      method: 'tools/list',
      params: cursor === undefined ? {} : { cursor },
    };
    const answer = await answerOf(await session.send(request, context), request.id);
    if (!('result' in answer)) {
      throw new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR', 'the upstream refused tools/list');
    }
    const result = answer.result;
    if (Array.isArray(result['tools'])) tools.push(...(result['tools'] as unknown[]));
    const next = result['nextCursor'];
    if (typeof next !== 'string' || next === '') return tools;
    cursor = next;
  }
  return tools;
}

async function answerOf(reply: UpstreamReply, id: string | number): Promise<JsonRpcResponse> {
  const matches = (message: JsonRpcMessage | undefined) =>
    message !== undefined && isResponse(message) && message.id === id;
  if (reply.kind === 'json' && matches(reply.message)) return reply.message as JsonRpcResponse;
  if (reply.kind === 'stream') {
    for await (const event of reply.events)
      if (matches(event.message)) return event.message as JsonRpcResponse;
  }
  throw new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR', 'no answer to tools/list');
}
