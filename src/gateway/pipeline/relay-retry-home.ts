/**
 * A 2026-07-28 retry (its requestState answers an input request) resumes a call parked on one
 * replica, with that call's upstream exchange: when the balancer sent it to another replica, it
 * is relayed home over the signed internal hop, where every stage runs on it. A state naming a
 * replica that is gone cannot resume anything: the client is told to send the original request.
 */
import { WardenError } from '../../domain/errors.js';
import { isRequest } from '../../domain/jsonrpc.js';
import type { PostedExchange } from '../../mcp/read-exchange.js';
import type { McpEndpointOptions } from './exchange.js';

export async function relayRetryHome(
  options: McpEndpointOptions,
  exchange: PostedExchange,
): Promise<boolean> {
  const { homes, requestStates } = options;
  const { message } = exchange;
  if (homes === undefined || requestStates === undefined) return false;
  // Relayed here already: it must be the retry it was relayed for, and it goes no further.
  if (homes.wasRelayed(exchange.request)) {
    homes.checkRetryHop(
      exchange.request,
      isRequest(message) ? message.params?.['requestState'] : undefined,
    );
    return false;
  }
  if (!isRequest(message)) return false;
  const state = message.params?.['requestState'];
  if (typeof state !== 'string') return false;
  const home = requestStates.homeOf(state);
  if (home === undefined || home === requestStates.replica) return false;
  const relayed = await homes.relayRetry(
    home,
    state,
    exchange.request,
    JSON.stringify(message),
    exchange.response,
    exchange.request.socket.remoteAddress ?? 'unknown',
    exchange.signal,
  );
  if (!relayed) {
    throw new WardenError(
      'WARDEN_INVALID_REQUEST_STATE',
      'The replica that held this call has stopped. Send the original request again.',
    );
  }
  return true;
}
