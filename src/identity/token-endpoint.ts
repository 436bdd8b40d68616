/**
 * The built-in issuer over HTTP: the OAuth 2.0 token endpoint (client_credentials grant only,
 * RFC 6749 §4.4), its JWKS, and its RFC 8414 metadata. Errors are RFC 6749 §5.2 JSON; they
 * never echo what the client sent or why exactly its credentials were refused.
 */
import { isGatewayAudience } from './jwt-verifier.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentConfig } from '../config/config.js';
import { WardenError } from '../domain/errors.js';
import { sendJson } from '../http/json-reply.js';
import { readBody } from '../http/read-body.js';
import { IssuerError } from './builtin-issuer.js';
import type { BuiltinIssuer } from './builtin-issuer.js';
import {
  CLIENT_ASSERTION_ALGORITHMS,
  CLIENT_AUTHENTICATION_METHODS,
  createClientAuthenticator,
  readClientCredentials,
} from './client-authentication.js';
import type {
  ClientAuthenticationFailure,
  ClientAuthenticationMethod,
} from './client-authentication.js';
import { createMemorySecretLimiter } from './client-secret-limiter.js';
import type {
  ClientSecretLimiter,
  SecretAttemptReservation,
  SecretAttemptTicket,
} from './client-secret-limiter.js';
import type { SigningKeyring } from './signing-keys.js';
import type { AssertionReplayRepository } from '../store/types.js';

/** Where the composition root is expected to serve the issuer, relative to its origin. */
export const BUILTIN_ISSUER_PATHS = Object.freeze({
  token: '/oauth/token',
  jwks: '/.well-known/jwks.json',
  metadata: '/.well-known/oauth-authorization-server',
});

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'temporarily_unavailable'
  | 'server_error';

/** Why a token request was refused, for `auth.failed`; never sent to the client. */
export type TokenRequestFailure =
  | ClientAuthenticationFailure
  /** This source failed too often for this client. */
  | 'rate_limited'
  /** The client's failure budget across all sources is spent, and this source has failed too. */
  | 'client_rate_limited'
  | 'agent_revoked'
  | 'scope_malformed'
  /** A requested scope is neither required by the gateway nor configured for the agent. */
  | 'scope_not_allowed'
  | 'resource_not_served'
  /** The request itself was malformed (method, media type, size, repeated or missing fields). */
  | 'malformed_request'
  /** A grant type other than client_credentials. */
  | 'unsupported_grant_type';

/** What the endpoint did, for the audit log (`token.issued`, `auth.failed`). */
export type TokenEndpointEvent =
  | {
      readonly kind: 'token.issued';
      /** The listener's id of the exchange, when it gave one: the client's reference. */
      readonly requestId: string | undefined;
      /** The remote address of the request. */
      readonly source: string;
      readonly agent: string;
      readonly method: ClientAuthenticationMethod;
      readonly tokenId: string;
      readonly expiresAt: number;
      readonly scopes: readonly string[];
    }
  | {
      readonly kind: 'auth.failed';
      readonly requestId: string | undefined;
      /** The remote address of the request: failures are aggregated per source. */
      readonly source: string;
      /** The client id claimed, registered or not. */
      readonly clientId: string | undefined;
      readonly method: ClientAuthenticationMethod | undefined;
      readonly reason: TokenRequestFailure;
      /** The OAuth error the client was answered with. */
      readonly error: OAuthErrorCode;
    };

export interface TokenEndpointOptions {
  readonly issuer: BuiltinIssuer;
  readonly agents: ReadonlyMap<string, AgentConfig>;
  /** This endpoint's absolute URL: an accepted audience of client assertions. */
  readonly tokenEndpointUrl: string;
  readonly revocations?: { isAgentRevoked(agentId: string, at: number): boolean };
  readonly now?: () => number;
  /** Defaults to 16 KiB: a token request is a handful of short parameters. */
  readonly maxBodyBytes?: number;
  /**
   * Counts wrong client secrets per source and client; defaults to an in-memory limiter (10
   * failures a minute per source and client, 50 per client from all sources). Replicas pass the
   * store's (`createStoreSecretLimiter`), so they share one count.
   */
  readonly secretLimiter?: ClientSecretLimiter;
  /** Client assertion ids shared with the other replicas; absent: remembered in this process. */
  readonly assertionReplays?: AssertionReplayRepository;
  /** Each issued token and each refusal; refusals are many under attack, so aggregate them. */
  readonly onEvent?: (event: TokenEndpointEvent) => void;
  /** Told about unexpected failures (store down, a bug); the client only sees server_error. */
  readonly onError?: (error: unknown) => void;
}

