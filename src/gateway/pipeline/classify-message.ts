/**
 * Parse and classify: what the message asks for, read once into the typed McpCall every later
 * stage reads (domain/mcp-call.ts); a notification may not name what a request does; only
 * requests (but ping) are decided.
 */
import { WardenError } from '../../domain/errors.js';
import { isNotification, type JsonRpcMessage } from '../../domain/jsonrpc.js';
import {
  classifyMcpCall,
  isRequestCall,
  type McpCall,
  type McpRequestCall,
} from '../../domain/mcp-call.js';
import type { ClientMessageContext } from '../../mcp/message-gate.js';
import type { Logger } from '../logger.js';

export function classifyMessage(
  message: JsonRpcMessage,
  context: ClientMessageContext,
  logger: Logger,
): McpCall {
  const call = classifyMcpCall(message);
  if (logger.isLevelEnabled('debug')) {
    logger.debug(
      {
        requestId: context.requestId,
        upstream: context.upstreamName,
        session: context.sessionId,
        agent: context.identity.agent,
        user: context.identity.user,
        method: 'method' in message ? message.method : undefined,
        kind: call.kind,
      },
      'client message',
    );
  }
  return call;
}

/**
 * A notification is never decided, so it must not be able to name what a request does:
 * `tools/call` without an id would reach the upstream with no policy in its way.
 */
export function refuseMisnamedNotification(message: JsonRpcMessage): void {
  if (isNotification(message) && !message.method.startsWith('notifications/')) {
    throw new WardenError(
      'WARDEN_INVALID_MESSAGE',
      `Invalid JSON-RPC message: "${message.method.slice(0, 100)}" is not a notification method; a request needs an id.`,
    );
  }
}

/** Requests are calls with an outcome worth deciding and recording; notifications and replies are not. */
export function needsDecision(call: McpCall): call is McpRequestCall {
  return isRequestCall(call) && call.message.method !== 'ping';
}
