/**
 * Authentication for the admin API, through the same door as the MCP endpoints': a caller
 * refused here — no token, a bad one, or one without the role the route needs — is reported as an
 * authentication failure (`auth.failed`, aggregated per source) under its exchange's reference,
 * and a caller let in is named on the exchange, for the record of any later refusal.
 */
import type { IncomingMessage } from 'node:http';
import { requireAccess, type AdminAuthenticator } from '../admin/admin-access.js';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import type { ExchangeLedger } from './exchange-ledger.js';
import type { RefusalRecords } from './refusal-records.js';

export function createAdminAuthenticator(options: {
  /** Stage 1 of the pipeline, for the gateway's own API. */
  readonly authenticate: (request: IncomingMessage) => Promise<Identity>;
  readonly ledger: ExchangeLedger;
  readonly refusals: Pick<RefusalRecords, 'reportAuthFailure'>;
}): AdminAuthenticator {
  return async (request, access) => {
    const exchange = options.ledger.of(request);
    const refused = (error: unknown, reason: string | undefined): unknown => {
      if (exchange !== undefined) {
        options.refusals.reportAuthFailure(exchange, {
          code: error instanceof WardenError ? error.code : 'unknown',
          reason,
        });
      }
      return error;
    };
    let identity: Identity;
    try {
      identity = await options.authenticate(request);
    } catch (error) {
      const reason =
        error instanceof WardenError && typeof error.details?.['reason'] === 'string'
          ? error.details['reason']
          : undefined;
      throw refused(error, reason);
    }
    if (exchange !== undefined) exchange.identity = identity;
    if (access !== undefined) {
      try {
        requireAccess(identity, access);
      } catch (error) {
        throw refused(error, 'missing_role');
      }
    }
    return identity;
  };
}
