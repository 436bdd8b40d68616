/** Watches an upstream reply on its way to the client, to tell a call's observer how it ended. */
import { WardenError } from '../domain/errors.js';
import type { JsonRpcId, JsonRpcResponse } from '../domain/jsonrpc.js';
import { isResponse } from '../domain/jsonrpc.js';
import type { CallObserver } from './message-gate.js';
import type { UpstreamEvent, UpstreamReply } from './upstream/types.js';

export async function observeReply(
  reply: UpstreamReply,
  rpcId: JsonRpcId,
  observer: CallObserver | undefined,
): Promise<UpstreamReply> {
  if (!observer) return reply;
  switch (reply.kind) {
    case 'json': {
      if (!isResponse(reply.message) || reply.message.id !== rpcId) {
        observer.failed(new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR'));
        return reply;
      }
      const answer = await rewritten(reply.message, observer);
      observer.answered(answer);
      return answer === reply.message
        ? reply
        : { kind: 'json', message: answer, raw: JSON.stringify(answer) };
    }
    case 'status':
      observer.failed(
        new WardenError(
          reply.status >= 500 ? 'WARDEN_UPSTREAM_UNAVAILABLE' : 'WARDEN_UPSTREAM_PROTOCOL_ERROR',
          `HTTP ${reply.status}`,
        ),
      );
      return reply;
    case 'accepted':
      observer.failed(new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR'));
      return reply;
    case 'stream':
      return { kind: 'stream', events: watchEvents(reply.events, rpcId, observer) };
  }
}

async function* watchEvents(
  events: AsyncIterable<UpstreamEvent>,
  rpcId: JsonRpcId,
  observer: CallObserver,
): AsyncGenerator<UpstreamEvent> {
  let settled = false;
  try {
    for await (const event of events) {
      if (!settled && event.failure !== undefined) {
        // Warden's own answer for a call the upstream failed (e.g. a stdio child that died).
        settled = true;
        observer.failed(event.failure);
        yield event;
        continue;
      }
      if (!settled && event.message && isResponse(event.message) && event.message.id === rpcId) {
        settled = true;
        const answer = await rewritten(event.message, observer);
        observer.answered(answer);
        if (answer !== event.message) {
          yield { ...(event.id !== undefined && { id: event.id }), message: answer };
          continue;
        }
      }
      yield event;
    }
  } catch (error) {
    if (!settled) {
      settled = true;
      observer.failed(error);
    }
    throw error;
  } finally {
    if (!settled)
      observer.failed(
        new WardenError(
          'WARDEN_UPSTREAM_UNAVAILABLE',
          'The stream ended before the call was answered.',
        ),
      );
  }
}

async function rewritten(
  response: JsonRpcResponse,
  observer: CallObserver,
): Promise<JsonRpcResponse> {
  return observer.rewrite ? observer.rewrite(response) : response;
}
