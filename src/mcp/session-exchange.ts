/**
 * What an exchange of the sessionful revisions (2025-03-26, 2025-06-18, 2025-11-25) does with its
 * client session: finds it (only for the identity that opened it), opens it, keeps it in use,
 * sends on it, ends it. Warden issues its own Mcp-Session-Id and keeps the upstream half.
 */
import { WardenError } from '../domain/errors.js';
import type { JsonRpcMessage } from '../domain/jsonrpc.js';
import { isResponse } from '../domain/jsonrpc.js';
import { readHeader } from '../http/http-headers.js';
import type { ClientExchange, PostedExchange } from './read-exchange.js';
import type { ClientSession, SessionRegistry } from './session-registry.js';
import { ownerOf } from './session-owner.js';
import {
  callerOf,
  type ForwardContext,
  type UpstreamConnector,
  type UpstreamReply,
} from './upstream/types.js';

/**
 * The session the exchange names. A session belongs to the identity that opened it: another
 * caller holding a stolen session id is told the session does not exist, as for an unknown one.
 */
export function findOwnSession(
  sessions: SessionRegistry,
  upstreamName: string,
  exchange: ClientExchange,
): ClientSession {
  const sessionId = readHeader(exchange.request, 'mcp-session-id');
  if (sessionId === undefined) throw new WardenError('WARDEN_SESSION_REQUIRED');
  const session = sessions.find(sessionId, upstreamName, ownerOf(exchange.identity));
  if (!session) throw new WardenError('WARDEN_SESSION_NOT_FOUND');
  return session;
}

/** An initialize opens a session: it may not name one. */
export function requireNoSession(exchange: ClientExchange): void {
  if (readHeader(exchange.request, 'mcp-session-id') !== undefined) {
    throw new WardenError('WARDEN_SESSION_CONFLICT');
  }
}

/**
 * Opens a session for the caller: its share and the gateway's limit first, then the upstream
 * half (which starts no stdio child until its first message is sent).
 */
export function openClientSession(
  sessions: SessionRegistry,
  upstream: UpstreamConnector,
  exchange: ClientExchange,
): ClientSession {
  return sessions.create({
    upstreamName: upstream.name,
    owner: ownerOf(exchange.identity),
    agent: exchange.identity.agent,
    protocolVersion: exchange.version,
    elicits: declaresElicitation(exchange),
    open: () => upstream.openSession(),
  });
}

/**
 * Marks an exchange under way on the session, from its lookup to the last byte of its reply: a
 * session in use is never idle (not expired, not ended to make room). A `call` (a POST) may wait
 * for an approval before it is sent; a `stream` is a client holding its GET stream open. Every
 * call is paired with `endSessionUse`, in a finally.
 */
export function beginSessionUse(session: ClientSession, kind: 'call' | 'stream'): void {
  session.activeExchanges += 1;
  if (kind === 'call') session.callsInFlight += 1;
}

export function endSessionUse(session: ClientSession, kind: 'call' | 'stream'): void {
  session.activeExchanges -= 1;
  if (kind === 'call') session.callsInFlight -= 1;
}

/** Sends a message upstream on the session; if the upstream has lost it, the session ends too. */
export async function sendOnSession(
  sessions: SessionRegistry,
  session: ClientSession,
  message: JsonRpcMessage,
  context: ForwardContext,
): Promise<UpstreamReply> {
  try {
    return await session.upstream.send(message, context);
  } catch (error) {
    forgetLostSession(sessions, session, error);
    throw error;
  }
}

/** Opens (or resumes, after Last-Event-ID) the session's server-to-client stream upstream. */
export async function openSessionStream(
  sessions: SessionRegistry,
  session: ClientSession,
  context: ForwardContext,
): Promise<UpstreamReply> {
  try {
    return await session.upstream.openServerStream(context);
  } catch (error) {
    forgetLostSession(sessions, session, error);
    throw error;
  }
}

/** Ends the session, upstream too. */
export async function discardSession(
  sessions: SessionRegistry,
  session: ClientSession,
  context: ForwardContext,
): Promise<void> {
  sessions.delete(session.id);
  await session.upstream.terminate(context);
}

/**
 * Takes the upstream's answer to initialize: false for a refusal (an HTTP error status or a
 * JSON-RPC error), after which the session is of no use; otherwise the session keeps the revision
 * the upstream agreed to.
 */
export function acceptHandshake(
  session: ClientSession,
  reply: UpstreamReply,
  requested: string | undefined,
): boolean {
  if (
    reply.kind === 'status' ||
    (reply.kind === 'json' && isResponse(reply.message) && 'error' in reply.message)
  ) {
    return false;
  }
  session.protocolVersion = negotiatedVersion(reply) ?? requested;
  return true;
}

/** What the upstream is told of the exchange: never the client's credentials. */
export function forwardContext(
  exchange: ClientExchange,
  lastEventId: string | undefined = undefined,
): ForwardContext {
  return {
    requestId: exchange.requestId,
    caller: callerOf(exchange.identity),
    protocolVersion: exchange.version,
    mcpHeaders: {},
    traceparent: readHeader(exchange.request, 'traceparent'),
    tracestate: readHeader(exchange.request, 'tracestate'),
    lastEventId,
    signal: exchange.signal,
  };
}

function forgetLostSession(sessions: SessionRegistry, session: ClientSession, error: unknown) {
  if (error instanceof WardenError && error.code === 'WARDEN_SESSION_NOT_FOUND') {
    sessions.delete(session.id);
  }
}

function negotiatedVersion(reply: UpstreamReply): string | undefined {
  if (reply.kind !== 'json' || !isResponse(reply.message) || !('result' in reply.message))
    return undefined;
  const version = reply.message.result['protocolVersion'];
  return typeof version === 'string' ? version : undefined;
}

/** Whether the initialize declares the elicitation capability (any mode). */
function declaresElicitation(exchange: ClientExchange): boolean {
  const message = (exchange as Partial<PostedExchange>).message;
  const params = message !== undefined && 'params' in message ? message.params : undefined;
  const capabilities = (params as { capabilities?: Record<string, unknown> } | undefined)
    ?.capabilities;
  const elicitation = capabilities?.['elicitation'];
  return elicitation !== null && typeof elicitation === 'object';
}
