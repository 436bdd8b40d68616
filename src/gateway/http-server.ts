/**
 * The listener: an adapter between node:http and the pipeline (pipeline/index.ts). It creates
 * each exchange (its reference, its trace, its abort signal, its entry in the ledger), runs the
 * pipeline's stages on it, finishes it (recording a refusal no record tells, logging it), bounds
 * how long a request may take to arrive, and drains in-flight exchanges on shutdown.
 */
import { randomUUID } from 'node:crypto';
import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import {
  createServer as createHttpsServer,
  type ServerOptions as HttpsServerOptions,
} from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WardenError } from '../domain/errors.js';
import { firstValue } from '../http/http-headers.js';
import { refusalWrittenTo, writeError, writeErrorAndClose } from '../mcp/http-reply.js';
import type { ExchangeFacts, ExchangeLedger } from './exchange-ledger.js';
import type { Logger } from './logger.js';
import { newTraceparent } from './trace-ids.js';
import {
  finishExchange,
  runExchange,
  type Exchange,
  type ExchangeStageContext,
} from './pipeline/index.js';

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  /** HTTPS (and client certificates) when set; plain HTTP otherwise. */
  readonly tls: HttpsServerOptions | undefined;
  /**
   * Told of each TLS connection once its handshake is done, before the HTTP layer reads from it
   * (it may destroy the socket), and of each handshake that failed.
   */
  readonly tlsHandshakes?: {
    onSecureConnection(socket: TLSSocket): void;
    onClientError(error: Error, socket: TLSSocket): void;
  };
  /** What the pipeline's stages need: routes, endpoints, the guard, authentication, records. */
  readonly stages: Omit<ExchangeStageContext, 'isDraining'>;
  /** The open exchanges, and whether a record tells each. */
  readonly ledger: ExchangeLedger;
  /** How long a request's headers, and the whole request, may take to arrive. */
  readonly timeouts: { readonly headersMs: number; readonly requestMs: number };
  readonly logger: Logger;
}

export interface Listener {
  readonly server: Server;
  readonly port: number;
  /**
   * Drains, then stops: new requests are refused with 503 (and /readyz answers 503) while the
   * exchanges already open get up to graceMs to finish; the rest are then cut.
   */
  close(graceMs: number): Promise<void>;
}

const VALID_TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** How long cut exchanges get to write their 503 before their connections are closed. */
const CUT_FLUSH_MS = 200;

/** Longest path kept in records and logs. */
const MAX_RECORDED_PATH = 256;

