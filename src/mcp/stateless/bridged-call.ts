/**
 * One call through the legacy bridge: sent upstream on a checked-out session with its id and
 * progress token rewritten, relayed back until its response, parked when the server asks the
 * client for input, and resumed by the client's retry.
 */
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcRequest } from '../../domain/jsonrpc.js';
import { isNotification, isRequest, isResponse } from '../../domain/jsonrpc.js';
import type { ForwardContext, UpstreamEvent, UpstreamReply } from '../upstream/types.js';
import {
  answerUnsupported,
  eventsOf,
  toModernResponse,
  translateNotification,
} from './bridge-messages.js';
import { discardSession, releaseSession, type SessionPool } from './bridge-session-pool.js';
import type { BridgeSession } from './bridge-session.js';
import { withoutEnvelope } from './envelope.js';
import {
  isInputRequest,
  parkCall,
  unparkCall,
  type BridgedCall,
  type ParkedCalls,
} from './parked-calls.js';
import { rewriteProgressToken } from './progress-tokens.js';

/** What the bridge's calls share: its sessions, its parked calls, and one sequence of ids. */
export interface BridgeState {
  readonly pool: SessionPool;
  readonly parked: ParkedCalls;
  /** Numbers upstream request ids, progress tokens and input keys, unique in the bridge. */
  readonly sequence: { last: number };
}

/**
 * Sends the client's request upstream on `session` (in the session's revision, with no
 * 2026-07-28 headers) and relays the call.
 */
export async function* startCall(
  state: BridgeState,
  session: BridgeSession,
  request: JsonRpcRequest,
  context: ForwardContext,
  owner: string,
): AsyncGenerator<UpstreamEvent> {
  const n = ++state.sequence.last;
  const upstreamId = `warden-bridge-${n}`;
  const { params, progress } = rewriteProgressToken(
    withoutEnvelope(request.params),
    `warden-progress-${n}`,
  );
  const abort = new AbortController();
  let reply: UpstreamReply;
  try {
    reply = await session.upstream.send(
      { jsonrpc: '2.0', id: upstreamId, method: request.method, params },
      { ...context, signal: abort.signal },
    );
  } catch (error) {
    discardSession(session);
    throw error;
  }
  const events = eventsOf(reply)[Symbol.asyncIterator]();
  yield* relayCall(
    state,
    { session, events, upstreamId, progress, abort, owner },
    request,
    context,
  );
}

/** Carries the client's answer upstream to the parked call its requestState names. */
export async function* resumeCall(
  state: BridgeState,
  request: JsonRpcRequest,
  requestState: unknown,
  context: ForwardContext,
  owner: string,
): AsyncGenerator<UpstreamEvent> {
  const { call, answer } = unparkCall(state.parked, request, requestState, owner);
  context = { ...context, protocolVersion: call.session.protocolVersion, mcpHeaders: {} };
  await call.session.upstream.send(
    { jsonrpc: '2.0', id: call.serverRequestId, result: answer },
    context,
  );
  yield* relayCall(state, call, request, context);
}

/**
 * Relays upstream events for one call until its response, translating ids and progress
 * tokens back to the client's, or parks the call when the server asks the client for input.
 */
async function* relayCall(
  state: BridgeState,
  call: BridgedCall,
  clientRequest: JsonRpcRequest,
  context: ForwardContext,
): AsyncGenerator<UpstreamEvent> {
  let settled = false;
  try {
    for (;;) {
      const next = await call.events.next();
      if (next.done)
        throw new WardenError(
          'WARDEN_UPSTREAM_UNAVAILABLE',
          'The upstream ended the call without answering it.',
        );
      const message = next.value.message;
      if (!message) continue;
      if (isResponse(message)) {
        if (message.id !== call.upstreamId) continue;
        settled = true;
        releaseSession(state.pool, call.session);
        yield { message: toModernResponse(message, clientRequest, call.session) };
        return;
      }
      if (isRequest(message)) {
        if (!isInputRequest(message)) {
          await answerUnsupported(call.session, message, context);
          continue;
        }
        settled = true;
        const inputKey = `input-${++state.sequence.last}`;
        yield { message: parkCall(state.parked, call, message, clientRequest, inputKey) };
        return;
      }
      if (isNotification(message)) {
        const relayed = translateNotification(message, call.progress);
        if (relayed) yield { message: relayed };
        continue;
      }
    }
  } finally {
    // A client that left mid-call leaves the upstream session in an unknown state: drop it.
    if (!settled) {
      call.abort.abort();
      discardSession(call.session);
    }
  }
}
