/**
 * Hands the checked exchange to its target: a gateway route, or the upstream's MCP endpoint,
 * whose stages (createMcpEndpoint, index.ts) read the message, find its session, admit it,
 * forward it and write the reply.
 */
import { WardenError } from '../../domain/errors.js';
import type { ExchangeStage, StageResult } from './exchange.js';

export const dispatch: ExchangeStage = async (exchange): Promise<StageResult> => {
  const { target, request, response, facts } = exchange;
  if (target === undefined) throw new WardenError('WARDEN_NOT_FOUND');
  if (target.kind === 'route') {
    await target.route.handler(request, response, {
      requestId: facts.requestId,
      source: facts.source,
      identity: facts.identity,
    });
    return 'answered';
  }
  // The authenticate stage ran before this one for every MCP endpoint.
  if (facts.identity === undefined) throw new WardenError('WARDEN_UNAUTHENTICATED');
  await target.endpoint(request, response, {
    requestId: facts.requestId,
    signal: exchange.signal,
    markServerStream: exchange.markServerStream,
    identity: facts.identity,
  });
  return 'answered';
};