interface OpenExchange {
  readonly requestId: string;
  readonly response: ServerResponse;
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const inFlight = new Map<AbortController, OpenExchange>();
  // Server-to-client streams (GET) never finish by themselves: a drain must not wait for them.
  const serverStreams = new Set<AbortController>();
  let draining = false;

  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const controller = new AbortController();
    const requestId = randomUUID();
    // Every call is traced: the client's W3C traceparent if valid, else a new trace started here.
    if (!VALID_TRACEPARENT.test(firstValue(request.headers.traceparent) ?? '')) {
      request.headers.traceparent = newTraceparent();
    }
    const started = performance.now();
    const facts = options.ledger.open(request, {
      requestId,
      source: request.socket.remoteAddress ?? 'unknown',
      method: request.method ?? '',
      path: pathOf(request).slice(0, MAX_RECORDED_PATH),
      traceparent: firstValue(request.headers.traceparent),
    });
    inFlight.set(controller, { requestId, response });
    // While draining, every connection is told to go, so clients reconnect elsewhere.
    if (draining) response.setHeader('connection', 'close');
    response.on('close', () => {
      // A finished exchange has nothing to cancel; aborting it would only wake every listener.
      if (!response.writableFinished) controller.abort();
      inFlight.delete(controller);
      serverStreams.delete(controller);
      finishExchange(facts, response, options.stages.refusals);
      options.ledger.close(facts);
      logExchange(options.logger, facts, response, started);
    });
    const exchange: Exchange = {
      request,
      response,
      path: pathOf(request),
      facts,
      signal: controller.signal,
      markServerStream: () => serverStreams.add(controller),
      target: undefined,
      challenge: undefined,
      hopped: false,
    };
    runExchange(exchange, stageContext).catch((error: unknown) => {
      options.logger.error({ requestId, err: error }, 'unhandled error in request handler');
      writeError(response, error, requestId, null);
    });
  };
  const stageContext: ExchangeStageContext = { ...options.stages, isDraining: () => draining };

  // Node's own timeouts, checked often enough to hold them within a quarter of the shorter one.
  const timeouts = {
    // Node refuses a headers timeout longer than the request's.
    headersTimeout: Math.min(options.timeouts.headersMs, options.timeouts.requestMs),
    requestTimeout: options.timeouts.requestMs,
    connectionsCheckingInterval: Math.min(
      30_000,
      Math.max(
        100,
        Math.floor(Math.min(options.timeouts.headersMs, options.timeouts.requestMs) / 4),
      ),
    ),
    keepAliveTimeout: 65_000,
  };
  const server = options.tls
    ? createHttpsServer({ ...options.tls, ...timeouts }, onRequest)
    : createServer(timeouts, onRequest);
  if (options.tls) {
    const handshakes = options.tlsHandshakes;
    // Prepended: runs before the HTTP layer attaches its parser, so a refused socket is never read.
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      // Client-initiated renegotiation (TLS 1.2) costs the server a full handshake each time and
      // would let a client swap certificates under a verified connection: it ends the connection.
      socket.disableRenegotiation();
      handshakes?.onSecureConnection(socket);
    });
    if (handshakes) {
      server.on('tlsClientError', (error: Error, socket: TLSSocket) =>
        handshakes.onClientError(error, socket),
      );
    }
  }
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const open = [...inFlight.values()].find((candidate) => candidate.response.socket === socket);
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && open && !open.response.headersSent) {
      // The body stopped arriving: refused in Warden's terms, with its reference, then closed.
      // A refusal already on its way (draining a refused body) closes the connection itself.
      if (refusalWrittenTo(open.response) === undefined) {
        writeErrorAndClose(
          open.response,
          new WardenError('WARDEN_REQUEST_TIMEOUT'),
          open.requestId,
        );
      }
      return;
    }
    answerClientError(error, socket, open?.response.headersSent ?? false);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    server,
    port,
    async close(graceMs) {
      draining = true;
      // The listener stays open through the drain: a load balancer's probe must still see /readyz
      // turn 503, and a client its 503 WARDEN_SHUTTING_DOWN, rather than a refused connection.
      // Exchanges arriving now are refused at once, so only the earlier ones are waited for.
      server.closeIdleConnections();
      for (const stream of serverStreams) stream.abort(new WardenError('WARDEN_SHUTTING_DOWN'));
      const earlier = [...inFlight.keys()];
      await waitUntil(() => earlier.every((controller) => !inFlight.has(controller)), graceMs);
      server.close();
      // Still open after the grace: each endpoint answers its request with WARDEN_SHUTTING_DOWN.
      const reason = new WardenError('WARDEN_SHUTTING_DOWN');
      for (const controller of inFlight.keys()) controller.abort(reason);
      await waitUntil(() => inFlight.size === 0, CUT_FLUSH_MS);
      for (const { requestId, response } of inFlight.values()) {
        writeError(response, reason, requestId, null);
      }
      server.closeAllConnections();
    },
  };
}

async function waitUntil(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(25, ms)));
  }
}

/** The request's path without its query. */
function pathOf(request: IncomingMessage): string {
  return (request.url ?? '/').split('?')[0] ?? '/';
}

/**
 * What Node itself answers when its HTTP parser refuses a connection's bytes (malformed request
 * line or headers, oversized headers, a request whose headers never finished arriving): a bare
 * status, then the connection is closed. Nothing is written over a response already started.
 */
function answerClientError(
  error: NodeJS.ErrnoException,
  socket: Duplex,
  responseStarted: boolean,
): void {
  if (socket.writable && !responseStarted && error.code !== 'ECONNRESET') {
    const status =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : error.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? 413
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? 408
            : 400;
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy(error);
}

/** One access-log line per exchange; the request id ties it to the client's error reference. */
function logExchange(
  logger: Logger,
  facts: ExchangeFacts,
  response: ServerResponse,
  started: number,
): void {
  if (!logger.isLevelEnabled('info')) return;
  logger.info(
    {
      requestId: facts.requestId,
      method: facts.method,
      // Without the query: a token sent in the URL (refused) must not reach the log either.
      path: facts.path,
      status: response.statusCode,
      completed: response.writableFinished,
      ms: Math.round((performance.now() - started) * 100) / 100,
    },
    'exchange',
  );
}
