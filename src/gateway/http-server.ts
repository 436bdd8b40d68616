/**
 * The listener: routes /mcp/<upstream> to that upstream's endpoint, serves health probes,
 * guards Host/Origin, and drains in-flight exchanges on shutdown.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createServer as createHttpsServer,
  type ServerOptions as HttpsServerOptions,
} from 'node:https';
import type { AddressInfo } from 'node:net';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import { firstValue } from '../mcp/http-headers.js';
import { writeError } from '../mcp/http-reply.js';
import type { OriginGuard } from '../mcp/origin-guard.js';
import type { ExchangeHandle, McpEndpoint } from '../mcp/streamable-http-endpoint.js';
import type { AuthFailure } from './auth-failure-reporter.js';
import type { Logger } from './logger.js';

/** A plain HTTP handler for the gateway's own routes (metadata, JWKS, token endpoint). */
export type RouteHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  /** HTTPS (and client certificates) when set; plain HTTP otherwise. */
  readonly tls: HttpsServerOptions | undefined;
  readonly endpoints: ReadonlyMap<string, McpEndpoint>;
  /** Routes served without authentication: metadata, keys, the token endpoint. */
  readonly route: (path: string) => RouteHandler | undefined;
  /** Stage 1 of the pipeline, run before any MCP endpoint sees the request. */
  readonly authenticate: (request: IncomingMessage, upstream: string) => Promise<Identity>;
  /** The WWW-Authenticate challenge for a refused request to an upstream's endpoint. */
  readonly challenge: (error: unknown, upstream: string) => string | undefined;
  /** Called for each request refused by authentication. */
  readonly onAuthFailure: (failure: AuthFailure) => void;
  readonly guard: () => OriginGuard;
  readonly logger: Logger;
  readonly isReady: () => boolean;
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

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const inFlight = new Map<AbortController, ServerResponse>();
  // Server-to-client streams (GET) never finish by themselves: a drain must not wait for them.
  const serverStreams = new Set<AbortController>();
  let draining = false;

  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const controller = new AbortController();
    const requestId = randomUUID();
    // Every call is traced: the client's W3C traceparent if valid, else a new trace started here.
    if (!VALID_TRACEPARENT.test(firstValue(request.headers.traceparent) ?? '')) {
      request.headers.traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    }
    const started = performance.now();
    inFlight.set(controller, response);
    // While draining, every connection is told to go, so clients reconnect elsewhere.
    if (draining) response.setHeader('connection', 'close');
    response.on('close', () => {
      // A finished exchange has nothing to cancel; aborting it would only wake every listener.
      if (!response.writableFinished) controller.abort();
      inFlight.delete(controller);
      serverStreams.delete(controller);
      logExchange(options.logger, request, response, requestId, started);
    });
    const exchange: Omit<ExchangeHandle, 'identity'> = {
      requestId,
      signal: controller.signal,
      markServerStream: () => serverStreams.add(controller),
    };
    handle(request, response, exchange).catch((error: unknown) => {
      options.logger.error({ requestId, err: error }, 'unhandled error in request handler');
      writeError(response, error, requestId, null);
    });
  };
  const server = options.tls
    ? createHttpsServer({ ...options.tls, keepAliveTimeout: 65_000 }, onRequest)
    : createServer({ keepAliveTimeout: 65_000 }, onRequest);

  async function handle(
    request: IncomingMessage,
    response: ServerResponse,
    exchange: Omit<ExchangeHandle, 'identity'>,
  ): Promise<void> {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (path === '/healthz') return sendJson(response, 200, { status: 'ok' });
    if (path === '/readyz') {
      const ready = !draining && options.isReady();
      return sendJson(response, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
    }
    let upstream: string | undefined;
    try {
      options.guard().check(request.headers.host, firstValue(request.headers.origin));
      if (draining) throw new WardenError('WARDEN_SHUTTING_DOWN');
      const route = options.route(path);
      if (route) return await route(request, response);
      const match = /^\/mcp\/([^/]+)\/?$/.exec(path);
      if (!match) {
        throw new WardenError(
          path === '/mcp' || path.startsWith('/mcp/')
            ? 'WARDEN_UNKNOWN_UPSTREAM'
            : 'WARDEN_NOT_FOUND',
        );
      }
      const name = decodeURIComponent(match[1] ?? '');
      const endpoint = options.endpoints.get(name);
      if (!endpoint) throw new WardenError('WARDEN_UNKNOWN_UPSTREAM');
      upstream = name;
      const identity = await options.authenticate(request, name);
      await endpoint(request, response, { ...exchange, identity });
    } catch (error) {
      const challenge = upstream === undefined ? undefined : options.challenge(error, upstream);
      if (challenge !== undefined && upstream !== undefined) {
        const wardenError = error instanceof WardenError ? error : undefined;
        options.onAuthFailure({
          requestId: exchange.requestId,
          source: request.socket.remoteAddress ?? 'unknown',
          upstream,
          code: wardenError?.code ?? 'unknown',
          reason:
            typeof wardenError?.details?.['reason'] === 'string'
              ? wardenError.details['reason']
              : undefined,
        });
      }
      writeError(
        response,
        error,
        exchange.requestId,
        null,
        challenge === undefined ? {} : { 'www-authenticate': challenge },
      );
    }
  }

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
      for (const response of inFlight.values()) writeError(response, reason, 'shutdown', null);
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

/** One access-log line per exchange; the request id ties it to the client's error reference. */
function logExchange(
  logger: Logger,
  request: IncomingMessage,
  response: ServerResponse,
  requestId: string,
  started: number,
): void {
  if (!logger.isLevelEnabled('info')) return;
  logger.info(
    {
      requestId,
      method: request.method,
      path: request.url,
      status: response.statusCode,
      completed: response.writableFinished,
      ms: Math.round((performance.now() - started) * 100) / 100,
    },
    'exchange',
  );
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    })
    .end(text);
}
