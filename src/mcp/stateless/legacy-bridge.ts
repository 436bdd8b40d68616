/**
 * Serves 2026-07-28 (stateless) clients from an upstream that only speaks the sessionful
 * revisions: a stdio server, or an HTTP server built on SDK 1.x.
 *
 * Warden holds upstream sessions on the clients' behalf, one per set of client capabilities
 * (servers tailor themselves to them at initialize), checked out by one call at a time so that
 * server-to-client requests reach the call that caused them. Those requests (sampling,
 * elicitation, roots) become multi round-trip results: the call is parked, the client receives
 * `input_required` with a signed requestState, and its retry carries the answer upstream.
 */
import { createHash, randomBytes } from 'node:crypto';
import { WardenError } from '../../domain/errors.js';
import type {
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../../domain/jsonrpc.js';
import { isNotification, isRequest, isResponse } from '../../domain/jsonrpc.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import {
  backgroundContext,
  type ForwardContext,
  type UpstreamConnector,
  type UpstreamEvent,
  type UpstreamReply,
  type UpstreamSession,
} from '../upstream/types.js';
import { MODERN_REVISIONS, SERVER_INFO_KEY, withoutEnvelope, type Envelope } from './envelope.js';
import { STATELESS_REQUEST_METHODS, STATELESS_REVISION } from '../../domain/protocol.js';
import { createRequestStateSigner, type RequestStateSigner } from './request-state.js';

/** The legacy revision Warden speaks to the upstream on the client's behalf. */
const BRIDGE_REVISION = '2025-11-25';
/** Methods of 2026-07-28 that a bridge can serve: all but subscriptions/listen. */
const BRIDGED_METHODS: ReadonlySet<string> = new Set(
  [...STATELESS_REQUEST_METHODS].filter((method) => method !== 'subscriptions/listen'),
);
/** Results that 2026-07-28 clients expect to carry caching hints. */
const CACHEABLE_METHODS = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);
/** Server-to-client requests that map onto multi round-trip input requests. */
const INPUT_METHODS = new Set(['sampling/createMessage', 'elicitation/create', 'roots/list']);
/**
 * Idle upstream sessions kept per caller, across every capability set it declares: varying the
 * envelope cannot pile up sessions (for a stdio upstream, children) that others then lack.
 */
const MAX_IDLE_SESSIONS_PER_OWNER = 4;

export interface LegacyBridgeOptions {
  readonly connector: UpstreamConnector;
  /** How long a parked call waits for the client's retry before it is abandoned. */
  readonly parkTimeoutMs: number;
  readonly signer?: RequestStateSigner;
}

interface BridgeSession {
  readonly key: string;
  /** The caller it serves (sessions are never shared across callers). */
  readonly owner: string;
  readonly upstream: UpstreamSession;
  readonly initializeResult: Record<string, unknown>;
  /** The sessionful revision the upstream agreed to; it goes in MCP-Protocol-Version upstream. */
  readonly protocolVersion: string;
}

/** One bridged call: it may outlive the client exchange that started it (while parked). */
interface BridgedCall {
  readonly session: BridgeSession;
  readonly events: AsyncIterator<UpstreamEvent>;
  readonly upstreamId: string;
  readonly progress: ProgressMapping | undefined;
  /** Aborts the upstream exchange; owned by the call, not by any one client request. */
  readonly abort: AbortController;
  /** The caller that started the call. */
  readonly owner: string;
}

interface ParkedCall {
  readonly abort: AbortController;
  /** Only the caller that started the call may resume it, whatever requestState it holds. */
  readonly owner: string;
  readonly session: BridgeSession;
  readonly events: AsyncIterator<UpstreamEvent>;
  readonly upstreamId: string;
  readonly serverRequestId: JsonRpcId;
  readonly inputKey: string;
  readonly method: string;
  readonly target: unknown;
  readonly progress: ProgressMapping | undefined;
  readonly timer: NodeJS.Timeout;
}

