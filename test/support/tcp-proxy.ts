/**
 * A TCP proxy on 127.0.0.1, port 0, for outage tests: it forwards every connection to a target
 * until the test cuts it (every open connection is reset, and new ones are reset as soon as they
 * are accepted), and again once the test restores it. Only the proxied path goes down: the real
 * server, and the other tests using it, are never touched.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  /** The port clients connect to instead of the target's. */
  readonly port: number;
  /** Connections forwarded so far (a reset one included). */
  readonly forwarded: number;
  /** The outage begins: every connection is reset, and every new one is reset on arrival. */
  cut(): void;
  /** The outage ends: new connections are forwarded again. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: {
  readonly host: string;
  readonly port: number;
}): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let down = false;
  let forwarded = 0;

  const server = createServer((client) => {
    if (down) {
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    forwarded += 1;
    const upstream = connect(target.port, target.host);
    const pair = [client, upstream] as const;
    // Either side failing or closing ends the pair: a half-forwarded connection would hang.
    const drop = (): void => {
      for (const socket of pair) {
        open.delete(socket);
        if (!socket.destroyed) socket.resetAndDestroy();
      }
    };
    for (const socket of pair) {
      open.add(socket);
      socket.on('error', drop);
      socket.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const resetAll = (): void => {
    for (const socket of [...open]) {
      open.delete(socket);
      socket.resetAndDestroy();
    }
  };

  return {
    port,
    get forwarded() {
      return forwarded;
    },
    cut() {
      down = true;
      resetAll();
    },
    restore() {
      down = false;
    },
    async close() {
      down = true;
      resetAll();
      server.close();
      await once(server, 'close');
    },
  };
}
