/**
 * Serves 2026-07-28 (stateless) clients from an upstream that only speaks the sessionful
 * revisions: a stdio server, or an HTTP server built on SDK 1.x.
 *
 * Warden holds upstream sessions on the clients' behalf, one per set of client capabilities
 * (servers tailor themselves to them at initialize), checked out by one call at a time so that
 * server-to-client requests reach the call that caused them. Those requests (sampling,
 * elicitation, roots) become multi round-trip results: the call is parked, the client receives
 * `input_required` with a signed requestState, and its retry carries the answer upstream.
 *
 * The bridge composes one module per concern, each a set of plain functions over explicit state:
 *   - bridge-session.ts: an upstream session, its initialize handshake and its end;
 *   - bridge-session-pool.ts: idle sessions, checked out and released, bounded per agent;
 *   - bridged-call.ts: sending a call upstream, relaying it back, resuming it;
 *   - parked-calls.ts: calls waiting for the client's input, and the requestState checks;
 *   - bridge-messages.ts: translating replies and notifications between the eras;
 *   - progress-tokens.ts: rewriting progress tokens and mapping them back.
 */
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcRequest } from '../../domain/jsonrpc.js';
import { STATELESS_REQUEST_METHODS, STATELESS_REVISION } from '../../domain/protocol.js';
import type { ForwardContext, UpstreamConnector, UpstreamEvent } from '../upstream/types.js';
import { discoverResult } from './bridge-messages.js';
import {
  checkoutSession,
  createSessionPool,
  drainSessionPool,
  releaseSession,
} from './bridge-session-pool.js';
import { endBridgeSession, type BridgeCaller } from './bridge-session.js';
import { resumeCall, startCall, type BridgeState } from './bridged-call.js';
import type { Envelope } from './envelope.js';
import { createParkedCalls, drainParkedCalls, requireRoomToPark } from './parked-calls.js';
import { createRequestStateSigner, type RequestStateSigner } from './request-state.js';

export type { BridgeCaller };

/** Methods of 2026-07-28 that a bridge can serve: all but subscriptions/listen. */
const BRIDGED_METHODS: ReadonlySet<string> = new Set(
  [...STATELESS_REQUEST_METHODS].filter((method) => method !== 'subscriptions/listen'),
);

export interface LegacyBridgeOptions {
  readonly connector: UpstreamConnector;
  /** How long a parked call waits for the client's retry before it is abandoned. */
  readonly parkTimeoutMs: number;
  readonly signer?: RequestStateSigner;
  /** Idle upstream sessions kept per agent (1 to 4): no more than its share of the upstream. */
  readonly maxIdlePerAgent?: number;
  /** Calls one agent may have parked at once (its share of the upstream); unbounded if unset. */
  readonly maxParkedPerAgent?: number;
}

export interface LegacyBridge {
  /**
   * Answers one modern request; yields the events for the client, the last being the response.
   * Upstream sessions and parked calls are never shared across owners.
   */
  exchange(
    request: JsonRpcRequest,
    envelope: Envelope,
    context: ForwardContext,
    caller: BridgeCaller,
  ): AsyncGenerator<UpstreamEvent>;
  close(): Promise<void>;
}

export function createLegacyBridge(options: LegacyBridgeOptions): LegacyBridge {
  const state: BridgeState = {
    pool: createSessionPool(options.connector, options.maxIdlePerAgent),
    parked: createParkedCalls(
      options.signer ?? createRequestStateSigner(),
      options.parkTimeoutMs,
      options.maxParkedPerAgent,
    ),
    sequence: { last: 0 },
  };
  return {
    exchange: (request, envelope, context, caller) =>
      exchange(state, request, envelope, context, caller),
    close: () => closeBridge(state),
  };
}

async function* exchange(
  state: BridgeState,
  request: JsonRpcRequest,
  envelope: Envelope,
  context: ForwardContext,
  caller: BridgeCaller,
): AsyncGenerator<UpstreamEvent> {
  if (!BRIDGED_METHODS.has(request.method)) {
    throw new WardenError(
      'WARDEN_METHOD_NOT_FOUND',
      `Method "${request.method}" cannot be served from an upstream that predates revision ${STATELESS_REVISION}.`,
    );
  }
  const requestState = request.params?.['requestState'];
  if (requestState !== undefined) {
    yield* resumeCall(state, request, requestState, context, caller.owner);
    return;
  }
  // A call may park; one an agent cannot afford to park is refused before it starts.
  if (request.method !== 'server/discover') requireRoomToPark(state.parked, caller.agent);
  const session = await checkoutSession(state.pool, envelope, context, caller);
  // Upstream, the call travels in the session's revision: no 2026-07-28 headers.
  context = { ...context, protocolVersion: session.protocolVersion, mcpHeaders: {} };
  if (request.method === 'server/discover') {
    releaseSession(state.pool, session);
    yield { message: discoverResult(request.id, session) };
    return;
  }
  yield* startCall(state, session, request, context, caller.owner);
}

/** Abandons the parked calls and ends every upstream session the bridge holds. */
async function closeBridge(state: BridgeState): Promise<void> {
  const parkedSessions = drainParkedCalls(state.parked);
  const sessions = [...drainSessionPool(state.pool), ...parkedSessions];
  await Promise.all(sessions.map(endBridgeSession));
}
