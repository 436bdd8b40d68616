/** The gateway pipeline's hook into the relay, called for every client message before it is forwarded. */
import type { Identity } from '../domain/identity.js';
import type { JsonRpcMessage } from '../domain/jsonrpc.js';

/** What the pipeline learns about each client message. */
export interface ClientMessageContext {
  readonly requestId: string;
  readonly upstreamName: string;
  readonly sessionId: string | undefined;
  readonly protocolVersion: string | undefined;
  readonly identity: Identity;
}

/** Refuses a message by throwing a WardenError; resolving admits it. */
export interface MessageGate {
  admitClientMessage(message: JsonRpcMessage, context: ClientMessageContext): Promise<void>;
}
