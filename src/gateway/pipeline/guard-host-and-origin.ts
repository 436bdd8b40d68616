/**
 * DNS rebinding: a request naming a Host or Origin the gateway does not answer to is refused
 * (WARDEN_FORBIDDEN_HOST / WARDEN_FORBIDDEN_ORIGIN) before anything reads it further.
 */
import { firstValue } from '../../http/http-headers.js';
import type { ExchangeStage } from './exchange.js';

export const guardHostAndOrigin: ExchangeStage = ({ request, hopped }, gateway) => {
  // The replica that relayed it checked the client's Host and Origin (accept-hop.ts).
  if (hopped) return 'next';
  gateway.guard().check(request.headers.host, firstValue(request.headers.origin));
  return 'next';
};
