/**
 * A 2026-07-28 message, stages 7 to 16: there is no session, and the envelope says what the
 * client is. It is forwarded to the upstream's era: as it is to a 2026-07-28 upstream, or through
 * the legacy bridge to an older one, where a request holds a share of the upstream until its
 * reply is written.
 */
import { isRequest } from '../../domain/jsonrpc.js';
import { writeReply } from '../../mcp/http-reply.js';
import { observeReply } from '../../mcp/observe-reply.js';
import type { PostedExchange } from '../../mcp/read-exchange.js';
import {
  asModernAnswer,
  forwardModernMessage,
  modernForwardContext,
  readModernEnvelope,
  type ModernRelay,
} from '../../mcp/stateless/modern-exchange.js';
import type { McpEndpointOptions } from './exchange.js';
import { answeredHere, forwardCall } from './forward-call.js';
import { modernMessageContext } from './message-context.js';
import { relayRetryHome } from './relay-retry-home.js';

export async function relayModernMessage(
  options: McpEndpointOptions,
  relay: ModernRelay,
  exchange: PostedExchange,
): Promise<void> {
  const { message } = exchange;
  // 7. route by revision: a message valid in 2026-07-28 (envelope, mirrored headers, method)
  const envelope = readModernEnvelope(exchange);
  // 8. a retry resumes its parked call where the call is: on another replica, it goes there
  if (await relayRetryHome(options, exchange)) return;
  // 9 to 13. the message stages
  const observer = await options.messageStages.admitClientMessage(
    message,
    modernMessageContext(exchange, options.upstream.name, envelope),
  );
  // 14. forward, in the form the policy judged, to the upstream's era; unless the stages
  // answered the request themselves
  if (observer?.answer) {
    await writeReply(exchange.response, answeredHere(asModernAnswer(observer.answer)), {
      requestId: exchange.requestId,
      rpcId: isRequest(message) ? message.id : undefined,
      signal: exchange.signal,
      headers: {},
    });
    return;
  }
  const context = modernForwardContext(exchange, envelope, observer?.forward);
  const era = await relay.eraOf(relay.upstream, context);
  const forwarded = await forwardCall(
    forwardModernMessage(
      relay,
      era,
      observer?.forward ?? message,
      envelope,
      context,
      exchange.identity,
    ),
    observer,
  );
  try {
    // 15. record outcome
    let { reply } = forwarded;
    if (isRequest(message)) reply = await observeReply(reply, message.id, observer);
    // 16. respond
    await writeReply(exchange.response, reply, {
      requestId: exchange.requestId,
      rpcId: isRequest(message) ? message.id : undefined,
      signal: exchange.signal,
      headers: {},
    });
  } finally {
    forwarded.release?.();
  }
}
