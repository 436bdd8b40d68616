/**
 * An initialize, which opens a session, stages 8 to 16. The message stages come first (a caller
 * with no grant on the upstream is refused and recorded there), then the caller's share and the
 * gateway's limit, and only then the upstream half, whose first message starts a stdio child: a
 * refusal at any step starts no child. A session whose handshake fails is discarded.
 */
import type { JsonRpcRequest } from '../../domain/jsonrpc.js';
import { writeReply } from '../../mcp/http-reply.js';
import { observeReply } from '../../mcp/observe-reply.js';
import type { PostedExchange } from '../../mcp/read-exchange.js';
import {
  acceptHandshake,
  beginSessionUse,
  discardSession,
  endSessionUse,
  forwardContext,
  openClientSession,
  requireNoSession,
  sendOnSession,
} from '../../mcp/session-exchange.js';
import type { ClientSession } from '../../mcp/session-registry.js';
import type { UpstreamReply } from '../../mcp/upstream/types.js';
import type { McpEndpointOptions } from './exchange.js';
import { forwardCall } from './forward-call.js';
import { initializeMessageContext } from './message-context.js';

export async function openSession(
  options: McpEndpointOptions,
  exchange: PostedExchange,
  message: JsonRpcRequest,
): Promise<void> {
  // 8. session owner: an initialize may not name a session
  requireNoSession(exchange);
  // 9 to 13. the message stages
  const observer = await options.messageStages.admitClientMessage(
    message,
    initializeMessageContext(exchange, options.upstream.name),
  );
  // 14. forward: only now the session opens (the caller's share, the gateway's limit), and the
  // handshake goes to its upstream half
  const context = forwardContext(exchange);
  let session: ClientSession;
  try {
    session = openClientSession(options.sessions, options.upstream, exchange);
  } catch (error) {
    observer?.failed(error);
    throw error;
  }
  // A session being set up is in use: its caller's next initialize cannot end it to make room.
  beginSessionUse(session, 'call');
  try {
    let reply: UpstreamReply;
    try {
      reply = await forwardCall(
        sendOnSession(options.sessions, session, message, context),
        observer,
      );
    } catch (error) {
      await discardSession(options.sessions, session, context);
      throw error;
    }
    // 15. record outcome
    reply = await observeReply(reply, message.id, observer);
    const opened = acceptHandshake(session, reply, exchange.version);
    if (!opened) await discardSession(options.sessions, session, context);
    // Every replica must find the session before its client can send the next request.
    else await options.homes?.publish(session);
    // 16. respond, naming the session only if it opened
    await writeReply(exchange.response, reply, {
      requestId: exchange.requestId,
      rpcId: message.id,
      signal: exchange.signal,
      headers: opened ? { 'mcp-session-id': session.id } : {},
    });
  } finally {
    endSessionUse(session, 'call');
  }
}
