/**
 * Relays one client exchange, as it arrived, to the replica that holds its session, and the
 * answer back as it comes (JSON, or an SSE stream that stays open): the owner runs the whole
 * pipeline on it, so nothing is decided or recorded twice. Only the connection's own headers are
 * dropped; the hop's signed claims are added.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { WardenError } from '../../domain/errors.js';

/** Headers that describe one connection, not the message (RFC 9110 section 7.6.1). */
const CONNECTION_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

const CONNECT_TIMEOUT_MS = 2_000;

/**
 * Sends `request` to `base` (the owner's hop address) with `hopHeaders`, and pipes the owner's
 * answer into `response`. Rejects with WARDEN_SESSION_NOT_FOUND when the owner cannot be reached
 * (its client starts a new session, as the transport specification says for an unknown session).
 */
export function relayToReplica(
  base: string,
  request: IncomingMessage,
  /** The body already read (a 2026-07-28 retry), or undefined to stream the request's own. */
  body: string | undefined,
  response: ServerResponse,
  hopHeaders: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  const target = new URL(request.url ?? '/', base);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || CONNECTION_HEADERS.has(name) || name.startsWith('warden-hop-')) {
      continue;
    }
    headers[name] = value;
  }
  Object.assign(headers, hopHeaders);
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  // The owner's Host check is not the client's business: the first replica checked it already.
  headers.host = target.host;
  return new Promise((resolve, reject) => {
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    let answered = false;
    const outgoing = send(target, { method: request.method, headers, signal });
    const connectTimer = setTimeout(() => {
      outgoing.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    outgoing.on('socket', (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    outgoing.on('response', (answer) => {
      clearTimeout(connectTimer);
      answered = true;
      const copied: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !CONNECTION_HEADERS.has(name)) copied[name] = value;
      }
      response.writeHead(answer.statusCode ?? 502, copied);
      // An SSE stream's first event may take long: the client sees the headers now.
      response.flushHeaders();
      answer.pipe(response);
      answer.on('end', () => resolve());
      answer.on('error', () => {
        response.destroy();
        resolve();
      });
      response.on('close', () => {
        answer.destroy();
        resolve();
      });
    });
    outgoing.on('error', (error) => {
      clearTimeout(connectTimer);
      if (answered) {
        response.destroy();
        resolve();
        return;
      }
      reject(
        new WardenError(
          'WARDEN_SESSION_NOT_FOUND',
          `the replica that holds this session cannot be reached (${error.message})`,
        ),
      );
    });
    if (body === undefined) request.pipe(outgoing);
    else outgoing.end(body);
  });
}
