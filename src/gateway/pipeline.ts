/**
 * The order of checks every client message passes through before it reaches an upstream.
 * Transport concerns (HTTP framing, sessions, size limits, Origin/Host) are handled by mcp/;
 * this file is where the security stages are composed, in order.
 *
 *   1. authenticate  (identity/, not built yet: every endpoint is open on loopback only)
 *   2. parse         done by the endpoint: one valid JSON-RPC message within the size limit
 *   3. authorize     (policy/, not built yet)
 *   4. record        (audit/, not built yet)
 *   5. forward       by the endpoint, with Warden's own upstream credential
 */
import type { JsonRpcMessage } from '../domain/jsonrpc.js';
import type { ClientMessageContext, MessageGate } from '../mcp/streamable-http-endpoint.js';
import type { Logger } from './logger.js';

export function createPipeline(logger: Logger): MessageGate {
  return {
    admitClientMessage(message: JsonRpcMessage, context: ClientMessageContext): Promise<void> {
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          {
            requestId: context.requestId,
            upstream: context.upstreamName,
            session: context.sessionId,
            method: 'method' in message ? message.method : undefined,
          },
          'client message',
        );
      }
      return Promise.resolve();
    },
  };
}
