/**
 * Warden in front of conformance fixtures, as the conformance CLI reaches it. The CLI cannot send
 * credentials, so it goes through a token injector; the injector forwards Host unchanged, so the
 * gateway must accept the injector's address as a Host.
 */
import { startTestGateway, type TestGateway } from './gateway.js';
import { findFreePort } from './processes.js';
import { startTokenInjector, type TokenInjector } from './token-injector.js';

export interface ConformanceGateway {
  readonly gateway: TestGateway;
  readonly injector: TokenInjector;
  /** The URL the CLI is pointed at for one upstream: `<injector>/mcp/<upstream>`. */
  endpoint(upstream: string): string;
  close(): Promise<void>;
}

/** Starts a test gateway serving `upstreams` (the config's `upstreams` key) behind an injector. */
export async function startConformanceGateway(
  upstreams: Record<string, unknown>,
): Promise<ConformanceGateway> {
  const injectorPort = await findFreePort();
  const gateway = await startTestGateway({
    log: { level: 'warn' },
    listen: {
      host: '127.0.0.1',
      port: 0,
      allowed_hosts: [`127.0.0.1:${injectorPort}`, `localhost:${injectorPort}`],
    },
    upstreams,
  });
  let injector: TokenInjector;
  try {
    injector = await startTokenInjector(gateway.url, () => gateway.token(), injectorPort);
  } catch (error) {
    await gateway.close();
    throw error;
  }
  return {
    gateway,
    injector,
    endpoint: (upstream) => `${injector.url}/mcp/${upstream}`,
    async close() {
      await injector.close();
      await gateway.close();
    },
  };
}