interface ProgressMapping {
  readonly upstreamToken: string;
  readonly clientToken: string | number;
}

export interface LegacyBridge {
  /**
   * Answers one modern request; yields the events for the client, the last being the response.
   * `owner` names the caller: upstream sessions and parked calls are never shared across owners.
   */
  exchange(
    request: JsonRpcRequest,
    envelope: Envelope,
    context: ForwardContext,
    owner: string,
  ): AsyncGenerator<UpstreamEvent>;
  close(): Promise<void>;
}

export function createLegacyBridge(options: LegacyBridgeOptions): LegacyBridge {
  const signer = options.signer ?? createRequestStateSigner();
  const idle = new Map<string, BridgeSession[]>();
  const idleByOwner = new Map<string, number>();
  const parked = new Map<string, ParkedCall>();
  let counter = 0;

  async function checkout(
    envelope: Envelope,
    context: ForwardContext,
    owner: string,
  ): Promise<BridgeSession> {
    const key = sessionKey(envelope, owner);
    const pool = idle.get(key);
    const ready = pool?.pop();
    if (pool?.length === 0) idle.delete(key);
    if (ready) {
      const left = (idleByOwner.get(owner) ?? 1) - 1;
      if (left > 0) idleByOwner.set(owner, left);
      else idleByOwner.delete(owner);
      return ready;
    }
    const upstream = options.connector.openSession();
    try {
      const initializeResult = await initializeUpstream(upstream, envelope, context);
      const agreed = initializeResult['protocolVersion'];
      const protocolVersion = typeof agreed === 'string' ? agreed : BRIDGE_REVISION;
      return { key, owner, upstream, initializeResult, protocolVersion };
    } catch (error) {
      await upstream.terminate(context).catch(() => undefined);
      throw error;
    }
  }

  function release(session: BridgeSession): void {
    const pool = idle.get(session.key) ?? [];
    const ownerIdle = idleByOwner.get(session.owner) ?? 0;
    if (ownerIdle >= MAX_IDLE_SESSIONS_PER_OWNER) {
      void session.upstream
        .terminate(backgroundContext('bridge', BRIDGE_REVISION))
        .catch(() => undefined);
      return;
    }
    pool.push(session);
    idle.set(session.key, pool);
    idleByOwner.set(session.owner, ownerIdle + 1);
  }

  function discard(session: BridgeSession): void {
    void session.upstream
      .terminate(backgroundContext('bridge', BRIDGE_REVISION))
      .catch(() => undefined);
  }

  /**
   * Relays upstream events for one call until its response, translating ids and progress
   * tokens back to the client's, or parks the call when the server asks the client for input.
   */
  async function* relayCall(
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
          release(call.session);
          yield { message: toModernResponse(message, clientRequest, call.session) };
          return;
        }
        if (isRequest(message)) {
          if (!INPUT_METHODS.has(message.method)) {
            await answerUnsupported(call.session, message, context);
            continue;
          }
          settled = true;
          yield { message: park(call, message, clientRequest) };
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
        discard(call.session);
      }
    }
  }

  function park(
    call: BridgedCall,
    serverRequest: JsonRpcRequest,
    clientRequest: JsonRpcRequest,
  ): JsonRpcResponse {
    const handle = randomBytes(18).toString('base64url');
    const inputKey = `input-${++counter}`;
    const timer = setTimeout(() => {
      if (!parked.delete(handle)) return;
      call.abort.abort();
      discard(call.session);
    }, options.parkTimeoutMs);
    timer.unref();
    parked.set(handle, {
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
        requestState: signer.sign(handle),
      },
    };
  }

  async function* resume(
    request: JsonRpcRequest,
    state: unknown,
    context: ForwardContext,
    owner: string,
  ): AsyncGenerator<UpstreamEvent> {
    const handle = typeof state === 'string' ? signer.verify(state) : undefined;
    const call = handle === undefined ? undefined : parked.get(handle);
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
    parked.delete(handle);
    clearTimeout(call.timer);
    context = { ...context, protocolVersion: call.session.protocolVersion, mcpHeaders: {} };
    await call.session.upstream.send(
      { jsonrpc: '2.0', id: call.serverRequestId, result: answer as Record<string, unknown> },
      context,
    );
    yield* relayCall(call, request, context);
  }

  return {
    async *exchange(request, envelope, context, owner) {
      if (!BRIDGED_METHODS.has(request.method)) {
        throw new WardenError(
          'WARDEN_METHOD_NOT_FOUND',
          `Method "${request.method}" cannot be served from an upstream that predates revision ${STATELESS_REVISION}.`,
        );
      }
      const state = request.params?.['requestState'];
      if (state !== undefined) {
        yield* resume(request, state, context, owner);
        return;
      }
      const session = await checkout(envelope, context, owner);
      // Upstream, the call travels in the session's revision: no 2026-07-28 headers.
      context = { ...context, protocolVersion: session.protocolVersion, mcpHeaders: {} };
      if (request.method === 'server/discover') {
        release(session);
        yield { message: discoverResult(request.id, session) };
        return;
      }
      const upstreamId = `warden-bridge-${++counter}`;
      const { params, progress } = rewriteProgressToken(
        withoutEnvelope(request.params),
        `warden-progress-${counter}`,
      );
      const abort = new AbortController();
      let reply: UpstreamReply;
      try {
        reply = await session.upstream.send(
          { jsonrpc: '2.0', id: upstreamId, method: request.method, params },
          { ...context, signal: abort.signal },
        );
      } catch (error) {
        discard(session);
        throw error;
      }
      const events = eventsOf(reply)[Symbol.asyncIterator]();
      yield* relayCall({ session, events, upstreamId, progress, abort, owner }, request, context);
    },
    async close() {
      for (const call of parked.values()) {
        clearTimeout(call.timer);
        call.abort.abort();
      }
      const sessions = [
        ...[...idle.values()].flat(),
        ...[...parked.values()].map((call) => call.session),
      ];
      idle.clear();
      idleByOwner.clear();
      parked.clear();
      await Promise.all(
        sessions.map((session) =>
          session.upstream
            .terminate(backgroundContext('bridge', BRIDGE_REVISION))
            .catch(() => undefined),
        ),
      );
    },
  };
}

