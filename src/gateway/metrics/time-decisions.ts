/**
 * Times the policy stage's decisions on tool calls. The decision's record carries no latency (it
 * is the log's business what was decided, not how fast), so the authorizer is wrapped instead.
 */
import type { MessageAuthorizer } from '../../policy/authorize-message.js';
import { effectOf } from './count-audit-records.js';
import type { MetricSet } from './metric-set.js';

export function timeDecisions(
  authorizer: MessageAuthorizer,
  metrics: Pick<MetricSet, 'decisionSeconds'>,
): MessageAuthorizer {
  return {
    async authorize(call, identity, upstream, listTools) {
      if (call.kind !== 'tool_call')
        return authorizer.authorize(call, identity, upstream, listTools);
      const started = performance.now();
      try {
        const authorization = await authorizer.authorize(call, identity, upstream, listTools);
        observe(effectOf(authorization.decision), started);
        return authorization;
      } catch (error) {
        // The pipeline turns a failing policy stage into a denial: an `error` effect.
        observe('error', started);
        throw error;
      }
    },
    reauthorize: (call, identity, upstream) => authorizer.reauthorize(call, identity, upstream),
  };

  function observe(effect: string, started: number): void {
    metrics.decisionSeconds.observe({ effect }, (performance.now() - started) / 1000);
  }
}
