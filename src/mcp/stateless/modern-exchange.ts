/**
 * The transport of one 2026-07-28 exchange, which has no session: its envelope and mirrored
 * headers read and checked, and its message relayed to a modern upstream as it is or served
 * through the legacy bridge. In what order these run, and what is decided between them, is the
 * pipeline's (gateway/pipeline/index.ts).
 */
import { WardenError } from '../../domain/errors.js';
import type { Identity } from '../../domain/identity.js';
import type {
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../../domain/jsonrpc.js';
import { isRequest, isResponse } from '../../domain/jsonrpc.js';
import { STATELESS_REQUEST_METHODS, STATELESS_REVISION } from '../../domain/protocol.js';
import { firstValue } from '../../http/http-headers.js';
import type { ClientExchange, PostedExchange } from '../read-exchange.js';
import type { SessionRegistry } from '../session-registry.js';
import { ownerOf } from '../session-owner.js';
import {
  callerOf,
  type ForwardContext,
  type UpstreamConnector,
  type UpstreamEvent,
  type UpstreamReply,
} from '../upstream/types.js';
import { PROTOCOL_VERSION_KEY, readEnvelope, type Envelope } from './envelope.js';
import { checkMirroredHeaders, mirroredHeaders, mirrorForwardedRequest } from './header-check.js';
import type { LegacyBridge } from './legacy-bridge.js';
import type { UpstreamEra } from './upstream-era.js';

/** Where an upstream's 2026-07-28 messages go. */
export interface ModernRelay {
  readonly upstream: UpstreamConnector;
  readonly bridge: LegacyBridge;
  readonly eraOf: (connector: UpstreamConnector, context: ForwardContext) => Promise<UpstreamEra>;
  /** Each agent's share of the upstream: a bridged request in flight counts as a session. */
  readonly shares: Pick<SessionRegistry, 'holdExchange'>;
}

/** A relayed message's reply, and the share of the upstream it holds until that is written. */
export interface ModernForward {
  readonly reply: UpstreamReply;
  /** Gives back the share; called once the reply is written (calling it again does nothing). */
  readonly release: (() => void) | undefined;
}

const ACCEPTED: UpstreamReply = Object.freeze({ kind: 'accepted' });

/**
 * The envelope of a 2026-07-28 message, once the message is found valid in that revision: a
 * request or notification (no client-to-server responses), headers mirroring the body, and a
 * method the revision has. Protocol validity comes before policy: such a message is no call to
 * decide or forward.
 */
export function readModernEnvelope({ request, message }: PostedExchange): Envelope {
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
  if (isRequest(message) && !STATELESS_REQUEST_METHODS.has(message.method)) {
    throw new WardenError(
      'WARDEN_METHOD_NOT_FOUND',
      `Method "${message.method}" is not part of revision ${envelope.protocolVersion}.`,
    );
  }
  return envelope;
}

/**
 * What the upstream is told of the exchange. A request forwarded in another form than the client
 * sent (`forward`) has its mirrored headers follow the body.
 */
export function modernForwardContext(
  exchange: ClientExchange,
  envelope: Envelope,
  forward: JsonRpcRequest | undefined,
): ForwardContext {
  const { request } = exchange;
  const mirrored = mirroredHeaders(request.headers);
  return {
    requestId: exchange.requestId,
    caller: callerOf(exchange.identity),
    protocolVersion: envelope.protocolVersion,
    mcpHeaders: forward === undefined ? mirrored : mirrorForwardedRequest(mirrored, forward),
    traceparent: firstValue(request.headers['traceparent']),
    tracestate: firstValue(request.headers['tracestate']),
    lastEventId: undefined,
    signal: exchange.signal,
  };
}

/**
 * Sends the message to an upstream of the given era: as it is to a modern one; through the
 * legacy bridge to an older one, where a request takes a share of the upstream (an upstream
 * session, for a stdio upstream a child) until its answer is written, so one agent cannot take
 * them all. A notification has no bridged meaning (cancellation in 2026-07-28 is closing the
 * stream): it is accepted and goes nowhere.
 */
export async function forwardModernMessage(
  relay: ModernRelay,
  era: UpstreamEra,
  message: JsonRpcMessage,
  envelope: Envelope,
  context: ForwardContext,
  identity: Identity,
): Promise<ModernForward> {
  if (era === 'modern') {
    return { reply: await relay.upstream.openSession().send(message, context), release: undefined };
  }
  if (!isRequest(message)) return { reply: ACCEPTED, release: undefined };
  const { agent } = identity;
  const release = relay.shares.holdExchange(relay.upstream.name, agent);
  try {
    const events = relay.bridge.exchange(message, envelope, context, {
      owner: ownerOf(identity),
      agent,
    });
    return { reply: await toReply(events), release };
  } catch (error) {
    release();
    throw error;
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

/**
 * An answer the gateway gives a 2026-07-28 request itself (a denial as a result, an approval
 * still pending): a result of that revision says it is complete.
 */
export function asModernAnswer(response: JsonRpcResponse): JsonRpcResponse {
  if (!('result' in response) || response.result['resultType'] !== undefined) return response;
  return { ...response, result: { ...response.result, resultType: 'complete' } };
}
