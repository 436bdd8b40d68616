/**
 * What the message stages share: their dependencies, what they are told of each message (by
 * lane: a session's message, an initialize, a 2026-07-28 message), and the facts a call's records
 * carry.
 */
import type { CallFacts } from '../../audit/call-entry.js';
import type { CallRecorder } from '../../audit/call-recorder.js';
import type { JsonRpcMessage } from '../../domain/jsonrpc.js';
import type { McpRequestCall } from '../../domain/mcp-call.js';
import { readHeader } from '../../http/http-headers.js';
import type { RevocationList } from '../../identity/revocation-list.js';
import { createInterimChannel } from '../../mcp/interim-channel.js';
import { listUpstreamTools } from '../../mcp/list-upstream-tools.js';
import type { CallObserver, ClientMessageContext } from '../../mcp/message-gate.js';
import type { ClientExchange } from '../../mcp/read-exchange.js';
import { forwardContext } from '../../mcp/session-exchange.js';
import type { ClientSession } from '../../mcp/session-registry.js';
import type { Envelope } from '../../mcp/stateless/envelope.js';
import type { PolicyConfig } from '../../config/policy-config.js';
import type { MessageAuthorizer } from '../../policy/authorize-message.js';
import type { Logger } from '../logger.js';
import type { ApprovalHolder } from './approve-call.js';

export interface MessageStageOptions {
  readonly authorizer: MessageAuthorizer;
  readonly recorder: CallRecorder;
  readonly logger: Logger;
  /** Holds approval-gated calls; without it they are refused (WARDEN_APPROVAL_UNAVAILABLE). */
  readonly approvals?: ApprovalHolder;
  /** Whether a tool is configured to fail open (non-sensitive tools only) when the log is down. */
  readonly failsOpen?: (upstream: string, tool: string | undefined) => boolean;
  /** Revocations in force now: a held call whose token, agent or user is revoked never goes. */
  readonly revocations?: Pick<RevocationList, 'find' | 'refresh'>;
  /** The policy in force, for how denials are answered (refuse-call.ts); errors when absent. */
  readonly policy?: () => Pick<PolicyConfig, 'roles' | 'denials'>;
}

/**
 * The message stages as one call (createMessageStages): a refusal is a thrown WardenError;
 * resolving admits the message, with, for a call, the observer to tell of its outcome.
 */
export interface MessageStages {
  admitClientMessage(
    message: JsonRpcMessage,
    context: ClientMessageContext,
  ): Promise<CallObserver | undefined>;
}

/**
 * A message on a session: a call held for approval may send progress on the response, and a tool
 * never seen listed is listed on the session.
 */
export function sessionMessageContext(
  exchange: ClientExchange,
  upstreamName: string,
  session: ClientSession,
): ClientMessageContext {
  return {
    requestId: exchange.requestId,
    upstreamName,
    sessionId: session.id,
    protocolVersion: exchange.version ?? session.protocolVersion,
    identity: exchange.identity,
    traceparent: readHeader(exchange.request, 'traceparent'),
    signal: exchange.signal,
    interim: createInterimChannel(exchange.response, { 'x-request-id': exchange.requestId }),
    elicits: session.elicits,
    listTools: () => listUpstreamTools(session.upstream, forwardContext(exchange)),
  };
}

/** An initialize: there is no session yet, and nothing is held. */
export function initializeMessageContext(
  exchange: ClientExchange,
  upstreamName: string,
): ClientMessageContext {
  return {
    requestId: exchange.requestId,
    upstreamName,
    sessionId: undefined,
    protocolVersion: exchange.version,
    identity: exchange.identity,
    traceparent: readHeader(exchange.request, 'traceparent'),
  };
}

/** A 2026-07-28 message: no session; its revision is the one its envelope names. */
export function modernMessageContext(
  exchange: ClientExchange,
  upstreamName: string,
  envelope: Envelope,
): ClientMessageContext {
  return {
    requestId: exchange.requestId,
    upstreamName,
    sessionId: undefined,
    protocolVersion: envelope.protocolVersion,
    identity: exchange.identity,
    traceparent: readHeader(exchange.request, 'traceparent'),
    signal: exchange.signal,
    interim: createInterimChannel(exchange.response, { 'x-request-id': exchange.requestId }),
  };
}

export function callFacts(call: McpRequestCall, context: ClientMessageContext): CallFacts {
  return {
    requestId: context.requestId,
    traceparent: context.traceparent,
    identity: context.identity,
    upstream: context.upstreamName,
    call,
  };
}
