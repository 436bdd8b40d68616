/** Writes upstream replies and Warden errors to a client's HTTP response. */
import type { ServerResponse } from 'node:http';
import {
  httpStatusOf,
  toErrorResponse,
  toWireError,
  WardenError,
  type WireError,
} from '../domain/errors.js';
import type { JsonRpcId, JsonRpcMessage } from '../domain/jsonrpc.js';
import { isResponse } from '../domain/jsonrpc.js';
import { sendJson } from '../http/json-reply.js';
import { drainBody } from '../http/read-body.js';
import { formatSseEvent } from './sse.js';
import type { UpstreamReply } from './upstream/types.js';

export interface ReplyOptions {
  readonly requestId: string;
  /** The id of the client request this answers, so a failure mid-stream still answers it. */
  readonly rpcId: JsonRpcId | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** The exchange's abort signal: a request cut from outside is answered in-band. */
  readonly signal?: AbortSignal;
}

/** The refusal Warden itself wrote on each response, for the listener to record. */
const refusals = new WeakMap<ServerResponse, WireError>();

/**
 * The refusal writeError wrote (or is about to write) on this response, if any: what the
 * listener records when the exchange ends, unless a record already tells it.
 */
export function refusalWrittenTo(response: ServerResponse): WireError | undefined {
  return refusals.get(response);
}

/**
 * Sends an error: before any response header was written, as an HTTP status plus a JSON-RPC
 * error; on a stream already started, in-band. The first refusal of an exchange is its answer;
 * later ones are dropped. A body still arriving is first drained within a bound (src/http/read-body.ts),
 * so the client can read the answer.
 */
export function writeError(
  response: ServerResponse,
  error: unknown,
  requestId: string,
  rpcId: JsonRpcId | null,
  extraHeaders: Readonly<Record<string, string>> = {},
): void {
  if (response.destroyed || refusals.has(response)) return;
  refusals.set(response, toWireError(error, requestId));
  if (response.headersSent) {
    // Already streaming (progress was sent while the request was held): answer in-band.
    if (rpcId !== null && isEventStream(response) && !isClosed(response)) {
      const message = toErrorResponse(error, requestId, rpcId);
      response.write(formatSseEvent({ event: 'message', data: JSON.stringify(message) }));
    }
    if (!isClosed(response)) response.end();
    return;
  }
  if (response.req.complete) {
    sendError(response, error, requestId, rpcId, extraHeaders, false);
    return;
  }
  void drainBody(response.req).then((complete) =>
    sendError(response, error, requestId, rpcId, extraHeaders, !complete),
  );
}

/**
 * Sends an error at once and closes the connection, without draining what the client still
 * sends: for a request that took too long to arrive.
 */
export function writeErrorAndClose(
  response: ServerResponse,
  error: unknown,
  requestId: string,
): void {
  if (response.destroyed || response.headersSent || refusals.has(response)) return;
  refusals.set(response, toWireError(error, requestId));
  sendError(response, error, requestId, null, {}, true);
}

function sendError(
  response: ServerResponse,
  error: unknown,
  requestId: string,
  rpcId: JsonRpcId | null,
  extraHeaders: Readonly<Record<string, string>>,
  close: boolean,
): void {
  if (response.destroyed || response.headersSent) return;
  const wire = toWireError(error, requestId);
  const headers: Record<string, string> = { ...extraHeaders, 'x-request-id': requestId };
  if (wire.status === 405)
    headers['allow'] =
      typeof wire.data['allow'] === 'string' ? wire.data['allow'] : 'GET, POST, DELETE';
  // A body that did not arrive within the drain's bound would otherwise be read to its end,
  // however long the client makes it: close instead.
  if (close) headers['connection'] = 'close';
  // A refusal decided about a request is answered in band (HTTP 200): see ANSWERED_IN_BAND.
  const known = error instanceof WardenError ? error : new WardenError('WARDEN_INTERNAL');
  sendJson(response, httpStatusOf(known, rpcId), toErrorResponse(error, requestId, rpcId), headers);
}

