/**
 * The client-facing Streamable HTTP endpoint for one upstream (sessionful revisions 2025-03-26,
 * 2025-06-18 and 2025-11-25). It validates the HTTP exchange, owns the client session, and
 * relays each message to the upstream session behind it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import type { JsonRpcId, JsonRpcMessage } from '../domain/jsonrpc.js';
import { isRequest, isResponse } from '../domain/jsonrpc.js';
import {
  isSupportedRevision,
  STATELESS_REVISION,
  SUPPORTED_REVISIONS,
} from '../domain/protocol.js';
import { writeError, writeReply } from './http-reply.js';
import { createInterimChannel } from './interim-channel.js';
import { listUpstreamTools } from './list-upstream-tools.js';
import { DEFAULT_MAX_JSON_DEPTH, parseClientMessage } from './jsonrpc-parse.js';
import { readBody } from '../http/read-body.js';
import type { ClientSession, SessionRegistry } from './session-registry.js';
import { readHeader } from '../http/http-headers.js';
import type { CallObserver, ClientMessageContext, MessageGate } from './message-gate.js';
import { observeReply } from './observe-reply.js';
import { ownerOf } from './session-owner.js';
import { claimsModernRevision } from './stateless/envelope.js';
import { handleModernMessage, type ModernExchangeOptions } from './stateless/modern-exchange.js';
import type { ForwardContext, UpstreamConnector, UpstreamReply } from './upstream/types.js';

export type { ClientMessageContext, MessageGate };

export interface McpEndpointOptions {
  readonly upstream: UpstreamConnector;
  readonly sessions: SessionRegistry;
  readonly maxBodyBytes: number;
  /** Deepest nesting of objects and arrays in a client message (limits.max_json_depth). */
  readonly maxJsonDepth?: number;
  readonly gate: MessageGate;
  /** Serves 2026-07-28 requests, which carry their own envelope instead of a session. */
  readonly modern: Omit<ModernExchangeOptions, 'upstream' | 'gate' | 'shares'>;
}

/** One HTTP exchange as the listener hands it over: its reference id and its abort signal. */
export interface ExchangeHandle {
  readonly requestId: string;
  readonly signal: AbortSignal;
  /** Who is calling, established by the pipeline's authentication stage. */
  readonly identity: Identity;
  /** Tells the listener this exchange is a server-to-client stream that only ends when cut. */
  markServerStream(): void;
}

export type McpEndpoint = (
  request: IncomingMessage,
  response: ServerResponse,
  exchange: ExchangeHandle,
) => Promise<void>;

export function createMcpEndpoint(options: McpEndpointOptions): McpEndpoint {
  return async (request, response, { requestId, signal, markServerStream, identity }) => {
    let rpcId: JsonRpcId | null = null;
    try {
      const version = readHeader(request, 'mcp-protocol-version');
      const modernHeader = version === STATELESS_REVISION;
      if (modernHeader && request.method !== 'POST') {
        throw new WardenError(
          'WARDEN_METHOD_NOT_ALLOWED',
          'Revision 2026-07-28 has no GET or DELETE: every request is a POST.',
          { details: { allow: 'POST' } },
        );
      }
      switch (request.method) {
        case 'POST': {
          const message = await readClientMessage(
            request,
            options.maxBodyBytes,
            options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
          );
          if (isRequest(message)) rpcId = message.id;
          if (claimsModernRevision(message) || modernHeader) {
            requireModernClaim(message);
            await handleModernMessage(
              {
                ...options.modern,
                upstream: options.upstream,
                gate: options.gate,
                shares: options.sessions,
              },
              request,
              response,
              message,
              { requestId, signal, identity },
            );
            return;
          }
          // Only now, with the body read: a modern request's revision is judged against its
          // envelope (above), and a refusal answers the request's id.
          requireSupportedRevision(version);
          await handlePost(options, request, response, message, {
            requestId,
            version,
            signal,
            identity,
          });
          return;
        }
        case 'GET':
          requireSupportedRevision(version);
          markServerStream();
          await handleGet(options, request, response, { requestId, version, signal, identity });
          return;
        case 'DELETE':
          requireSupportedRevision(version);
          await handleDelete(options, request, response, { requestId, version, signal, identity });
          return;
        default:
          throw new WardenError('WARDEN_METHOD_NOT_ALLOWED');
      }
    } catch (error) {
      writeError(response, error, requestId, rpcId);
    }
  };
}

interface Exchange {
  readonly requestId: string;
  readonly version: string | undefined;
  readonly signal: AbortSignal;
  readonly identity: Identity;
}

/** A sessionful exchange may name any revision this endpoint serves in MCP-Protocol-Version. */
function requireSupportedRevision(version: string | undefined): void {
  if (version === undefined || isSupportedRevision(version)) return;
  throw new WardenError(
    'WARDEN_UNSUPPORTED_PROTOCOL_VERSION',
    `Unsupported MCP-Protocol-Version "${version}".`,
    { details: { supported: SUPPORTED_REVISIONS, requested: version } },
  );
}

