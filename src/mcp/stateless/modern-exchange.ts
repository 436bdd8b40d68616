/**
 * One 2026-07-28 exchange: validate the envelope and the mirrored headers, pass the gate, then
 * relay to a modern upstream or serve through the legacy bridge. There is no session.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../../domain/errors.js';
import type { Identity } from '../../domain/identity.js';
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest } from '../../domain/jsonrpc.js';
import { isRequest, isResponse } from '../../domain/jsonrpc.js';
import { STATELESS_REQUEST_METHODS, STATELESS_REVISION } from '../../domain/protocol.js';
import { firstValue } from '../../http/http-headers.js';
import { writeReply } from '../http-reply.js';
import { createInterimChannel } from '../interim-channel.js';
import { observeReply } from '../observe-reply.js';
import type { MessageGate } from '../message-gate.js';
import type { SessionRegistry } from '../session-registry.js';
import { ownerOf } from '../session-owner.js';
import type {
  ForwardContext,
  UpstreamConnector,
  UpstreamEvent,
  UpstreamReply,
} from '../upstream/types.js';
import { PROTOCOL_VERSION_KEY, readEnvelope } from './envelope.js';
import { checkMirroredHeaders, mirroredHeaders, mirrorForwardedRequest } from './header-check.js';
import type { LegacyBridge } from './legacy-bridge.js';
import type { UpstreamEra } from './upstream-era.js';

export interface ModernExchangeOptions {
  readonly upstream: UpstreamConnector;
  readonly bridge: LegacyBridge;
  readonly eraOf: (connector: UpstreamConnector, context: ForwardContext) => Promise<UpstreamEra>;
  readonly gate: MessageGate;
  /** Each agent's share of the upstream: a bridged request in flight counts as a session. */
  readonly shares: Pick<SessionRegistry, 'holdExchange'>;
}

export interface ModernExchange {
  readonly requestId: string;
  readonly signal: AbortSignal;
  readonly identity: Identity;
}

export async function handleModernMessage(
  options: ModernExchangeOptions,
  request: IncomingMessage,
  response: ServerResponse,
  message: JsonRpcMessage,
  exchange: ModernExchange,
): Promise<void> {
  if (isResponse(message)) {
    throw new WardenError(
      'WARDEN_INVALID_MESSAGE',
      'Revision 2026-07-28 has no client-to-server responses.',
    );
  }
  const modern = message as JsonRpcRequest | JsonRpcNotification;
  const claimed = modern.params?.['_meta'] as Record<string, unknown> | undefined;
  checkMirroredHeaders(
    request.headers,
    modern,
    String(claimed?.[PROTOCOL_VERSION_KEY] ?? STATELESS_REVISION),
  );
  const envelope = readEnvelope(modern);
  // Protocol validity before policy: a method the revision lacks is no call to decide or forward.
  if (isRequest(message) && !STATELESS_REQUEST_METHODS.has(message.method)) {
    throw new WardenError(
      'WARDEN_METHOD_NOT_FOUND',
      `Method "${message.method}" is not part of revision ${envelope.protocolVersion}.`,
    );
  }
  const observer = await options.gate.admitClientMessage(message, {
    requestId: exchange.requestId,
    upstreamName: options.upstream.name,
    sessionId: undefined,
    protocolVersion: envelope.protocolVersion,
    identity: exchange.identity,
    traceparent: firstValue(request.headers['traceparent']),
    signal: exchange.signal,
    interim: createInterimChannel(response, { 'x-request-id': exchange.requestId }),
  });
  // The upstream reads what the policy judged: the gate may hand back a normalised request.
  const forwarded = observer?.forward ?? message;
  const mirrored = mirroredHeaders(request.headers);
  const context: ForwardContext = {
    requestId: exchange.requestId,
    protocolVersion: envelope.protocolVersion,
    mcpHeaders:
      observer?.forward === undefined
        ? mirrored
        : mirrorForwardedRequest(mirrored, observer.forward),
    traceparent: firstValue(request.headers['traceparent']),
    tracestate: firstValue(request.headers['tracestate']),
    lastEventId: undefined,
    signal: exchange.signal,
  };
  const era = await options.eraOf(options.upstream, context);
  const replyOptions = {
    requestId: exchange.requestId,
    rpcId: isRequest(message) ? message.id : undefined,
    signal: exchange.signal,
    headers: {},
  };
  let reply: UpstreamReply;
  // Admitted by the gate, a bridged request takes a share of the upstream (an upstream session,
  // for a stdio upstream a child) until its answer is written: one agent cannot take them all.
  let release: (() => void) | undefined;
  try {
    if (era === 'modern') {
      reply = await options.upstream.openSession().send(forwarded, context);
    } else if (isRequest(forwarded)) {
      const { agent } = exchange.identity;
      release = options.shares.holdExchange(options.upstream.name, agent);
      const events = options.bridge.exchange(forwarded, envelope, context, {
        owner: ownerOf(exchange.identity),
        agent,
      });
      reply = await toReply(events);
    } else {
      // Cancellation in 2026-07-28 is closing the stream; other notifications have no bridged meaning.
      response.writeHead(202, { 'x-request-id': exchange.requestId }).end();
      return;
    }
  } catch (error) {
    release?.();
    observer?.failed(error);
    throw error;
  }
  try {
    if (isRequest(message)) reply = await observeReply(reply, message.id, observer);
    await writeReply(response, reply, replyOptions);
  } finally {
    release?.();
  }
}

/** A call answered before any notification is sent as plain JSON; otherwise as an SSE stream. */
async function toReply(events: AsyncGenerator<UpstreamEvent>): Promise<UpstreamReply> {
  const first = await events.next();
  if (first.done) throw new WardenError('WARDEN_UPSTREAM_PROTOCOL_ERROR');
  const message = first.value.message;
  if (message && isResponse(message)) {
    await events.return(undefined);
    return { kind: 'json', message, raw: JSON.stringify(message) };
  }
  async function* replay(): AsyncGenerator<UpstreamEvent> {
    yield first.value as UpstreamEvent;
    yield* events;
  }
  return { kind: 'stream', events: replay() };
}
