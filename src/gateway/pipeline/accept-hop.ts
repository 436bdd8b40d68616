/**
 * Before the Host guard: an exchange relayed by another replica (cluster/session-homes.ts) is
 * accepted only with a genuine, fresh hop signature meant for this replica, used once; its
 * client address is the one the first replica saw, and the Host guard is not applied again (the
 * first replica applied it; the hop names this replica's own address). A client that sends hop
 * headers itself is refused (WARDEN_HOP_REFUSED) and recorded.
 */
import { WardenError } from '../../domain/errors.js';
import { claimsHop } from '../cluster/hop-signature.js';
import type { ExchangeStage } from './exchange.js';

export const acceptHop: ExchangeStage = (exchange, gateway) => {
  if (!claimsHop(exchange.request.headers)) return 'next';
  if (gateway.homes === undefined) {
    throw new WardenError(
      'WARDEN_HOP_REFUSED',
      'this replica takes no relayed requests (cluster.advertise_url is not set)',
    );
  }
  const claims = gateway.homes.accept(exchange.request);
  exchange.hopped = true;
  exchange.facts.source = claims.source;
  return 'next';
};