/** A 2026-07-28 header on a request without the body's claim is refused as the SDK does. */
function requireModernClaim(message: JsonRpcMessage): void {
  if (claimsModernRevision(message)) return;
  if (isRequest(message) && message.method === 'initialize') {
    throw new WardenError(
      'WARDEN_HEADER_MISMATCH',
      'initialize belongs to the sessionful revisions; it cannot be sent as 2026-07-28.',
      { details: { mismatch: { header: STATELESS_REVISION, body: 'initialize' } } },
    );
  }
  throw new WardenError('WARDEN_INVALID_ENVELOPE', undefined, {
    details: { envelope: { missing: ['_meta'] } },
  });
}

async function readClientMessage(
  request: IncomingMessage,
  maxBodyBytes: number,
  maxJsonDepth: number,
): Promise<JsonRpcMessage> {
  const contentType = readHeader(request, 'content-type');
  if (!contentType || !/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE');
  }
  const accept = readHeader(request, 'accept') ?? '';
  if (!acceptsAll(accept, ['application/json', 'text/event-stream'])) {
    throw new WardenError(
      'WARDEN_NOT_ACCEPTABLE',
      'POST requests must accept both application/json and text/event-stream.',
    );
  }
  return parseClientMessage(await readBody(request, maxBodyBytes), { maxDepth: maxJsonDepth });
}

async function handlePost(
  options: McpEndpointOptions,
  request: IncomingMessage,
  response: ServerResponse,
  message: JsonRpcMessage,
  exchange: Exchange,
): Promise<void> {
  const sessionId = readHeader(request, 'mcp-session-id');
  if (isRequest(message) && message.method === 'initialize') {
    if (sessionId !== undefined) throw new WardenError('WARDEN_SESSION_CONFLICT');
    await initializeSession(options, request, response, message, exchange);
    return;
  }
  const session = requireSession(options, sessionId, exchange.identity);
  // In use from here: a call held for approval keeps its session from being ended as idle.
  await whileInUse(session, 'call', async () => {
    const observer = await options.gate.admitClientMessage(message, {
      requestId: exchange.requestId,
      upstreamName: options.upstream.name,
      sessionId: session.id,
      protocolVersion: exchange.version ?? session.protocolVersion,
      identity: exchange.identity,
      traceparent: readHeader(request, 'traceparent'),
      signal: exchange.signal,
      interim: createInterimChannel(response, { 'x-request-id': exchange.requestId }),
      listTools: () =>
        listUpstreamTools(session.upstream, forwardContext(request, exchange, undefined)),
    });
    await relay(session, request, response, message, exchange, options, observer);
  });
}

/**
 * Opens a session, in this order: the gate (a caller with no grant on the upstream is refused
 * and recorded there), the caller's share and the gateway's limit, and only then the upstream
 * half, whose first message starts a stdio child. A refusal at any step starts no child.
 */
async function initializeSession(
  options: McpEndpointOptions,
  request: IncomingMessage,
  response: ServerResponse,
  message: JsonRpcMessage & { id: JsonRpcId },
  exchange: Exchange,
): Promise<void> {
  const observer = await options.gate.admitClientMessage(message, {
    requestId: exchange.requestId,
    upstreamName: options.upstream.name,
    sessionId: undefined,
    protocolVersion: exchange.version,
    identity: exchange.identity,
    traceparent: readHeader(request, 'traceparent'),
  });
  const context = forwardContext(request, exchange, undefined);
  let session: ClientSession;
  try {
    session = options.sessions.create({
      upstreamName: options.upstream.name,
      owner: ownerOf(exchange.identity),
      agent: exchange.identity.agent,
      protocolVersion: exchange.version,
      open: () => options.upstream.openSession(),
    });
  } catch (error) {
    observer?.failed(error);
    throw error;
  }
  // A session being set up is in use: its caller's next initialize cannot end it to make room.
  await whileInUse(session, 'call', async () => {
    let reply: UpstreamReply;
    try {
      reply = await session.upstream.send(message, context);
    } catch (error) {
      observer?.failed(error);
      await discardSession(options, session, context);
      throw error;
    }
    reply = await observeReply(reply, message.id, observer);
    if (
      reply.kind === 'status' ||
      (reply.kind === 'json' && isResponse(reply.message) && 'error' in reply.message)
    ) {
      await discardSession(options, session, context);
      await writeReply(response, reply, {
        requestId: exchange.requestId,
        rpcId: message.id,
        signal: exchange.signal,
        headers: {},
      });
      return;
    }
    session.protocolVersion = negotiatedVersion(reply) ?? exchange.version;
    await writeReply(response, reply, {
      requestId: exchange.requestId,
      rpcId: message.id,
      signal: exchange.signal,
      headers: { 'mcp-session-id': session.id },
    });
  });
}

async function discardSession(
  options: McpEndpointOptions,
  session: ClientSession,
  context: ForwardContext,
): Promise<void> {
  options.sessions.delete(session.id);
  await session.upstream.terminate(context);
}

