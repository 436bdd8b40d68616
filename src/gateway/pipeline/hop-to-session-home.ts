/**
 * After authentication, for an upstream's MCP endpoint: a request naming a session this replica
 * does not hold goes, as it came, to the replica that does (cluster/session-homes.ts), which runs
 * every stage on it and records it. A session no live replica holds is left to the endpoint,
 * which answers the specification's 404 so the client starts a new one. A relayed request is
 * never relayed again.
 */
import { firstValue } from '../../http/http-headers.js';
import type { ExchangeStage, StageResult } from './exchange.js';

export const hopToSessionHome: ExchangeStage = async (exchange, gateway): Promise<StageResult> => {
  const { homes } = gateway;
  if (homes === undefined || exchange.hopped || exchange.target?.kind !== 'mcp') return 'next';
  const session = firstValue(exchange.request.headers['mcp-session-id']);
  if (session === undefined || gateway.holdsSession(session)) return 'next';
  const relayed = await homes.relay(
    session,
    exchange.request,
    exchange.response,
    exchange.facts.source,
    exchange.signal,
  );
  if (!relayed) return 'next';
  // The owner tells this exchange's story under its own reference.
  exchange.facts.told = true;
  return 'answered';
};
