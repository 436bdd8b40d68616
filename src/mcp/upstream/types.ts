/** The seam between the client-facing endpoint and an upstream MCP server, whatever its transport. */
import type { JsonRpcMessage } from '../../domain/jsonrpc.js';
import type { Identity } from '../../domain/identity.js';

/**
 * Who a message is sent for, as far as an upstream credential may say (token exchange names
 * them to the upstream's authorization server): never the client's credential itself.
 */
export type UpstreamCaller = Pick<Identity, 'user' | 'agent' | 'delegation'>;

/** The caller part of an identity, copied: nothing else of it travels toward an upstream. */
export function callerOf(identity: Identity): UpstreamCaller {
  return { user: identity.user, agent: identity.agent, delegation: identity.delegation };
}

/** Per-exchange facts an upstream needs; the client's credentials are deliberately absent. */
export interface ForwardContext {
  /** Warden's reference id for this exchange (logs, error references). */
  readonly requestId: string;
  /** The caller the message is sent for; undefined for work Warden does on its own. */
  readonly caller: UpstreamCaller | undefined;
  /** MCP-Protocol-Version the client sent, if any. */
  readonly protocolVersion: string | undefined;
  /** MCP headers that must travel with the message (Mcp-Method, Mcp-Name, Mcp-Param-*), lower-cased. */
  readonly mcpHeaders: Readonly<Record<string, string>>;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly lastEventId: string | undefined;
  /** Aborted when the client goes away or the gateway stops. */
  readonly signal: AbortSignal;
}

/** One server-sent event relayed from the upstream. `message` is absent on priming events. */
export interface UpstreamEvent {
  readonly id?: string;
  readonly retry?: number;
  readonly message?: JsonRpcMessage;
  /** The event's data exactly as the upstream wrote it, reused when the message is unchanged. */
  readonly raw?: string;
  /**
   * Set when `message` is Warden's own error answer for a call the upstream failed to answer
   * (child died, timeout): the call is recorded as failed with this error, not as answered.
   */
  readonly failure?: Error;
}

/** What the upstream answered to one HTTP exchange. */
export type UpstreamReply =
  | { readonly kind: 'json'; readonly message: JsonRpcMessage; readonly raw: string }
  | { readonly kind: 'stream'; readonly events: AsyncIterable<UpstreamEvent> }
  | { readonly kind: 'accepted' }
  /** A non-success HTTP answer, relayed with its status (e.g. 405 for an unsupported GET). */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly body: string;
      readonly contentType: string | undefined;
    };

/** An upstream's half of one client session. */
export interface UpstreamSession {
  /** Sends one client message (request, notification or response) upstream. */
  send(message: JsonRpcMessage, context: ForwardContext): Promise<UpstreamReply>;
  /** Opens the server-to-client stream (HTTP GET), or resumes one after Last-Event-ID. */
  openServerStream(context: ForwardContext): Promise<UpstreamReply>;
  /** Ends the session upstream (HTTP DELETE, or stopping the child process). */
  terminate(context: ForwardContext): Promise<void>;
  /** Called by the upstream when the session can no longer be used. */
  onEnded: (() => void) | undefined;
}

/** Opens sessions against one configured upstream. */
export interface UpstreamConnector {
  readonly name: string;
  readonly kind: 'http' | 'stdio';
  openSession(): UpstreamSession;
  /** Stops everything this connector started (child processes, connection pools). */
  close(): Promise<void>;
}

/** The context of work the gateway does on its own, with no client exchange behind it. */
export function backgroundContext(
  requestId: string,
  protocolVersion: string | undefined = undefined,
): ForwardContext {
  return {
    requestId,
    caller: undefined,
    protocolVersion,
    mcpHeaders: {},
    traceparent: undefined,
    tracestate: undefined,
    lastEventId: undefined,
    signal: new AbortController().signal,
  };
}
