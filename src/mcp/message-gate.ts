/**
 * The seam between the transport and the pipeline (gateway/pipeline/index.ts), which decides:
 * what the pipeline's message stages learn of each client message (ClientMessageContext), and the
 * observer through which the transport tells how a forwarded call was answered (CallObserver, see
 * observe-reply.ts).
 */
import type { Identity } from '../domain/identity.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../domain/jsonrpc.js';
import type { InterimChannel } from './interim-channel.js';

/** What the pipeline learns about each client message. */
export interface ClientMessageContext {
  readonly requestId: string;
  readonly upstreamName: string;
  readonly sessionId: string | undefined;
  readonly protocolVersion: string | undefined;
  readonly identity: Identity;
  /** The W3C traceparent the call carries (the listener sets one when the client did not). */
  readonly traceparent: string | undefined;
  /** Aborted when the client goes away (or cancels) or the gateway stops. */
  readonly signal?: AbortSignal;
  /** Sends notifications (progress) to the client while the request is held. */
  readonly interim?: InterimChannel;
  /** The client declared elicitation: a held call can tell the person it waits for approval. */
  readonly elicits?: boolean;
  /** Lists the upstream's tools on this session (for a call to a tool never seen listed). */
  readonly listTools?: () => Promise<unknown[]>;
}

/** Told how an admitted call ended, so its outcome is recorded. */
export interface CallObserver {
  /** The upstream's answer to the call (a result or a JSON-RPC error). */
  answered(response: JsonRpcResponse): void;
  /** No answer came: the upstream failed, timed out, or the client left. */
  failed(error: unknown): void;
  /**
   * Rewrites the answer before the client sees it (e.g. a listing filtered to what the caller may
   * use). Called before `answered`, which then sees the rewritten answer.
   */
  rewrite?(response: JsonRpcResponse): Promise<JsonRpcResponse>;
  /**
   * The request to forward instead of the client's: the form the policy judged (e.g. a resource
   * URI in its normal form), so the upstream reads exactly what was decided.
   */
  readonly forward?: JsonRpcRequest;
  /**
   * The stages answered the request themselves (a denial answered as a tool result): nothing is
   * forwarded, and this is the reply.
   */
  readonly answer?: JsonRpcResponse;
}
