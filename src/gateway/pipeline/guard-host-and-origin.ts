/**
 * DNS rebinding: a request naming a Host or Origin the gateway does not answer to is refused
 * (WARDEN_FORBIDDEN_HOST / WARDEN_FORBIDDEN_ORIGIN) before anything reads it further.
 */
import { firstValue } from '../../http/http-headers.js';
import type { ExchangeStage } from './exchange.js';

export const guardHostAndOrigin: ExchangeStage = ({ request }, gateway) => {
  gateway.guard().check(request.headers.host, firstValue(request.headers.origin));
  return 'next';
};
