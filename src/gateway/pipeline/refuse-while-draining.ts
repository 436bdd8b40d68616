/** A gateway shutting down takes no new exchange (WARDEN_SHUTTING_DOWN, 503). */
import { WardenError } from '../../domain/errors.js';
import type { ExchangeStage } from './exchange.js';

export const refuseWhileDraining: ExchangeStage = (_exchange, gateway) => {
  if (gateway.isDraining()) throw new WardenError('WARDEN_SHUTTING_DOWN');
  return 'next';
};
