/**
 * The gauges, read when Prometheus scrapes through small read-only callbacks the composition root
 * passes in: nothing on the request path updates them.
 */
import { Gauge, type Registry } from 'prom-client';
import type { MetricLabels } from './metric-labels.js';

/** The states a circuit breaker reports (mcp/upstream/circuit-breaker.ts). */
const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;

/** Pending approvals counted at most: the read stays cheap however many wait. */
export const PENDING_APPROVALS_READ_LIMIT = 1000;

export interface GaugeSources {
  /** Records waiting for their audit append. */
  readonly auditQueued: () => number;
  /** Each upstream's circuit state now. */
  readonly circuits: () => Iterable<{ readonly upstream: string; readonly state: string }>;
  /** The upstream of each open client session on this replica. */
  readonly sessionUpstreams: () => Iterable<string>;
  /** Pending approval requests in the store, read at most up to `limit`. */
  readonly pendingApprovals: (limit: number) => Promise<number>;
  /** Told when a store read at scrape fails; the gauge keeps its last value. */
  readonly onReadError: (error: unknown) => void;
}

export function registerScrapeGauges(
  registry: Registry,
  labels: Pick<MetricLabels, 'upstream'>,
  upstreams: readonly string[],
  sources: GaugeSources,
): void {
  const registers = [registry];
  new Gauge({
    name: 'warden_audit_queue_depth',
    help: 'Audit records waiting for their append.',
    registers,
    collect() {
      this.set(sources.auditQueued());
    },
  });
  new Gauge({
    name: 'warden_upstream_circuit_state',
    help: "Each upstream's circuit breaker: 1 for its current state (closed, open, half_open), 0 for the others.",
    labelNames: ['upstream', 'state'],
    registers,
    collect() {
      for (const { upstream, state } of sources.circuits()) {
        for (const candidate of CIRCUIT_STATES) {
          this.set(
            { upstream: labels.upstream(upstream), state: candidate },
            candidate === state ? 1 : 0,
          );
        }
      }
    },
  });
  new Gauge({
    name: 'warden_sessions_open',
    help: 'Client sessions open on this replica, by upstream.',
    labelNames: ['upstream'],
    registers,
    collect() {
      const counts = new Map(upstreams.map((upstream) => [upstream, 0]));
      for (const upstream of sources.sessionUpstreams()) {
        const label = labels.upstream(upstream);
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
      for (const [upstream, count] of counts) this.set({ upstream }, count);
    },
  });
  new Gauge({
    name: 'warden_approvals_pending',
    help: `Approval requests waiting for a decision in the store, for all replicas (read at scrape; at most ${PENDING_APPROVALS_READ_LIMIT} counted).`,
    registers,
    async collect() {
      try {
        this.set(await sources.pendingApprovals(PENDING_APPROVALS_READ_LIMIT));
      } catch (error) {
        sources.onReadError(error);
      }
    },
  });
}
