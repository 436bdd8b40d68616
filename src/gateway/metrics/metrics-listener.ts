/**
 * A listener of its own for /metrics (`metrics.listen`), loopback by default: the same exchange
 * pipeline as the main listener (probes, Host and Origin guard, records of refusals), with one
 * route and no MCP endpoint.
 */
import { WardenError } from '../../domain/errors.js';
import { createOriginGuard, type OriginGuard } from '../../http/origin-guard.js';
import { startListener, type Listener, type ListenerOptions } from '../http-server.js';
import type { GatewayRoute } from '../pipeline/index.js';
import { METRICS_PATH } from './metrics-route.js';

export interface MetricsListenerOptions extends Pick<
  ListenerOptions,
  'ledger' | 'timeouts' | 'logger'
> {
  readonly host: string;
  readonly port: number;
  readonly route: GatewayRoute;
  readonly refusals: ListenerOptions['stages']['refusals'];
  /** What /readyz tells of the replicas on this store. */
  readonly cluster: ListenerOptions['stages']['cluster'];
}

export async function startMetricsListener(options: MetricsListenerOptions): Promise<Listener> {
  // The guard needs the bound port, known only after listen (port 0 in tests).
  let guard: OriginGuard = {
    check() {
      throw new Error('metrics listener not ready');
    },
  };
  const listener = await startListener({
    host: options.host,
    port: options.port,
    tls: undefined,
    // Its one route checks its own secret: no agent authenticates, no session lives here.
    stages: {
      authenticate: () => Promise.reject(new WardenError('WARDEN_UNAUTHENTICATED')),
      homes: undefined,
      holdsSession: () => false,
      cluster: options.cluster,
      isCallerRefusal: () => false,
      challenge: () => undefined,
      refusals: options.refusals,
      isReady: () => true,
      endpoints: new Map(),
      route: (path) => (path === METRICS_PATH ? options.route : undefined),
      guard: () => guard,
    },
    ledger: options.ledger,
    timeouts: options.timeouts,
    logger: options.logger,
  });
  guard = createOriginGuard({
    listenHost: options.host,
    port: listener.port,
    allowedHosts: [],
    allowedOrigins: [],
  });
  return listener;
}
