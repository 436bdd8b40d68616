/**
 * A message on a session (the sessionful revisions), stages 8 to 16: the session's owner, the
 * message stages, forward, record the outcome, respond.
 */
import { isRequest, isResponse, type JsonRpcMessage } from '../../domain/jsonrpc.js';
import { writeReply } from '../../mcp/http-reply.js';
import { observeReply } from '../../mcp/observe-reply.js';
import type { PostedExchange } from '../../mcp/read-exchange.js';
import {
  beginSessionUse,
  endSessionUse,
  findOwnSession,
  forwardContext,
  sendOnSession,
} from '../../mcp/session-exchange.js';
import type { McpEndpointOptions } from './exchange.js';
import { APPROVAL_NOTICE_ID_PREFIX } from './approve-call.js';
import { answeredHere, forwardCall } from './forward-call.js';
import { sessionMessageContext } from './message-context.js';

export async function relaySessionMessage(
  options: McpEndpointOptions,
  exchange: PostedExchange,
): Promise<void> {
  const { message } = exchange;
  // 8. session owner; in use from here, so a call held for approval keeps its session alive
  const session = findOwnSession(options.sessions, options.upstream.name, exchange);
  // The client's answer to the gateway's own notice (approve-call.ts) ends here.
  if (answersApprovalNotice(message)) {
    exchange.response.writeHead(202, { 'x-request-id': exchange.requestId }).end();
    return;
  }
  beginSessionUse(session, 'call');
  try {
    // 9 to 13. the message stages
    const observer = await options.messageStages.admitClientMessage(
      message,
      sessionMessageContext(exchange, options.upstream.name, session),
    );
    // 14. forward, unless the stages answered the request themselves
    let reply = observer?.answer
      ? answeredHere(observer.answer)
      : await forwardCall(
          sendOnSession(
            options.sessions,
            session,
            observer?.forward ?? message,
            forwardContext(exchange),
          ),
          observer,
        );
    // 15. record outcome
    if (isRequest(message)) reply = await observeReply(reply, message.id, observer);
    // 16. respond
    await writeReply(exchange.response, reply, {
      requestId: exchange.requestId,
      rpcId: isRequest(message) ? message.id : undefined,
      signal: exchange.signal,
      headers: { 'mcp-session-id': session.id },
    });
  } finally {
    endSessionUse(session, 'call');
  }
}

function answersApprovalNotice(message: JsonRpcMessage): boolean {
  return (
    isResponse(message) &&
    typeof message.id === 'string' &&
    message.id.startsWith(APPROVAL_NOTICE_ID_PREFIX)
  );
}