async function initializeUpstream(
  upstream: UpstreamSession,
  envelope: Envelope,
  context: ForwardContext,
): Promise<Record<string, unknown>> {
  const initialize: JsonRpcRequest = {
    jsonrpc: '2.0',
    id: 'warden-bridge-initialize',
    method: 'initialize',
    params: {
      protocolVersion: BRIDGE_REVISION,
      capabilities: envelope.clientCapabilities,
      clientInfo: envelope.clientInfo ?? { name: 'warden-bridge', version: '1' },
    },
  };
  const reply = await upstream.send(initialize, {
    ...context,
    protocolVersion: undefined,
    mcpHeaders: {},
  });
  const response = await firstResponse(reply);
  if (!('result' in response)) {
    throw new WardenError(
      'WARDEN_UPSTREAM_PROTOCOL_ERROR',
      `The upstream refused to initialize: ${response.error.message}`,
    );
  }
  const version = response.result['protocolVersion'];
  await upstream.send(
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    {
      ...context,
      protocolVersion: typeof version === 'string' ? version : BRIDGE_REVISION,
      mcpHeaders: {},
    },
  );
  return response.result;
}

async function firstResponse(reply: UpstreamReply): Promise<JsonRpcResponse> {
  if (reply.kind === 'json' && isResponse(reply.message)) return reply.message;
  if (reply.kind === 'stream') {
    for await (const event of reply.events) {
      if (event.message && isResponse(event.message)) return event.message;
    }
  }
  throw new WardenError(
    'WARDEN_UPSTREAM_PROTOCOL_ERROR',
    'The upstream did not answer initialize.',
  );
}

