/**
 * The listener: routes /mcp/<upstream> to that upstream's endpoint, serves health probes,
 * guards Host/Origin, and drains in-flight exchanges on shutdown.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WardenError } from '../domain/errors.js';
import { writeError } from '../mcp/http-reply.js';
import type { OriginGuard } from '../mcp/origin-guard.js';
import type { McpEndpoint } from '../mcp/streamable-http-endpoint.js';
import type { Logger } from './logger.js';

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly endpoints: ReadonlyMap<string, McpEndpoint>;
  readonly guard: () => OriginGuard;
  readonly logger: Logger;
  readonly isReady: () => boolean;
}

export interface Listener {
  readonly server: Server;
  readonly port: number;
  /** Stops accepting, waits up to graceMs for open exchanges, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const inFlight = new Set<AbortController>();
  let draining = false;

  const server = createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
    const controller = new AbortController();
    inFlight.add(controller);
    response.on('close', () => {
      controller.abort();
      inFlight.delete(controller);
    });
    handle(request, response, controller.signal).catch((error: unknown) => {
      options.logger.error({ err: error }, 'unhandled error in request handler');
      writeError(response, error, 'unknown', null);
    });
  });

  async function handle(
    request: IncomingMessage,
    response: ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (path === '/healthz') return sendJson(response, 200, { status: 'ok' });
    if (path === '/readyz') {
      const ready = !draining && options.isReady();
      return sendJson(response, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
    }
    try {
      options.guard().check(request.headers.host, firstHeader(request.headers.origin));
      if (draining) throw new WardenError('WARDEN_SHUTTING_DOWN');
      const match = /^\/mcp\/([^/]+)\/?$/.exec(path);
      if (!match) {
        throw new WardenError(
          path.startsWith('/mcp') ? 'WARDEN_UNKNOWN_UPSTREAM' : 'WARDEN_NOT_FOUND',
        );
      }
      const endpoint = options.endpoints.get(decodeURIComponent(match[1] ?? ''));
      if (!endpoint) throw new WardenError('WARDEN_UNKNOWN_UPSTREAM');
      await endpoint(request, response, signal);
    } catch (error) {
      writeError(response, error, 'gateway', null);
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
      server.close();
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while (inFlight.size > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      for (const controller of inFlight) controller.abort();
      server.closeAllConnections();
    },
  };
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

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
