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
import type { BuiltinIssuer, IssueTokenRequest } from './builtin-issuer.js';
import {
  authenticateClientByCertificate,
  readPresentedCertificate,
  type PresentedCertificate,
} from './certificate-client-authentication.js';
import {
  CERTIFICATE_AUTHENTICATION_METHODS,
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
import type { BuiltinUserConfig } from '../config/login-schema.js';
import { JWT_BEARER_GRANT_TYPE } from './id-jag.js';
import type { IdJagFailure, IdJagVerifier, VerifiedIdJag } from './id-jag.js';
import { personFromIdJag } from './id-jag-person.js';
import { actingRoles } from './login/person.js';

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
  /** A requested scope is beyond those the enterprise IdP's assertion grants. */
  | 'scope_not_granted'
  | 'resource_not_served'
  /** The request itself was malformed (method, media type, size, repeated or missing fields). */
  | 'malformed_request'
  /** A grant type not offered here (jwt-bearer is offered only with an enterprise IdP). */
  | 'unsupported_grant_type'
  /** The enterprise IdP's ID-JAG (jwt-bearer grant) was refused; see IdJagFailure. */
  | IdJagFailure;

/** The grants the endpoint issues tokens for. */
export type TokenGrantType = 'client_credentials' | typeof JWT_BEARER_GRANT_TYPE;

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
      readonly grant: TokenGrantType;
      /** The person the token acts for (an ID-JAG's), absent for an agent acting as itself. */
      readonly user?: string;
      /** The enterprise IdP that vouched for the person. */
      readonly idp?: string;
      /** The roles the agent acts with for the person (both hold them). */
      readonly roles?: readonly string[];
      /** The `x5t#S256` of the client certificate the token is bound to (RFC 8705 §3). */
      readonly boundCertificate: string | undefined;
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
      /** The configured enterprise IdP whose signed assertion was refused, if it came to that. */
      readonly idp?: string;
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
  /**
   * Enterprise-managed authorization: ID-JAGs from these IdPs are accepted through the
   * jwt-bearer grant. Absent: that grant is unsupported.
   */
  readonly enterprise?: {
    readonly verifier: IdJagVerifier;
    /** Built-in users: one with the person's id adds its configured roles. */
    readonly builtinUsers: ReadonlyMap<string, BuiltinUserConfig> | undefined;
    /** `auth.requiredScopes`: with the agent's own scopes, all a token for it may carry. */
    readonly requiredScopes: readonly string[];
  };
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

/** What a grant asks the issuer for, besides the agent and its certificate. */
interface Grant {
  readonly type: TokenGrantType;
  readonly issue: Omit<IssueTokenRequest, 'agent' | 'certificateThumbprint'>;
  /** The person it is for (an ID-JAG's), and the IdP that vouched for them. */
  readonly person: { readonly id: string; readonly idp: string } | undefined;
}

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

    const grant = await readGrant(form, client.agent, requester);

    let issued;
    try {
      issued = await issuer.issueToken({
        agent: client.agent,
        ...(client.boundCertificate !== undefined && {
          certificateThumbprint: client.boundCertificate,
        }),
        ...grant.issue,
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
      grant: grant.type,
      ...(grant.person && { user: grant.person.id, idp: grant.person.idp }),
      ...(grant.issue.app && { roles: grant.issue.app.roles }),
      boundCertificate: client.boundCertificate,
    });
    return {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: Math.round((issued.expiresAt - issued.issuedAt) / 1000),
      ...(issued.scopes.length > 0 && { scope: issued.scopes.join(SCOPE_SEPARATOR) }),
    };
  }

  /** What the grant asks for: a token for the agent itself, or (an ID-JAG) for a person. */
  async function readGrant(
    form: URLSearchParams,
    agent: AgentConfig,
    requester: Requester,
  ): Promise<Grant> {
    const grantType = form.get('grant_type');
    if (grantType === null) throw new OAuthError('invalid_request', 400, 'grant_type is missing');
    if (grantType === 'client_credentials') {
      const resource = checkResources(form.getAll('resource'), issuer.resource, requester);
      const scopes = readScopes(form.get('scope'), requester);
      return {
        type: grantType,
        issue: {
          ...(scopes !== undefined && { scopes }),
          ...(resource !== undefined && { resource }),
        },
        person: undefined,
      };
    }
    if (grantType === JWT_BEARER_GRANT_TYPE && options.enterprise)
      return readIdJagGrant(form, agent, requester, options.enterprise);
    throw new OAuthError('unsupported_grant_type', 400, 'this grant type is not supported');
  }

  /**
   * RFC 7523 §2.1 with an ID-JAG (SEP-990): a token for the person the enterprise IdP names, for
   * this agent to act for them with the roles both hold.
   */
  async function readIdJagGrant(
    form: URLSearchParams,
    agent: AgentConfig,
    requester: Requester,
    enterprise: NonNullable<TokenEndpointOptions['enterprise']>,
  ): Promise<Grant> {
    const assertion = form.get('assertion');
    if (assertion === null)
      throw new OAuthError('invalid_request', 400, 'assertion is missing', {
        refusal: { ...requester, reason: 'malformed_request' },
      });
    const verification = await enterprise.verifier.verify(assertion, agent.id);
    if (verification.outcome === 'refused') {
      const refusal: Refusal = {
        ...requester,
        reason: verification.reason,
        ...(verification.idp !== undefined && { idp: verification.idp }),
      };
      // The IdP's outage is not the client's fault: a fresh assertion would fail the same way.
      if (verification.reason === 'id_jag_keys_unavailable')
        throw new OAuthError('temporarily_unavailable', 503, 'retry later', {
          headers: { 'retry-after': '30' },
          refusal,
        });
      // One answer for every refusal: what exactly was wrong is for the audit log only.
      throw new OAuthError('invalid_grant', 400, 'the assertion was not accepted', { refusal });
    }
    const { grant } = verification;
    const asIdp: Requester = { ...requester, idp: grant.idp.issuer };
    const resource = chooseIdJagResource(form.getAll('resource'), grant, issuer.resource, asIdp);
    const scopes = chooseIdJagScopes(
      readScopes(form.get('scope'), asIdp),
      grant,
      allowedScopes(enterprise.requiredScopes, agent),
      asIdp,
    );
    const person = personFromIdJag(grant, enterprise.builtinUsers);
    return {
      type: JWT_BEARER_GRANT_TYPE,
      issue: {
        user: person.id,
        app: { clientId: agent.id, roles: actingRoles(person.roles, agent.roles) },
        ...(scopes !== undefined && { scopes }),
        ...(resource !== undefined && { resource }),
      },
      person: { id: person.id, idp: grant.idp.issuer },
    };
  }

  /** The client, and the certificate its tokens are bound to: any it authenticated with. */
  async function authenticateClient(
    request: IncomingMessage,
    form: URLSearchParams,
    source: string,
  ) {
    const certificate = readPresentedCertificate(request.socket);
    const client = await authenticateWithCredentials(request, form, source, certificate);
    return { ...client, boundCertificate: bindingOf(client, certificate) };
  }

  async function authenticateWithCredentials(
    request: IncomingMessage,
    form: URLSearchParams,
    source: string,
    certificate: PresentedCertificate | undefined,
  ) {
    const presented = readClientCredentials(request.headers.authorization, form);
    if ('outcome' in presented) {
      // RFC 8705 §2: a client_id alone, over a connection with a certificate.
      if (presented.reason === 'no_credentials' && presented.clientId !== undefined && certificate)
        return authenticateWithCertificate(presented.clientId, certificate);
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

  async function authenticateWithCertificate(clientId: string, certificate: PresentedCertificate) {
    const agent = agents.get(clientId);
    if (!agent)
      throw invalidClient({ clientId, method: 'tls_client_auth', reason: 'unknown_client' });
    // A certificate cannot be guessed: like a signature, it is not counted against the limiter.
    const result = await authenticateClientByCertificate(agent, certificate, agents);
    if (result.outcome === 'refused') throw invalidClient(pick(result));
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
  /** The listener asks clients for a certificate (`listen.tls.client_ca`): RFC 8705 applies. */
  readonly clientCertificates?: boolean;
  /** People log in (`auth.login`): the authorization server's endpoints and what it supports. */
  readonly login?: {
    readonly authorizationEndpoint: string;
    /** Undefined when Dynamic Client Registration is switched off. */
    readonly registrationEndpoint: string | undefined;
    readonly revocationEndpoint: string;
    readonly clientIdMetadataDocumentSupported: boolean;
    readonly scopes: readonly string[];
  };
}): Record<string, unknown> {
  const login = options.login;
  return {
    issuer: options.issuer,
    token_endpoint: options.tokenEndpointUrl,
    jwks_uri: options.jwksUri,
    grant_types_supported: [
      'client_credentials',
      ...(login ? ['authorization_code', 'refresh_token'] : []),
    ],
    // Required by RFC 8414; empty when there is no authorization endpoint.
    response_types_supported: login ? ['code'] : [],
    ...(login && {
      authorization_endpoint: login.authorizationEndpoint,
      ...(login.registrationEndpoint !== undefined && {
        registration_endpoint: login.registrationEndpoint,
      }),
      revocation_endpoint: login.revocationEndpoint,
      response_modes_supported: ['query'],
      // PKCE is required of every client, with S256 only (plain is refused).
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['offline_access', ...login.scopes],
      client_id_metadata_document_supported: login.clientIdMetadataDocumentSupported,
      // RFC 9207: authorization responses carry `iss`, so a client can tell servers apart.
      authorization_response_iss_parameter_supported: true,
    }),
    token_endpoint_auth_methods_supported: [
      ...CLIENT_AUTHENTICATION_METHODS,
      ...(login ? ['none'] : []),
      ...(options.clientCertificates === true ? CERTIFICATE_AUTHENTICATION_METHODS : []),
    ],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    ...(options.clientCertificates === true && {
      tls_client_certificate_bound_access_tokens: true,
    }),
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
 * RFC 8705 §3: the certificate a client presents binds its token. One the client authenticated
 * with binds as is; otherwise only one the listener verified. An unverified certificate beside a
 * secret or an assertion is refused rather than ignored: the client would take an unbound token
 * for a bound one, and Warden's endpoints would not accept that certificate for the binding.
 */
function bindingOf(
  client: { readonly agent: AgentConfig; readonly method: ClientAuthenticationMethod },
  certificate: PresentedCertificate | undefined,
): string | undefined {
  if (certificate === undefined) return undefined;
  const certificateMethod = CERTIFICATE_AUTHENTICATION_METHODS.includes(client.method);
  if (certificate.verified || certificateMethod) return certificate.description.thumbprint;
  throw invalidClient({
    clientId: client.agent.id,
    method: client.method,
    reason: 'certificate_untrusted',
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
 * The resource a token from an ID-JAG is for. Every resource the assertion names must be served
 * here; a requested one must be among them, or an endpoint of the gateway when the assertion
 * names the gateway itself. Returns the endpoint to narrow the audience to, if any.
 */
function chooseIdJagResource(
  requested: readonly string[],
  grant: VerifiedIdJag,
  own: string,
  requester: Requester,
): string | undefined {
  const granted = grant.resources.map((resource) => checkResources([resource], own, requester));
  const asked = checkResources(requested, own, requester);
  const refusal: Refusal = { ...requester, reason: 'resource_not_served' };
  if (requested.length > 0) {
    const coveredBy = (resource: string | undefined) =>
      resource === undefined || resource === asked;
    if (granted.length > 0 && !granted.some(coveredBy))
      throw new OAuthError('invalid_target', 400, 'the requested resource is not granted', {
        refusal,
      });
    return asked;
  }
  // Nothing asked: the whole gateway if granted (or nothing named), else the one endpoint named.
  if (granted.length === 0 || granted.includes(undefined)) return undefined;
  if (granted.length === 1) return granted[0];
  throw new OAuthError('invalid_target', 400, 'ask for one resource per token', { refusal });
}

/**
 * RFC 6749 §3.3 for an ID-JAG: requested scopes must be among those the assertion grants;
 * without a request, the granted scopes are narrowed to those the agent may hold (the issuer
 * still refuses a requested scope the agent may not hold).
 */
function chooseIdJagScopes(
  requested: readonly string[] | undefined,
  grant: VerifiedIdJag,
  allowed: ReadonlySet<string>,
  requester: Requester,
): readonly string[] | undefined {
  const granted = grant.scopes;
  if (requested !== undefined) {
    if (granted !== undefined && requested.some((scope) => !granted.includes(scope)))
      throw new OAuthError('invalid_scope', 400, 'a requested scope is not granted', {
        refusal: { ...requester, reason: 'scope_not_granted' },
      });
    return requested;
  }
  if (granted === undefined) return undefined;
  const narrowed = granted.filter((scope) => allowed.has(scope));
  if (narrowed.length === 0)
    throw new OAuthError('invalid_scope', 400, SCOPE_DESCRIPTIONS.scope_not_allowed, {
      refusal: { ...requester, reason: 'scope_not_allowed' },
    });
  return narrowed;
}

function allowedScopes(requiredScopes: readonly string[], agent: AgentConfig): ReadonlySet<string> {
  return new Set([...requiredScopes, ...(agent.scopes ?? [])]);
}

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
