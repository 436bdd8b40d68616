/**
 * One upstream session the legacy bridge holds on a caller's behalf: opened with the
 * sessionful handshake (initialize, notifications/initialized) in the client's capabilities,
 * and ended in the background when it is no longer of use.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../domain/canonical-json.js';
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../../domain/jsonrpc.js';
import { isResponse } from '../../domain/jsonrpc.js';
import {
  backgroundContext,
  type ForwardContext,
  type UpstreamConnector,
  type UpstreamReply,
  type UpstreamSession,
} from '../upstream/types.js';
import type { Envelope } from './envelope.js';

/** The legacy revision Warden speaks to the upstream on the client's behalf. */
export const BRIDGE_REVISION = '2025-11-25';

/** Who a bridged request is for. */
export interface BridgeCaller {
  /** The caller (agent, user, tenant): upstream sessions and parked calls are never shared. */
  readonly owner: string;
  /** The agent, whose idle sessions are bounded together, whichever user each serves. */
  readonly agent: string;
}

export interface BridgeSession {
  /** Which calls may share it: see `sessionKey`. */
  readonly key: string;
  /** The caller it serves (sessions are never shared across callers). */
  readonly owner: string;
  readonly agent: string;
  readonly upstream: UpstreamSession;
  readonly initializeResult: Record<string, unknown>;
  /** The sessionful revision the upstream agreed to; it goes in MCP-Protocol-Version upstream. */
  readonly protocolVersion: string;
}

/** Opens and initializes a new upstream session for the caller; ends it again if that fails. */
export async function openBridgeSession(
  connector: UpstreamConnector,
  key: string,
  envelope: Envelope,
  context: ForwardContext,
  { owner, agent }: BridgeCaller,
): Promise<BridgeSession> {
  const upstream = connector.openSession();
  try {
    const initializeResult = await initializeUpstream(upstream, envelope, context);
    const agreed = initializeResult['protocolVersion'];
    const protocolVersion = typeof agreed === 'string' ? agreed : BRIDGE_REVISION;
    return { key, owner, agent, upstream, initializeResult, protocolVersion };
  } catch (error) {
    await upstream.terminate(context).catch(() => undefined);
    throw error;
  }
}

/** Ends the session upstream; never rejects. */
export function endBridgeSession(session: BridgeSession): Promise<void> {
  return session.upstream
    .terminate(backgroundContext('bridge', BRIDGE_REVISION))
    .catch(() => undefined);
}

/** Sessions are shared only between calls of one owner that declared the same capabilities. */
export function sessionKey(envelope: Envelope, owner: string): string {
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
