/**
 * A GET, the session's server-to-client stream, held open as long as the client keeps it: it
 * carries no message to decide, so it passes the session's owner (8), forward (14), respond (16).
 */
import { readHeader } from '../../http/http-headers.js';
import { writeReply } from '../../mcp/http-reply.js';
import { requireEventStreamAccepted, type SessionExchange } from '../../mcp/read-exchange.js';
import {
  beginSessionUse,
  endSessionUse,
  findOwnSession,
  forwardContext,
  openSessionStream,
} from '../../mcp/session-exchange.js';
import type { McpEndpointOptions } from './exchange.js';

export async function relayServerStream(
  options: McpEndpointOptions,
  exchange: SessionExchange,
): Promise<void> {
  requireEventStreamAccepted(exchange);
  // 8. session owner; a client holding its stream open is using its session
  const session = findOwnSession(options.sessions, options.upstream.name, exchange);
  const lastEventId = readHeader(exchange.request, 'last-event-id');
  beginSessionUse(session, 'stream');
  try {
    // 14. forward
    const context = forwardContext(exchange, lastEventId);
    const reply = await openSessionStream(options.sessions, session, context);
    // 16. respond
    await writeReply(exchange.response, reply, {
      requestId: exchange.requestId,
      rpcId: undefined,
      signal: exchange.signal,
      headers: { 'mcp-session-id': session.id },
    });
  } finally {
    endSessionUse(session, 'stream');
  }
}
