/**
 * Bridged calls parked while the client answers a server-to-client request (sampling,
 * elicitation, roots): the client receives `input_required` with a signed requestState, and
 * its retry, from the same caller, for the same method and target, resumes the call. A call
 * whose retry does not come within `parkTimeoutMs` is abandoned and its session ended.
 */
import { randomBytes } from 'node:crypto';
import { canonicalJson } from '../../domain/canonical-json.js';
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from '../../domain/jsonrpc.js';
import type { UpstreamEvent } from '../upstream/types.js';
import { discardSession } from './bridge-session-pool.js';
import type { BridgeSession } from './bridge-session.js';
import type { ProgressMapping } from './progress-tokens.js';
import type { RequestStateSigner } from './request-state.js';

/** Server-to-client requests that map onto multi round-trip input requests. */
const INPUT_METHODS: ReadonlySet<string> = new Set([
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
]);

/** One bridged call: it may outlive the client exchange that started it (while parked). */
export interface BridgedCall {
  readonly session: BridgeSession;
  readonly events: AsyncIterator<UpstreamEvent>;
  readonly upstreamId: string;
  readonly progress: ProgressMapping | undefined;
  /** Aborts the upstream exchange; owned by the call, not by any one client request. */
  readonly abort: AbortController;
  /** The caller that started the call; only it may resume the call, whatever state it holds. */
  readonly owner: string;
}

export interface ParkedCall extends BridgedCall {
  /** The id of the server's request, which the client's answer goes upstream under. */
  readonly serverRequestId: JsonRpcId;
  /** The key under which the client must answer in `inputResponses`. */
  readonly inputKey: string;
  /** The method and target of the client's request: a retry must name the same. */
  readonly method: string;
  readonly target: unknown;
  readonly timer: NodeJS.Timeout;
}

export interface ParkedCalls {
  readonly signer: RequestStateSigner;
  readonly parkTimeoutMs: number;
  /**
   * Calls one agent may have parked at once. A parked call keeps its upstream session (for a
   * stdio upstream, a child) busy until answered or abandoned: it counts as a session in use.
   */
  readonly maxPerAgent: number;
  /** By the handle signed into the requestState. */
  readonly calls: Map<string, ParkedCall>;
}

export function createParkedCalls(
  signer: RequestStateSigner,
  parkTimeoutMs: number,
  maxPerAgent = Number.POSITIVE_INFINITY,
): ParkedCalls {
  return { signer, parkTimeoutMs, maxPerAgent, calls: new Map() };
}

/**
 * Refuses (WARDEN_TOO_MANY_SESSIONS_FOR_AGENT) a new call of an agent whose parked calls fill
 * its share: parking call after call would otherwise hold every child of a stdio upstream.
 */
export function requireRoomToPark(parked: ParkedCalls, agent: string): void {
  let count = 0;
  for (const call of parked.calls.values()) if (call.session.agent === agent) count += 1;
  if (count < parked.maxPerAgent) return;
  throw new WardenError('WARDEN_TOO_MANY_SESSIONS_FOR_AGENT', undefined, {
    details: { limit: parked.maxPerAgent, parked: count },
  });
}

/** True for a server-to-client request the client can be asked as an input request. */
export function isInputRequest(request: JsonRpcRequest): boolean {
  return INPUT_METHODS.has(request.method);
}

/** Parks the call; returns the `input_required` result that asks the client for input. */
export function parkCall(
  parked: ParkedCalls,
  call: BridgedCall,
  serverRequest: JsonRpcRequest,
  clientRequest: JsonRpcRequest,
  inputKey: string,
): JsonRpcResponse {
  const handle = randomBytes(18).toString('base64url');
  const timer = setTimeout(() => {
    if (!parked.calls.delete(handle)) return;
    call.abort.abort();
    discardSession(call.session);
  }, parked.parkTimeoutMs);
  timer.unref();
  parked.calls.set(handle, {
    ...call,
    serverRequestId: serverRequest.id,
    inputKey,
    method: clientRequest.method,
    target: targetOf(clientRequest),
    timer,
  });
  return {
    jsonrpc: '2.0',
    id: clientRequest.id,
    result: {
      resultType: 'input_required',
      inputRequests: {
        [inputKey]: { method: serverRequest.method, params: serverRequest.params ?? {} },
      },
      requestState: parked.signer.sign(handle),
    },
  };
}

/**
 * Takes out the call a retry resumes, with the client's answer to it. Throws
 * WARDEN_INVALID_REQUEST_STATE (and leaves any parked call in place) for a state that is
 * forged, unknown, another caller's, or for another method or target, and for a retry that
 * does not answer the call's input request.
 */
export function unparkCall(
  parked: ParkedCalls,
  request: JsonRpcRequest,
  requestState: unknown,
  owner: string,
): { call: ParkedCall; answer: Record<string, unknown> } {
  const handle = typeof requestState === 'string' ? parked.signer.verify(requestState) : undefined;
  const call = handle === undefined ? undefined : parked.calls.get(handle);
  if (
    !handle ||
    !call ||
    call.owner !== owner ||
    call.method !== request.method ||
    canonicalJson(call.target) !== canonicalJson(targetOf(request))
  ) {
    throw new WardenError('WARDEN_INVALID_REQUEST_STATE');
  }
  const responses = request.params?.['inputResponses'];
  const answer =
    responses !== null && typeof responses === 'object'
      ? (responses as Record<string, unknown>)[call.inputKey]
      : undefined;
  if (answer === null || typeof answer !== 'object') {
    throw new WardenError(
      'WARDEN_INVALID_REQUEST_STATE',
      `inputResponses must answer "${call.inputKey}".`,
    );
  }
  parked.calls.delete(handle);
  clearTimeout(call.timer);
  return { call, answer: answer as Record<string, unknown> };
}

/** Abandons every parked call; returns their sessions, for the caller to end. */
export function drainParkedCalls(parked: ParkedCalls): BridgeSession[] {
  const calls = [...parked.calls.values()];
  for (const call of calls) {
    clearTimeout(call.timer);
    call.abort.abort();
  }
  parked.calls.clear();
  return calls.map((call) => call.session);
}

/** What a request acts on (a tool's name, a resource's URI): a resumed call must match it. */
function targetOf(request: JsonRpcRequest): unknown {
  return request.params?.['name'] ?? request.params?.['uri'];
}