/** What the listener tells a route of its exchange. */
export interface ExchangeReference {
  readonly requestId: string;
  readonly source: string;
}

export type HttpHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  exchange?: ExchangeReference,
) => Promise<void>;

const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';
// RFC 8707 lets `resource` repeat; every other parameter must not (RFC 6749 §3.2).
const REPEATABLE_PARAMETERS = new Set(['resource']);
const SCOPE_SEPARATOR = ' ';

/** Who was refused and why, when a refusal is recorded as `auth.failed`. */
type Refusal = Omit<
  Extract<TokenEndpointEvent, { kind: 'auth.failed' }>,
  'kind' | 'requestId' | 'source' | 'error'
>;

/** An authenticated client, as named in the refusals of what it asked for. */
type Requester = Omit<Refusal, 'reason'>;

/** An RFC 6749 §5.2 error response, with the HTTP status and headers it goes out with. */
class OAuthError extends Error {
  readonly error: OAuthErrorCode;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Set when the refusal is recorded as `auth.failed`. */
  readonly refusal: Refusal | undefined;

  constructor(
    error: OAuthErrorCode,
    status: number,
    description: string,
    options: { headers?: Readonly<Record<string, string>>; refusal?: Refusal } = {},
  ) {
    super(description);
    this.name = 'OAuthError';
    this.error = error;
    this.status = status;
    this.headers = options.headers ?? {};
    this.refusal = options.refusal;
  }
}

export function createTokenEndpoint(options: TokenEndpointOptions): HttpHandler {
  const { issuer, agents, tokenEndpointUrl, revocations } = options;
  const now = options.now ?? Date.now;
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024;
  const onEvent = options.onEvent ?? (() => undefined);
  const onError = options.onError ?? (() => undefined);
  const authenticator = createClientAuthenticator({
    agents,
    audiences: [tokenEndpointUrl, issuer.issuer],
    now,
    assertionReplays: options.assertionReplays,
    onError,
  });
  const limiter = options.secretLimiter ?? createMemorySecretLimiter({ now });

  async function exchange(
    request: IncomingMessage,
    { requestId, source }: { requestId: string | undefined; source: string },
  ): Promise<Record<string, unknown>> {
    if (request.method !== 'POST')
      throw new OAuthError('invalid_request', 405, 'the token endpoint accepts POST only', {
        headers: { allow: 'POST' },
      });
    // Parameters in the URL end up in access logs, and a scope there would be easy to miss.
    if (/\?./.test(request.url ?? ''))
      throw new OAuthError('invalid_request', 400, 'send the parameters in the body, not the URL');
    const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType !== FORM_MEDIA_TYPE)
      throw new OAuthError('invalid_request', 400, `send the parameters as ${FORM_MEDIA_TYPE}`);
    const form = readForm(await readFormBody(request, maxBodyBytes));
    for (const name of new Set(form.keys()))
      if (!REPEATABLE_PARAMETERS.has(name) && form.getAll(name).length > 1)
        throw new OAuthError('invalid_request', 400, 'a parameter is repeated');

    const client = await authenticateClient(request, form, source);
    const requester: Requester = { clientId: client.agent.id, method: client.method };
    if (revocations?.isAgentRevoked(client.agent.id, now()))
      throw new OAuthError('unauthorized_client', 400, 'this client may not obtain tokens', {
        refusal: { ...requester, reason: 'agent_revoked' },
      });

    const grantType = form.get('grant_type');
    if (grantType === null) throw new OAuthError('invalid_request', 400, 'grant_type is missing');
    if (grantType !== 'client_credentials')
      throw new OAuthError(
        'unsupported_grant_type',
        400,
        'only the client_credentials grant is supported',
      );
    const resource = checkResources(form.getAll('resource'), issuer.resource, requester);
    const scopes = readScopes(form.get('scope'), requester);

    let issued;
    try {
      issued = await issuer.issueToken({
        agent: client.agent,
        ...(scopes !== undefined && { scopes }),
        ...(resource !== undefined && { resource }),
      });
    } catch (error) {
      const reason = scopeFailureOf(error);
      if (reason === undefined) throw error;
      throw new OAuthError('invalid_scope', 400, SCOPE_DESCRIPTIONS[reason], {
        refusal: { ...requester, reason },
      });
    }
    onEvent({
      kind: 'token.issued',
      requestId,
      source,
      agent: client.agent.id,
      method: client.method,
      tokenId: issued.tokenId,
      expiresAt: issued.expiresAt,
      scopes: issued.scopes,
    });
    return {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: Math.round((issued.expiresAt - issued.issuedAt) / 1000),
      ...(issued.scopes.length > 0 && { scope: issued.scopes.join(SCOPE_SEPARATOR) }),
    };
  }

  async function authenticateClient(
    request: IncomingMessage,
    form: URLSearchParams,
    source: string,
  ) {
    const presented = readClientCredentials(request.headers.authorization, form);
    if ('outcome' in presented) {
      const refusal = pick(presented);
      throw presented.reason === 'multiple_methods'
        ? new OAuthError('invalid_request', 400, 'use exactly one client authentication method', {
            refusal,
          })
        : invalidClient(refusal);
    }
    // Only guessable secrets of registered clients are counted: unknown ids are refused without
    // hashing, and a signature cannot be guessed, so locking out key holders would buy nothing.
    const counted = presented.method !== 'private_key_jwt' && agents.has(presented.clientId);
    let ticket: SecretAttemptTicket | undefined;
    if (counted) {
      const reservation = await limiter.reserve({ source, clientId: presented.clientId });
      if (reservation.outcome === 'limited') throw tooManyFailures(presented, reservation);
      ticket = reservation.ticket;
    }
    const result = await authenticator.authenticateClient(presented);
    if (result.outcome === 'refused') throw invalidClient(pick(result));
    if (ticket) await limiter.succeeded(ticket);
    return result;
  }

  return async (request, response, reference) => {
    const requestId = reference?.requestId;
    const source = reference?.source ?? request.socket.remoteAddress ?? 'unknown';
    // The reference an operator finds this exchange's audit record by, as on every error Warden sends.
    if (requestId !== undefined) response.setHeader('x-request-id', requestId);
    let body: Record<string, unknown>;
    try {
      body = await exchange(request, { requestId, source });
    } catch (error) {
      if (!(error instanceof OAuthError)) onError(error);
      else {
        // Every refusal is recorded; a malformed request names no client worth attributing.
        const refusal = error.refusal ?? {
          clientId: undefined,
          method: undefined,
          reason:
            error.error === 'unsupported_grant_type'
              ? 'unsupported_grant_type'
              : 'malformed_request',
        };
        onEvent({ kind: 'auth.failed', requestId, source, ...refusal, error: error.error });
      }
      writeOAuthError(response, error);
      return;
    }
    sendJson(response, 200, body, { 'cache-control': 'no-store', pragma: 'no-cache' });
  };
}

