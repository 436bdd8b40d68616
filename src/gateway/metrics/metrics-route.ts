/**
 * `GET /metrics`: the registry in Prometheus' text format, to a scraper that shows the bearer
 * secret when one is configured. A refused scrape is an authentication failure like any other:
 * reported (aggregated per source) and answered 401.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Registry } from 'prom-client';
import { WardenError } from '../../domain/errors.js';
import type { ExchangeLedger } from '../exchange-ledger.js';
import type { RouteHandler } from '../pipeline/exchange.js';
import type { RefusalRecords } from '../refusal-records.js';

export const METRICS_PATH = '/metrics';

/** Why a scrape was refused, as its auth.failed record names it. */
export type MetricsRefusalReason = 'metrics_token_missing' | 'metrics_token_wrong';

export interface MetricsRouteOptions {
  readonly registry: Registry;
  /** The bearer secret a scraper must send; undefined: none asked (a listener of its own). */
  readonly token: string | undefined;
  /** Where the listener keeps each exchange's facts, and the records of refused callers. */
  readonly ledger: Pick<ExchangeLedger, 'of'>;
  readonly refusals: Pick<RefusalRecords, 'reportAuthFailure'>;
}

export function createMetricsRoute(options: MetricsRouteOptions): RouteHandler {
  const expected = options.token === undefined ? undefined : digest(options.token);
  return async (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      throw new WardenError('WARDEN_METHOD_NOT_ALLOWED');
    }
    if (expected !== undefined) {
      const presented = bearerOf(request);
      const reason =
        presented === undefined
          ? 'metrics_token_missing'
          : timingSafeEqual(digest(presented), expected)
            ? undefined
            : 'metrics_token_wrong';
      if (reason !== undefined) {
        const facts = options.ledger.of(request);
        if (facts !== undefined) {
          options.refusals.reportAuthFailure(facts, { code: 'WARDEN_UNAUTHENTICATED', reason });
        }
        response.setHeader('www-authenticate', 'Bearer realm="warden-metrics"');
        throw new WardenError('WARDEN_UNAUTHENTICATED');
      }
    }
    const text = await options.registry.metrics();
    response
      .writeHead(200, {
        'content-type': options.registry.contentType,
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
      })
      .end(text);
  };
}

/** The one bearer token of the request; two Authorization headers are none. */
function bearerOf(request: IncomingMessage): string | undefined {
  const headers = request.headersDistinct['authorization'];
  if (headers?.length !== 1) return undefined;
  const match = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(headers[0] ?? '');
  return match?.[1];
}

/** Equal-length digests, so the comparison takes the same time whatever was sent. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
