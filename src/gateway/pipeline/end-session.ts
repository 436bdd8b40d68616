/**
 * A DELETE: the client ends its session, upstream too. It carries no message to decide, so it
 * passes the session's owner (8), forward (14), respond (16).
 */
import { writeEmptyReply } from '../../mcp/http-reply.js';
import type { SessionExchange } from '../../mcp/read-exchange.js';
import { discardSession, findOwnSession, forwardContext } from '../../mcp/session-exchange.js';
import type { McpEndpointOptions } from './exchange.js';

export async function endSession(
  options: McpEndpointOptions,
  exchange: SessionExchange,
): Promise<void> {
  // 8. session owner
  const session = findOwnSession(options.sessions, options.upstream.name, exchange);
  // 14. forward
  await discardSession(options.sessions, session, forwardContext(exchange));
  // 16. respond
  writeEmptyReply(exchange.response, exchange.requestId);
}