/** Serves the public keys of the issuer at GET /.well-known/jwks.json. */
export function createJwksHandler(
  keyring: SigningKeyring,
  options: { readonly onError?: (error: unknown) => void } = {},
): HttpHandler {
  return async (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      writeOAuthError(
        response,
        new OAuthError('invalid_request', 405, 'use GET', { headers: { allow: 'GET, HEAD' } }),
      );
      return;
    }
    try {
      // Verifiers refetch on an unknown kid, so a short cache lifetime costs nothing at rotation.
      sendJson(response, 200, await keyring.publicJwks(), {
        'cache-control': 'public, max-age=60',
      });
    } catch (error) {
      options.onError?.(error);
      writeOAuthError(response, error);
    }
  };
}

/** RFC 8414 authorization server metadata of the built-in issuer. */
export function describeAuthorizationServer(options: {
  readonly issuer: string;
  readonly tokenEndpointUrl: string;
  readonly jwksUri: string;
}): Record<string, unknown> {
  return {
    issuer: options.issuer,
    token_endpoint: options.tokenEndpointUrl,
    jwks_uri: options.jwksUri,
    grant_types_supported: ['client_credentials'],
    // Required by RFC 8414; empty because there is no authorization endpoint.
    response_types_supported: [],
    token_endpoint_auth_methods_supported: [...CLIENT_AUTHENTICATION_METHODS],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
  };
}

async function readFormBody(request: IncomingMessage, maxBytes: number): Promise<string> {
  try {
    return await readBody(request, maxBytes);
  } catch (error) {
    if (error instanceof WardenError && error.code === 'WARDEN_BODY_TOO_LARGE')
      throw new OAuthError('invalid_request', 413, 'the request body is too large', {
        headers: { connection: 'close' },
      });
    throw error;
  }
}

