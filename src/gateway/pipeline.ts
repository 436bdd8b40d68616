/**
 * The order of checks every client message passes through before it reaches an upstream.
 * Transport concerns (HTTP framing, sessions, size limits, Origin/Host) are handled by mcp/;
 * this file is where the security stages are composed, in order.
 *
 *   1. authenticate  identity/: bearer token or client certificate → Identity, else 401/403
 *   2. parse         by the endpoint: one valid JSON-RPC message within the size limit; a session
 *                    is bound to the identity that opened it
 *   3. authorize     (policy/, not built yet: every authenticated call is allowed, and says so)
 *   4. record        audit/: the decision is durably in the hash-chained log before anything is
 *                    forwarded; if the log cannot take it, the call is refused (fail closed)
 *   5. forward       by the endpoint, with Warden's own upstream credential, never the client's
 *   6. record        audit/: the result or error, with latency, when the call ends
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Identity } from '../domain/identity.js';
import type { CallRecorder, Decision } from '../audit/call-recorder.js';
import { startCallSpan } from '../audit/call-spans.js';
import type { JsonRpcMessage } from '../domain/jsonrpc.js';
import { isRequest } from '../domain/jsonrpc.js';
import type { RequestAuthenticator } from '../identity/authenticate-request.js';
import { describeClientCertificate } from '../identity/client-certificate.js';
import { readHeader } from '../mcp/http-headers.js';
import type { ClientMessageContext, MessageGate } from '../mcp/message-gate.js';
import type { Logger } from './logger.js';

export interface Pipeline extends MessageGate {
  /**
   * Stage 1: who is calling this endpoint (`upstream` undefined: the gateway's own API).
   * Throws a WardenError (401/403/400) when unproven.
   */
  authenticate(request: IncomingMessage, upstream: string | undefined): Promise<Identity>;
}

/** Until policy lands, this is the decision on every authenticated call; the log says so. */
const ALLOW_AUTHENTICATED: Decision = {
  effect: 'allow',
  reasons: ['authenticated caller; no policy engine configured'],
  policies: [],
};

export function createPipeline(options: {
  authenticator: RequestAuthenticator;
  recorder: CallRecorder;
  logger: Logger;
}): Pipeline {
  const { authenticator, recorder, logger } = options;
  return {
    authenticate(request, upstream) {
      return authenticator.authenticate({
        // headersDistinct keeps every Authorization header: Node would silently keep the first.
        authorization: request.headersDistinct['authorization'],
        url: request.url ?? '/',
        upstream,
        clientCertificate: verifiedClientCertificate(request),
        declaredModel: readDeclaredModel(request),
      });
    },
    async admitClientMessage(message: JsonRpcMessage, context: ClientMessageContext) {
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          {
            requestId: context.requestId,
            upstream: context.upstreamName,
            session: context.sessionId,
            agent: context.identity.agent,
            user: context.identity.user,
            method: 'method' in message ? message.method : undefined,
          },
          'client message',
        );
      }
      // Requests are calls with an outcome worth recording; notifications and replies are not.
      if (!isRequest(message) || message.method === 'ping') return undefined;
      const facts = {
        requestId: context.requestId,
        traceparent: context.traceparent,
        identity: context.identity,
        upstream: context.upstreamName,
        method: message.method,
        params: message.params,
      };
      const recorded = await recorder.recordDecision(facts, ALLOW_AUTHENTICATED);
      const span = startCallSpan(facts, ALLOW_AUTHENTICATED);
      return {
        answered(response) {
          recorded.answered(response);
          span.answered(response);
        },
        failed(error) {
          recorded.failed(error);
          span.failed(error);
        },
      };
    },
  };
}

/** A client certificate counts only when the TLS layer verified it against the client CA. */
function verifiedClientCertificate(request: IncomingMessage) {
  const socket = request.socket as Partial<TLSSocket>;
  if (socket.authorized !== true || typeof socket.getPeerX509Certificate !== 'function')
    return undefined;
  const certificate = socket.getPeerX509Certificate();
  return certificate === undefined ? undefined : describeClientCertificate(certificate);
}

/** The model the client says it is, from X-Agent-Model. */
function readDeclaredModel(request: IncomingMessage): string | undefined {
  const text = readHeader(request, 'x-agent-model');
  // Declared, never trusted: keep it short and printable for the log.
  return text === undefined ? undefined : text.slice(0, 200).replace(/[^\x20-\x7e]/g, '');
}
