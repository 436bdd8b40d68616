/**
 * The built-in issuer over HTTP: the OAuth 2.0 token endpoint (client_credentials grant only,
 * RFC 6749 §4.4), its JWKS, and its RFC 8414 metadata. Errors are RFC 6749 §5.2 JSON; they
 * never echo what the client sent or why exactly its credentials were refused.
 */
import { isGatewayAudience } from './jwt-verifier.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentConfig } from '../config/config.js';
import { WardenError } from '../domain/errors.js';
import { readBody } from '../mcp/read-body.js';
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
import type { SigningKeyring } from './signing-keys.js';

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

/** What the endpoint did, for the audit log (`token.issued`, `auth.failed`). */
export type TokenEndpointEvent =
  | {
      readonly kind: 'token.issued';
      readonly agent: string;
      readonly method: ClientAuthenticationMethod;
      readonly tokenId: string;
      readonly expiresAt: number;
      readonly scopes: readonly string[];
    }
  | {
      readonly kind: 'auth.failed';
      readonly clientId: string | undefined;
      readonly method: ClientAuthenticationMethod | undefined;
      readonly reason: ClientAuthenticationFailure | 'rate_limited' | 'agent_revoked';
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
  /** Wrong client secrets allowed per client id within the window; default 10 a minute. */
  readonly failureLimit?: { readonly maxFailures: number; readonly windowMs: number };
  readonly onEvent?: (event: TokenEndpointEvent) => void;
  /** Told about unexpected failures (store down, a bug); the client only sees server_error. */
  readonly onError?: (error: unknown) => void;
}

export type HttpHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';
// RFC 8707 lets `resource` repeat; every other parameter must not (RFC 6749 §3.2).
const REPEATABLE_PARAMETERS = new Set(['resource']);
const SCOPE_SEPARATOR = ' ';

