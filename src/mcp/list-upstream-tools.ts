/**
 * Asks an upstream for its tools on the client's own upstream session, with a request id of
 * Warden's own, following pagination. Used when a client calls a tool the gateway has never seen
 * listed, so the call can still be checked against the tool's pinned definition and inputSchema.
 */
import { randomUUID } from 'node:crypto';
import { WardenError } from '../domain/errors.js';
import type { JsonRpcRequest } from '../domain/jsonrpc.js';
import { readAnswer } from './upstream/reply-answer.js';
import type { ForwardContext, UpstreamSession } from './upstream/types.js';

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
    const answer = await readAnswer(await session.send(request, context), request.id);
    if (answer === undefined) {
      throw new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR', 'no answer to tools/list');
    }
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
