/** Finding the answer to a request Warden itself sent, in whatever form the upstream replied. */
import type { JsonRpcId, JsonRpcMessage, JsonRpcResponse } from '../../domain/jsonrpc.js';
import { isResponse } from '../../domain/jsonrpc.js';
import type { UpstreamReply } from './types.js';

/**
 * The first JSON-RPC response in a reply (a JSON body or an SSE stream, read until it appears),
 * to request `id` when given; undefined when there is none.
 */
export async function readAnswer(
  reply: UpstreamReply,
  id?: JsonRpcId,
): Promise<JsonRpcResponse | undefined> {
  const matches = (message: JsonRpcMessage | undefined): message is JsonRpcResponse =>
    message !== undefined && isResponse(message) && (id === undefined || message.id === id);
  if (reply.kind === 'json') return matches(reply.message) ? reply.message : undefined;
  if (reply.kind !== 'stream') return undefined;
  for await (const event of reply.events) if (matches(event.message)) return event.message;
  return undefined;
}
