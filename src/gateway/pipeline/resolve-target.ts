/**
 * Where the exchange goes: one of the gateway's own routes, or the endpoint of the upstream its
 * path names (`/mcp/<upstream>`). The path is decoded once here, so no route or endpoint decoding
 * it later can fail on a broken percent-encoding (WARDEN_INVALID_PATH).
 */
import { WardenError } from '../../domain/errors.js';
import type { ExchangeStage } from './exchange.js';

export const resolveTarget: ExchangeStage = (exchange, gateway) => {
  const { path } = exchange;
  decodePath(path);
  const route = gateway.route(path);
  if (route) {
    exchange.target = { kind: 'route', route };
    return 'next';
  }
  const match = /^\/mcp\/([^/]+)\/?$/.exec(path);
  if (!match) {
    throw new WardenError(
      path === '/mcp' || path.startsWith('/mcp/') ? 'WARDEN_UNKNOWN_UPSTREAM' : 'WARDEN_NOT_FOUND',
    );
  }
  const upstream = decodePath(match[1] ?? '');
  const endpoint = gateway.endpoints.get(upstream);
  if (!endpoint) throw new WardenError('WARDEN_UNKNOWN_UPSTREAM');
  exchange.target = { kind: 'mcp', upstream, endpoint };
  exchange.facts.upstream = upstream;
  return 'next';
};

/** A path, or a segment of it, decoded; a broken percent-encoding is the client's error. */
function decodePath(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new WardenError('WARDEN_INVALID_PATH');
  }
}
