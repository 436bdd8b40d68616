/**
 * Prometheus metrics for one gateway: the counters fed by the audit log's appended records, the
 * decision timer around the authorizer, the gauges read at scrape, and the /metrics route.
 */
import type { Config } from '../../config/config.js';
import { ConfigError } from '../../domain/errors.js';
import type { MessageAuthorizer } from '../../policy/authorize-message.js';
import type { Store } from '../../store/types.js';
import type { AuditAppendObserver } from '../audit-log.js';
import type { ExchangeLedger } from '../exchange-ledger.js';
import type { GatewayRoute } from '../pipeline/index.js';
import type { RefusalRecords } from '../refusal-records.js';
import { countAuditRecords } from './count-audit-records.js';
import { createMetricLabels, type MetricLabels } from './metric-labels.js';
import { createMetricSet, type MetricSet } from './metric-set.js';
import { createMetricsRoute } from './metrics-route.js';
import { registerScrapeGauges, type GaugeSources } from './scrape-gauges.js';
import { timeDecisions } from './time-decisions.js';

export interface GatewayMetrics {
  /** Counts each batch the audit log appends. */
  readonly onAppended: AuditAppendObserver;
  /** The authorizer, its tool-call decisions timed. */
  timeDecisions(authorizer: MessageAuthorizer): MessageAuthorizer;
  /** Learns the tool names already pinned in the store (labels; see metric-labels.ts). */
  learnPinnedTools(store: Pick<Store, 'toolDefinitions'>): Promise<void>;
  /** Reads the gauges from these sources at each scrape. Once. */
  readGaugesFrom(sources: GaugeSources): void;
  /** The /metrics route, refusing a scraper without the configured secret. */
  route(options: {
    readonly ledger: Pick<ExchangeLedger, 'of'>;
    readonly refusals: Pick<RefusalRecords, 'reportAuthFailure'>;
  }): GatewayRoute;
  /** For tests and embedding: the metrics themselves. */
  readonly metrics: MetricSet;
}

/**
 * Reads the bearer secret from the environment (a ConfigError when it is not set: metrics must
 * not be served unprotected by mistake) and creates the metrics. Only for `metrics.enabled`.
 */
export function createGatewayMetrics(
  config: Pick<Config, 'metrics' | 'upstreams'>,
  env: NodeJS.ProcessEnv = process.env,
): GatewayMetrics {
  const token = readToken(config.metrics.tokenEnv, env);
  const upstreams = [...config.upstreams.keys()];
  const labels: MetricLabels = createMetricLabels({
    upstreams,
    tools: [...config.upstreams.values()].flatMap((upstream) =>
      [...upstream.tools.keys()].map((tool) => [upstream.name, tool] as const),
    ),
  });
  const metrics = createMetricSet();
  let gaugesRead = false;
  return {
    metrics,
    onAppended: (records, latencyMs) => countAuditRecords(metrics, labels, records, latencyMs),
    timeDecisions: (authorizer) => timeDecisions(authorizer, metrics),
    async learnPinnedTools(store) {
      for (const definition of await store.toolDefinitions.list()) {
        labels.learnTool(definition.upstream, definition.tool);
      }
    },
    readGaugesFrom(sources) {
      if (gaugesRead) throw new Error('the metrics already read their gauges');
      gaugesRead = true;
      registerScrapeGauges(metrics.registry, labels, upstreams, sources);
    },
    route: ({ ledger, refusals }) => ({
      handler: createMetricsRoute({ registry: metrics.registry, token, ledger, refusals }),
      // Not the agents' authenticate stage: the route checks the scraper's own secret.
      access: 'public',
    }),
  };
}

function readToken(name: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value === '') {
    throw new ConfigError('environment', [
      `metrics.token_env: the environment variable ${name} is not set`,
    ]);
  }
  return value;
}