/** A 200 with no body: the answer to a DELETE that ended its session. */
export function writeEmptyReply(response: ServerResponse, requestId: string): void {
  response.writeHead(200, { 'x-request-id': requestId }).end();
}

export async function writeReply(
  response: ServerResponse,
  reply: UpstreamReply,
  options: ReplyOptions,
): Promise<void> {
  const base = { ...options.headers, 'x-request-id': options.requestId };
  if (response.headersSent) {
    await continueStream(response, reply, options);
    return;
  }
  switch (reply.kind) {
    case 'accepted':
      response.writeHead(202, base).end();
      return;
    case 'status': {
      const headers: Record<string, string> = { ...base };
      if (reply.contentType !== undefined) headers['content-type'] = reply.contentType;
      response.writeHead(reply.status, headers).end(reply.body);
      return;
    }
    case 'json':
      response.writeHead(200, { ...base, 'content-type': 'application/json' }).end(reply.raw);
      return;
    case 'stream':
      await writeStream(response, reply.events, options, base);
  }
}

async function writeStream(
  response: ServerResponse,
  events: Extract<UpstreamReply, { kind: 'stream' }>['events'],
  options: ReplyOptions,
  headers: Record<string, string>,
): Promise<void> {
  if (!response.headersSent) {
    response.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
    });
  }
  // A server stream must show the client it is open; a request's stream sends its headers
  // with the first event, saving a write per call.
  if (options.rpcId === undefined) response.flushHeaders();
  let answered = false;
  const answerInBand = (error: unknown): void => {
    if (answered || options.rpcId === undefined || isClosed(response)) return;
    answered = true;
    const message = toErrorResponse(error, options.requestId, options.rpcId);
    response.write(formatSseEvent({ event: 'message', data: JSON.stringify(message) }));
  };
  // Cut from outside (shutdown): the request still gets its answer before the stream ends.
  const onAbort = (): void => {
    answerInBand(options.signal?.reason);
    if (!isClosed(response)) response.end();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const event of events) {
      if (isClosed(response)) break;
      if (event.message && isAnswerTo(event.message, options.rpcId)) answered = true;
      const data = event.message === undefined ? '' : (event.raw ?? JSON.stringify(event.message));
      response.write(
        formatSseEvent({
          data,
          ...(event.message !== undefined && { event: 'message' }),
          ...(event.id !== undefined && { id: event.id }),
          ...(event.retry !== undefined && { retry: event.retry }),
        }),
      );
    }
  } catch (error) {
    // The stream broke after it started: answer the request in-band so the client is not left waiting.
    answerInBand(error);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (!isClosed(response)) response.end();
  }
}

/**
 * The response is already an SSE stream (interim messages went first): the reply follows as
 * events on it, whatever form the upstream gave it.
 */
async function continueStream(
  response: ServerResponse,
  reply: UpstreamReply,
  options: ReplyOptions,
): Promise<void> {
  switch (reply.kind) {
    case 'json':
      if (!isClosed(response)) {
        response.end(formatSseEvent({ event: 'message', data: reply.raw }));
      }
      return;
    case 'stream':
      await writeStream(response, reply.events, options, {});
      return;
    default:
      writeError(
        response,
        new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR'),
        options.requestId,
        options.rpcId ?? null,
      );
  }
}

function isEventStream(response: ServerResponse): boolean {
  return String(response.getHeader('content-type') ?? '').startsWith('text/event-stream');
}

/** Ended by someone else (e.g. a shutdown cutting the exchange) or gone: writing would throw. */
function isClosed(response: ServerResponse): boolean {
  return response.destroyed || response.writableEnded;
}

function isAnswerTo(message: JsonRpcMessage, rpcId: JsonRpcId | undefined): boolean {
  return rpcId !== undefined && isResponse(message) && message.id === rpcId;
}