/** An RFC 6749 §5.2 error response, with the HTTP status and headers it goes out with. */
class OAuthError extends Error {
  readonly error: OAuthErrorCode;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    error: OAuthErrorCode,
    status: number,
    description: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(description);
    this.name = 'OAuthError';
    this.error = error;
    this.status = status;
    this.headers = headers;
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
  });
  const limiter = createFailureLimiter({
    maxFailures: options.failureLimit?.maxFailures ?? 10,
    windowMs: options.failureLimit?.windowMs ?? 60_000,
    now,
  });

  async function exchange(request: IncomingMessage): Promise<Record<string, unknown>> {
    if (request.method !== 'POST')
      throw new OAuthError('invalid_request', 405, 'the token endpoint accepts POST only', {
        allow: 'POST',
      });
    const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType !== FORM_MEDIA_TYPE)
      throw new OAuthError('invalid_request', 400, `send the parameters as ${FORM_MEDIA_TYPE}`);
    const form = readForm(await readFormBody(request, maxBodyBytes));
    for (const name of new Set(form.keys()))
      if (!REPEATABLE_PARAMETERS.has(name) && form.getAll(name).length > 1)
        throw new OAuthError('invalid_request', 400, 'a parameter is repeated');

    const client = await authenticateClient(request, form);

    const grantType = form.get('grant_type');
    if (grantType === null) throw new OAuthError('invalid_request', 400, 'grant_type is missing');
    if (grantType !== 'client_credentials')
      throw new OAuthError(
        'unsupported_grant_type',
        400,
        'only the client_credentials grant is supported',
      );
    const resource = checkResources(form.getAll('resource'), issuer.resource);
    const scopes = readScopes(form.get('scope'));
    if (revocations?.isAgentRevoked(client.agent.id, now())) {
      onEvent({
        kind: 'auth.failed',
        clientId: client.agent.id,
        method: client.method,
        reason: 'agent_revoked',
      });
      throw new OAuthError('unauthorized_client', 400, 'this client may not obtain tokens');
    }

    let issued;
    try {
      issued = await issuer.issueToken({
        agent: client.agent,
        ...(scopes !== undefined && { scopes }),
        ...(resource !== undefined && { resource }),
      });
    } catch (error) {
      if (error instanceof IssuerError && error.code === 'WARDEN_INVALID_SCOPE')
        throw new OAuthError('invalid_scope', 400, 'the requested scope is invalid');
      throw error;
    }
    onEvent({
      kind: 'token.issued',
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

  async function authenticateClient(request: IncomingMessage, form: URLSearchParams) {
    const presented = readClientCredentials(request.headers.authorization, form);
    if ('outcome' in presented) {
      onEvent({ kind: 'auth.failed', ...pick(presented) });
      if (presented.reason === 'multiple_methods')
        throw new OAuthError(
          'invalid_request',
          400,
          'use exactly one client authentication method',
        );
      throw invalidClient(presented.method);
    }
    // Only guessable secrets of registered clients are counted: unknown ids are refused without
    // hashing, and a signature cannot be guessed, so locking out key holders would buy nothing.
    const counted = presented.method !== 'private_key_jwt' && agents.has(presented.clientId);
    if (counted) {
      const retryAfterMs = limiter.reserve(presented.clientId);
      if (retryAfterMs !== undefined) {
        onEvent({
          kind: 'auth.failed',
          clientId: presented.clientId,
          method: presented.method,
          reason: 'rate_limited',
        });
        throw new OAuthError(
          'temporarily_unavailable',
          429,
          'too many failed authentications for this client; retry later',
          { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
        );
      }
    }
    const result = await authenticator.authenticateClient(presented);
    if (result.outcome === 'refused') {
      onEvent({ kind: 'auth.failed', ...pick(result) });
      throw invalidClient(result.method);
    }
    if (counted) limiter.clear(presented.clientId);
    return result;
  }

  return async (request, response) => {
    let body: Record<string, unknown>;
    try {
      body = await exchange(request);
    } catch (error) {
      if (!(error instanceof OAuthError)) onError(error);
      writeOAuthError(response, error);
      return;
    }
    writeJson(response, 200, body, { 'cache-control': 'no-store', pragma: 'no-cache' });
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
        new OAuthError('invalid_request', 405, 'use GET', { allow: 'GET, HEAD' }),
      );
      return;
    }
    try {
      // Verifiers refetch on an unknown kid, so a short cache lifetime costs nothing at rotation.
      writeJson(response, 200, await keyring.publicJwks(), {
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
        connection: 'close',
      });
    throw error;
  }
}

/** RFC 6749 §3.2: a parameter sent without a value is treated as if it were omitted. */
function readForm(body: string): URLSearchParams {
  return new URLSearchParams([...new URLSearchParams(body)].filter(([, value]) => value !== ''));
}

function invalidClient(method: ClientAuthenticationMethod | undefined): OAuthError {
  // RFC 6749 §5.2: a client that tried Basic gets a Basic challenge.
  const headers: Record<string, string> =
    method === 'client_secret_basic' ? { 'www-authenticate': 'Basic realm="warden"' } : {};
  return new OAuthError('invalid_client', 401, 'client authentication failed', headers);
}

/**
 * RFC 8707: a token may be asked for this gateway, or for one of its endpoints
 * (`<resource>/<upstream>`, as the protected resource metadata advertises); one resource at most.
 * Returns the endpoint resource to narrow the audience to, if one was asked for.
 */
function checkResources(resources: readonly string[], own: string): string | undefined {
  if (resources.length > 1) {
    throw new OAuthError('invalid_target', 400, 'ask for one resource per token');
  }
  const [requested] = resources;
  if (requested === undefined) return undefined;
  const normalized = normalizeResource(requested)?.replace(/\/$/, '');
  if (normalized === undefined || !isGatewayAudience(normalized, own)) {
    throw new OAuthError('invalid_target', 400, 'the requested resource is not served here');
  }
  return normalized === own ? undefined : normalized;
}

function normalizeResource(resource: string): string | undefined {
  if (!URL.canParse(resource) || resource.includes('#')) return undefined;
  return new URL(resource).href;
}

function readScopes(scope: string | null): string[] | undefined {
  if (scope === null || scope === '') return undefined;
  const scopes = scope.split(SCOPE_SEPARATOR);
  if (scopes.some((item) => item === ''))
    throw new OAuthError('invalid_scope', 400, 'the requested scope is invalid');
  return scopes;
}

function pick(refusal: {
  readonly clientId: string | undefined;
  readonly method: ClientAuthenticationMethod | undefined;
  readonly reason: ClientAuthenticationFailure;
}): Omit<Extract<TokenEndpointEvent, { kind: 'auth.failed' }>, 'kind'> {
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
  writeJson(
    response,
    known.status,
    { error: known.error, error_description: known.message },
    { ...known.headers, 'cache-control': 'no-store', pragma: 'no-cache' },
  );
}

function writeJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>>,
): void {
  const text = JSON.stringify(body);
  response
    .writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    })
    .end(text);
}

/**
 * Counts failed authentications per client in a sliding window. A slot is reserved before each
 * attempt and released on success, so parallel guesses cannot all start before one has failed.
 */
function createFailureLimiter(options: {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly now: () => number;
}) {
  const failures = new Map<string, number[]>();
  return {
    /** Reserves an attempt; returns how long to wait instead when the client is locked out. */
    reserve(clientId: string): number | undefined {
      const at = options.now();
      const recent = (failures.get(clientId) ?? []).filter((t) => t > at - options.windowMs);
      const oldest = recent[0];
      if (oldest !== undefined && recent.length >= options.maxFailures) {
        failures.set(clientId, recent);
        return oldest + options.windowMs - at;
      }
      recent.push(at);
      failures.set(clientId, recent);
      return undefined;
    },
    /** A success ends the count: the client knows its credentials. */
    clear(clientId: string): void {
      failures.delete(clientId);
    },
  };
}