async function relay(
  session: ClientSession,
  request: IncomingMessage,
  response: ServerResponse,
  message: JsonRpcMessage,
  exchange: Exchange,
  options: McpEndpointOptions,
  observer: CallObserver | undefined,
): Promise<void> {
  let reply: UpstreamReply;
  try {
    // The upstream reads what the policy judged: the gate may hand back a normalised request.
    const forwarded = observer?.forward ?? message;
    reply = await sendOrForget(session, options, () =>
      session.upstream.send(forwarded, forwardContext(request, exchange, undefined)),
    );
  } catch (error) {
    observer?.failed(error);
    throw error;
  }
  if (isRequest(message)) reply = await observeReply(reply, message.id, observer);
  await writeReply(response, reply, {
    requestId: exchange.requestId,
    rpcId: isRequest(message) ? message.id : undefined,
    signal: exchange.signal,
    headers: { 'mcp-session-id': session.id },
  });
}

async function handleGet(
  options: McpEndpointOptions,
  request: IncomingMessage,
  response: ServerResponse,
  exchange: Exchange,
): Promise<void> {
  const accept = readHeader(request, 'accept') ?? '';
  if (!acceptsAll(accept, ['text/event-stream'])) {
    throw new WardenError('WARDEN_NOT_ACCEPTABLE', 'GET requests must accept text/event-stream.');
  }
  const session = requireSession(options, readHeader(request, 'mcp-session-id'), exchange.identity);
  const lastEventId = readHeader(request, 'last-event-id');
  // A client holding its server stream open is using its session.
  await whileInUse(session, 'stream', async () => {
    const reply = await sendOrForget(session, options, () =>
      session.upstream.openServerStream(forwardContext(request, exchange, lastEventId)),
    );
    await writeReply(response, reply, {
      requestId: exchange.requestId,
      rpcId: undefined,
      signal: exchange.signal,
      headers: { 'mcp-session-id': session.id },
    });
  });
}

async function handleDelete(
  options: McpEndpointOptions,
  request: IncomingMessage,
  response: ServerResponse,
  exchange: Exchange,
): Promise<void> {
  const session = requireSession(options, readHeader(request, 'mcp-session-id'), exchange.identity);
  await discardSession(options, session, forwardContext(request, exchange, undefined));
  response.writeHead(200, { 'x-request-id': exchange.requestId }).end();
}

/**
 * A session belongs to the identity that opened it: another caller holding a stolen session id
 * is told the session does not exist, exactly as for an unknown one.
 */
function requireSession(
  options: McpEndpointOptions,
  sessionId: string | undefined,
  identity: Identity,
): ClientSession {
  if (sessionId === undefined) throw new WardenError('WARDEN_SESSION_REQUIRED');
  const session = options.sessions.find(sessionId, options.upstream.name, ownerOf(identity));
  if (!session) throw new WardenError('WARDEN_SESSION_NOT_FOUND');
  return session;
}

/** Runs an upstream call; if the upstream has lost the session, the client's session ends too. */
async function sendOrForget(
  session: ClientSession,
  options: McpEndpointOptions,
  send: () => Promise<UpstreamReply>,
): Promise<UpstreamReply> {
  try {
    return await send();
  } catch (error) {
    if (error instanceof WardenError && error.code === 'WARDEN_SESSION_NOT_FOUND') {
      options.sessions.delete(session.id);
    }
    throw error;
  }
}

/**
 * Runs one exchange on a session, from its lookup to the last byte of its reply: a session with an
 * exchange under way is never idle (not expired, not ended to make room).
 */
async function whileInUse(
  session: ClientSession,
  kind: 'call' | 'stream',
  run: () => Promise<void>,
): Promise<void> {
  session.activeExchanges += 1;
  if (kind === 'call') session.callsInFlight += 1;
  try {
    await run();
  } finally {
    session.activeExchanges -= 1;
    if (kind === 'call') session.callsInFlight -= 1;
  }
}

function forwardContext(
  request: IncomingMessage,
  exchange: Exchange,
  lastEventId: string | undefined,
): ForwardContext {
  return {
    requestId: exchange.requestId,
    protocolVersion: exchange.version,
    mcpHeaders: {},
    traceparent: readHeader(request, 'traceparent'),
    tracestate: readHeader(request, 'tracestate'),
    lastEventId,
    signal: exchange.signal,
  };
}

function negotiatedVersion(reply: UpstreamReply): string | undefined {
  if (reply.kind !== 'json' || !isResponse(reply.message) || !('result' in reply.message))
    return undefined;
  const version = reply.message.result['protocolVersion'];
  return typeof version === 'string' ? version : undefined;
}

function acceptsAll(accept: string, types: readonly string[]): boolean {
  const listed = accept.split(',').map((part) => part.split(';')[0]?.trim().toLowerCase());
  if (listed.includes('*/*')) return true;
  return types.every((type) => listed.includes(type) || listed.includes(`${type.split('/')[0]}/*`));
}
