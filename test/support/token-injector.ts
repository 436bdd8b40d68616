/**
 * A stand-in for an agent runtime that holds a token: a loopback reverse proxy that adds
 * `Authorization: Bearer <token>` to every request and forwards everything else untouched
 * (method, path, headers including Host and Origin, body, streamed response). Tools that cannot
 * send credentials themselves, like the conformance CLI, reach the gateway through it.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenInjector {
  /** Base URL of the injector, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startTokenInjector(
  target: string,
  token: () => Promise<string>,
  port = 0,
): Promise<TokenInjector> {
  const destination = new URL(target);
  const server: Server = createServer((incoming, outgoing) => {
    void token().then(
      (bearer) => {
        const upstream = httpRequest(
          {
            host: destination.hostname,
            port: destination.port,
            method: incoming.method,
            path: incoming.url,
            headers: { ...incoming.headers, authorization: `Bearer ${bearer}` },
          },
          (answer) => {
            outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(outgoing);
          },
        );
        upstream.on('error', () => outgoing.destroy());
        outgoing.on('close', () => upstream.destroy());
        incoming.pipe(upstream);
      },
      () => outgoing.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
