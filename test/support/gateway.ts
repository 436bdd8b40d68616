/** Starts a real Warden gateway on 127.0.0.1, port 0, for a test. */
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type RunningGateway } from '../../src/gateway/app.js';
import { createLogger } from '../../src/gateway/logger.js';

export interface TestGateway extends RunningGateway {
  /** Every JSON log line the gateway wrote. */
  readonly logs: Record<string, unknown>[];
  endpoint(upstream: string): string;
}

export async function startTestGateway(raw: Record<string, unknown>): Promise<TestGateway> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const config = parseConfig(
    {
      listen: { host: '127.0.0.1', port: 0 },
      store: 'sqlite::memory:',
      log: { level: 'debug' },
      ...raw,
    },
    'test',
  );
  const gateway = await startGateway(config, { logger: createLogger('debug', sink) });
  return {
    url: gateway.url,
    port: gateway.port,
    close: () => gateway.close(),
    logs,
    endpoint: (upstream) => `${gateway.url}/mcp/${upstream}`,
  };
}