/** RFC 6749 §3.2: a parameter sent without a value is treated as if it were omitted. */
function readForm(body: string): URLSearchParams {
  return new URLSearchParams([...new URLSearchParams(body)].filter(([, value]) => value !== ''));
}

/** Refused without checking the secret: it is not guessed any further from here for now. */
function tooManyFailures(
  presented: { readonly clientId: string; readonly method: ClientAuthenticationMethod },
  limited: Extract<SecretAttemptReservation, { outcome: 'limited' }>,
): OAuthError {
  return new OAuthError(
    'temporarily_unavailable',
    429,
    'too many failed authentications; retry later',
    {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(limited.retryAfterMs / 1000))) },
      refusal: {
        clientId: presented.clientId,
        method: presented.method,
        reason: limited.limit === 'source' ? 'rate_limited' : 'client_rate_limited',
      },
    },
  );
}

function invalidClient(refusal: Refusal): OAuthError {
  // RFC 6749 §5.2: a client that tried Basic gets a Basic challenge.
  const headers: Record<string, string> =
    refusal.method === 'client_secret_basic' ? { 'www-authenticate': 'Basic realm="warden"' } : {};
  return new OAuthError('invalid_client', 401, 'client authentication failed', {
    headers,
    refusal,
  });
}

/**
 * RFC 8707: a token may be asked for this gateway, or for one of its endpoints
 * (`<resource>/<upstream>`, as the protected resource metadata advertises); one resource at most.
 * Returns the endpoint resource to narrow the audience to, if one was asked for.
 */
function checkResources(
  resources: readonly string[],
  own: string,
  requester: Requester,
): string | undefined {
  const refusal: Refusal = { ...requester, reason: 'resource_not_served' };
  if (resources.length > 1) {
    throw new OAuthError('invalid_target', 400, 'ask for one resource per token', { refusal });
  }
  const [requested] = resources;
  if (requested === undefined) return undefined;
  const normalized = normalizeResource(requested)?.replace(/\/$/, '');
  if (normalized === undefined || !isGatewayAudience(normalized, own)) {
    throw new OAuthError('invalid_target', 400, 'the requested resource is not served here', {
      refusal,
    });
  }
  return normalized === own ? undefined : normalized;
}

function normalizeResource(resource: string): string | undefined {
  if (!URL.canParse(resource) || resource.includes('#')) return undefined;
  return new URL(resource).href;
}

const SCOPE_DESCRIPTIONS = {
  scope_malformed: 'the requested scope is malformed',
  scope_not_allowed: 'a requested scope is not allowed for this client',
} as const;

/**
 * RFC 6749 §3.3: scope tokens separated by single spaces. Anything else (a tab, a no-break space,
 * two spaces, a leading space) is refused rather than repaired. Which scopes the client may have
 * is the issuer's to decide.
 */
function readScopes(scope: string | null, requester: Requester): string[] | undefined {
  if (scope === null || scope === '') return undefined;
  const scopes = scope.split(SCOPE_SEPARATOR);
  if (scopes.some((item) => item === ''))
    throw new OAuthError('invalid_scope', 400, SCOPE_DESCRIPTIONS.scope_malformed, {
      refusal: { ...requester, reason: 'scope_malformed' },
    });
  return scopes;
}

function scopeFailureOf(error: unknown): keyof typeof SCOPE_DESCRIPTIONS | undefined {
  if (!(error instanceof IssuerError)) return undefined;
  if (error.code === 'WARDEN_INVALID_SCOPE') return 'scope_malformed';
  if (error.code === 'WARDEN_SCOPE_NOT_ALLOWED') return 'scope_not_allowed';
  return undefined;
}

function pick(refusal: {
  readonly clientId: string | undefined;
  readonly method: ClientAuthenticationMethod | undefined;
  readonly reason: ClientAuthenticationFailure;
}): Refusal {
  return { clientId: refusal.clientId, method: refusal.method, reason: refusal.reason };
}

function writeOAuthError(response: ServerResponse, error: unknown): void {
  const known =
    error instanceof OAuthError
      ? error
      : new OAuthError('server_error', 500, 'the token endpoint failed unexpectedly');
  if (response.headersSent) {
    response.end();
    return;
  }
  sendJson(
    response,
    known.status,
    { error: known.error, error_description: known.message },
    { ...known.headers, 'cache-control': 'no-store', pragma: 'no-cache' },
  );
}
