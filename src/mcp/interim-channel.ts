/**
 * Messages sent to the client while its request is still being decided (e.g. progress while a
 * call waits for a human approval). The first one turns the HTTP response into an SSE stream;
 * the upstream's answer then follows on the same stream (see writeReply).
 */
import type { ServerResponse } from 'node:http';
import type { JsonRpcNotification, JsonRpcRequest } from '../domain/jsonrpc.js';
import { formatSseEvent } from './sse.js';

export interface InterimChannel {
  /** A notification, or a request of the gateway's own (its answer never reaches the upstream). */
  notify(message: JsonRpcNotification | JsonRpcRequest): void;
}

export function createInterimChannel(
  response: ServerResponse,
  headers: Readonly<Record<string, string>>,
): InterimChannel {
  return {
    notify(message) {
      if (response.destroyed || response.writableEnded) return;
      if (!response.headersSent) {
        // Set one by one (not through writeHead) so writeError can still read the content type.
        for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
        response.setHeader('content-type', 'text/event-stream');
        response.setHeader('cache-control', 'no-cache, no-transform');
        response.writeHead(200);
      }
      response.write(formatSseEvent({ event: 'message', data: JSON.stringify(message) }));
    },
  };
}