/** Upstream replies as one event sequence; an HTTP error status becomes a specific error. */
async function* eventsOf(reply: UpstreamReply): AsyncGenerator<UpstreamEvent> {
  switch (reply.kind) {
    case 'json':
      yield { message: reply.message };
      return;
    case 'stream':
      yield* reply.events;
      return;
    case 'accepted':
      throw new WardenError(
        'WARDEN_UPSTREAM_PROTOCOL_ERROR',
        'The upstream accepted a request without answering it.',
      );
    case 'status':
      throw new WardenError(
        reply.status >= 500 ? 'WARDEN_UPSTREAM_UNAVAILABLE' : 'WARDEN_UPSTREAM_PROTOCOL_ERROR',
        `The upstream answered HTTP ${reply.status}.`,
      );
  }
}

function toModernResponse(
  response: JsonRpcResponse,
  request: JsonRpcRequest,
  session: BridgeSession,
): JsonRpcResponse {
  if (!('result' in response)) return { ...response, id: request.id };
  const result: Record<string, unknown> = { ...response.result };
  result['resultType'] ??= 'complete';
  if (CACHEABLE_METHODS.has(request.method)) {
    result['ttlMs'] ??= 0;
    result['cacheScope'] ??= 'private';
  }
  result['_meta'] = {
    ...(result['_meta'] as Record<string, unknown> | undefined),
    [SERVER_INFO_KEY]: session.initializeResult['serverInfo'],
  };
  return { jsonrpc: '2.0', id: request.id, result };
}

function discoverResult(id: JsonRpcId, session: BridgeSession): JsonRpcResponse {
  const init = session.initializeResult;
  return {
    jsonrpc: '2.0',
    id,
    result: {
      resultType: 'complete',
      supportedVersions: MODERN_REVISIONS,
      capabilities: init['capabilities'] ?? {},
      ...(typeof init['instructions'] === 'string' && { instructions: init['instructions'] }),
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { [SERVER_INFO_KEY]: init['serverInfo'] },
    },
  };
}

/** Progress and log notifications reach the client; session-wide ones have no home in 2026. */
function translateNotification(
  message: JsonRpcNotification,
  progress: ProgressMapping | undefined,
): JsonRpcMessage | undefined {
  if (message.method === 'notifications/progress') {
    if (!progress || message.params?.['progressToken'] !== progress.upstreamToken) return undefined;
    return { ...message, params: { ...message.params, progressToken: progress.clientToken } };
  }
  if (message.method === 'notifications/message') return message;
  return undefined;
}

/** Progress tokens are rewritten so that clients sharing an upstream session never collide. */
function rewriteProgressToken(
  params: Record<string, unknown>,
  upstreamToken: string,
): { params: Record<string, unknown>; progress: ProgressMapping | undefined } {
  const meta = params['_meta'] as Record<string, unknown> | undefined;
  const clientToken = meta?.['progressToken'];
  if (typeof clientToken !== 'string' && typeof clientToken !== 'number')
    return { params, progress: undefined };
  return {
    params: { ...params, _meta: { ...meta, progressToken: upstreamToken } },
    progress: { upstreamToken, clientToken },
  };
}

async function answerUnsupported(
  session: BridgeSession,
  request: JsonRpcRequest,
  context: ForwardContext,
): Promise<void> {
  const answer: JsonRpcResponse =
    request.method === 'ping'
      ? { jsonrpc: '2.0', id: request.id, result: {} }
      : {
          jsonrpc: '2.0',
          id: request.id,
          error: { code: -32601, message: `Method not found: ${request.method}` },
        };
  await session.upstream.send(answer, context).catch(() => undefined);
}

function targetOf(request: JsonRpcRequest): unknown {
  return request.params?.['name'] ?? request.params?.['uri'];
}

/** Sessions are shared only between calls of one owner that declared the same capabilities. */
function sessionKey(envelope: Envelope, owner: string): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        owner,
        capabilities: envelope.clientCapabilities,
        clientInfo: envelope.clientInfo ?? null,
      }),
    )
    .digest('base64url');
}
