/**
 * A plain HTTP load balancer on 127.0.0.1, port 0, with no session affinity: each request (not
 * each connection) goes to the next backend in turn, as a balancer without sticky sessions does.
 * Responses stream back as they come (SSE included).
 */
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Balancer {
  readonly url: string;
  /** Which backend each request went to, by index, oldest first. */
  readonly routed: number[];
  /** Backends taken out of the rotation (a dead replica the balancer noticed). */
  remove(index: number): void;
  close(): Promise<void>;
}

export async function startRoundRobinBalancer(backends: readonly string[]): Promise<Balancer> {
  const routed: number[] = [];
  const removed = new Set<number>();
  let next = 0;
  const server = createServer((request, response) => {
    let index = next % backends.length;
    for (let tries = 0; removed.has(index) && tries < backends.length; tries += 1) {
      next += 1;
      index = next % backends.length;
    }
    next += 1;
    routed.push(index);
    const target = new URL(request.url ?? '/', backends[index]);
    const outgoing = httpRequest(target, { method: request.method, headers: request.headers });
    outgoing.on('response', (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      response.flushHeaders();
      answer.pipe(response);
      response.on('close', () => answer.destroy());
    });
    outgoing.on('error', () => {
      if (!response.headersSent) response.writeHead(502);
      response.end();
    });
    request.pipe(outgoing);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    routed,
    remove: (index) => removed.add(index),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
