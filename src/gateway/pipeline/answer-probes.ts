/**
 * Health probes, answered before any check: a load balancer probes with whatever Host it likes,
 * and /readyz turns 503 while the gateway drains.
 */
import { sendJson } from '../../http/json-reply.js';
import type { ExchangeStage } from './exchange.js';

export const answerHealthProbes: ExchangeStage = ({ path, response }, gateway) => {
  if (path === '/healthz') {
    sendJson(response, 200, { status: 'ok' });
    return 'answered';
  }
  if (path === '/readyz') {
    const ready = !gateway.isDraining() && gateway.isReady();
    // Each replica's policy version, and what the live replicas disagree on.
    sendJson(response, ready ? 200 : 503, {
      status: ready ? 'ready' : 'not ready',
      cluster: gateway.cluster(),
    });
    return 'answered';
  }
  return 'next';
};
