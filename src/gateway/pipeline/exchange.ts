/**
 * One HTTP exchange as the pipeline's stages see it, the target it resolves to (a gateway route,
 * or an upstream's MCP endpoint and what that is built from), and what a stage is: a named
 * function over the exchange that either lets it continue or answers it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../../domain/identity.js';
import type { OriginGuard } from '../../http/origin-guard.js';
import type { ExchangeCaller, ExchangeLimits } from '../../mcp/read-exchange.js';
import type { SessionRegistry } from '../../mcp/session-registry.js';
import type { ModernRelay } from '../../mcp/stateless/modern-exchange.js';
import type { RequestStateSigner } from '../../mcp/stateless/request-state.js';
import type { UpstreamConnector } from '../../mcp/upstream/types.js';
import type { ClusterReport } from '../cluster/replica-membership.js';
import type { SessionHomes } from '../cluster/session-homes.js';
import type { ExchangeFacts } from '../exchange-ledger.js';
import type { RefusalRecords } from '../refusal-records.js';
import type { MessageStages } from './message-context.js';

/** What a gateway route is told of its exchange. */
export interface RouteExchange {
  /** The reference its records should carry. */
  readonly requestId: string;
  /** The client's address. */
  readonly source: string;
  /** Who is calling, when the route is one the authenticate stage guards. */
  readonly identity: Identity | undefined;
}

/** A plain HTTP handler for the gateway's own routes (metadata, JWKS, token endpoint, admin). */
export type RouteHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  exchange: RouteExchange,
) => Promise<void>;

/** One of the gateway's own routes, and whether the authenticate stage guards it. */
export interface GatewayRoute {
  readonly handler: RouteHandler;
  /**
   * `public`: documents anyone may read and the token endpoint (which authenticates clients
   * itself, by their secrets); `authenticated`: the admin API, whose callers pass the same
   * authenticate stage, and leave the same failure records, as the MCP endpoints'.
   */
  readonly access: 'public' | 'authenticated';
}

/** What an upstream's MCP endpoint is told of its exchange, besides the request and response. */
export interface ExchangeHandle extends ExchangeCaller {
  /** Tells the listener this exchange is a server-to-client stream that only ends when cut. */
  markServerStream(): void;
}

/** An upstream's MCP endpoint: the pipeline's stages 6 onward (createMcpEndpoint, index.ts). */
export type McpEndpoint = (
  request: IncomingMessage,
  response: ServerResponse,
  exchange: ExchangeHandle,
) => Promise<void>;

/** What an upstream's MCP endpoint is built from (by the composition root, app.ts). */
export interface McpEndpointOptions extends ExchangeLimits {
  readonly upstream: UpstreamConnector;
  readonly sessions: SessionRegistry;
  /**
   * Publishes a new session so every replica can find it, before its id is told; relays a
   * 2026-07-28 retry to the replica that parked its call.
   */
  readonly homes?:
    Pick<SessionHomes, 'publish' | 'relayRetry' | 'wasRelayed' | 'checkRetryHop'> | undefined;
  /** Reads which replica a requestState names. */
  readonly requestStates?: RequestStateSigner | undefined;
  /** Stages 9 to 13 (createMessageStages), asked for every client message. */
  readonly messageStages: MessageStages;
  /** Serves 2026-07-28 messages, which carry their own envelope instead of a session. */
  readonly modern: Pick<ModernRelay, 'bridge' | 'eraOf'>;
}

/** Where an exchange goes, once the resolve stage has read its path. */
export type ExchangeTarget =
  | { readonly kind: 'route'; readonly route: GatewayRoute }
  | { readonly kind: 'mcp'; readonly upstream: string; readonly endpoint: McpEndpoint };

/** One exchange on its way through the pipeline; stages fill in what they learn. */
export interface Exchange {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** The path without its query. */
  readonly path: string;
  /** What the records of this exchange tell (request id, source, upstream, identity). */
  readonly facts: ExchangeFacts;
  /** Aborted when the client goes away or the gateway stops. */
  readonly signal: AbortSignal;
  /** Tells the listener this exchange is a server-to-client stream that only ends when cut. */
  markServerStream(): void;
  /** Set by the resolve stage. */
  target: ExchangeTarget | undefined;
  /** Set by the authenticate stage: the WWW-Authenticate challenge of a refused caller. */
  challenge: string | undefined;
  /** Set by the accept-hop stage: another replica relayed this exchange here. */
  hopped: boolean;
}

/** What the exchange stages need of the gateway; the composition root supplies it. */
export interface ExchangeStageContext {
  readonly guard: () => OriginGuard;
  readonly isDraining: () => boolean;
  readonly isReady: () => boolean;
  readonly endpoints: ReadonlyMap<string, McpEndpoint>;
  /** The gateway's own routes (metadata, JWKS, token endpoint, admin API). */
  readonly route: (path: string) => GatewayRoute | undefined;
  /** Who is calling (`upstream` undefined: the gateway's own API); throws a WardenError. */
  readonly authenticate: (
    request: IncomingMessage,
    upstream: string | undefined,
  ) => Promise<Identity>;
  /** Whether an error of `authenticate` refuses the caller's credentials (an `auth.failed`). */
  readonly isCallerRefusal: (error: unknown) => boolean;
  /** The WWW-Authenticate challenge for a refused request to an upstream's endpoint. */
  readonly challenge: (error: unknown, upstream: string) => string | undefined;
  readonly refusals: Pick<RefusalRecords, 'reportAuthFailure' | 'recordRefusal'>;
  /** Where other replicas' sessions live; undefined when this replica relays nothing. */
  readonly homes: SessionHomes | undefined;
  /** Whether this replica holds the session (its upstream half lives here). */
  readonly holdsSession: (id: string) => boolean;
  /** What /readyz tells of the replicas on this store. */
  readonly cluster: () => ClusterReport;
}

/** `answered`: the stage wrote the reply, and no later stage runs. */
export type StageResult = 'next' | 'answered';

/** One named step of the exchange pipeline; a refusal is a thrown WardenError. */
export type ExchangeStage = (
  exchange: Exchange,
  gateway: ExchangeStageContext,
) => StageResult | Promise<StageResult>;
