/**
 * Authentication, stage 1 of the pipeline: every request to an MCP endpoint proves who calls,
 * with a bearer token (verified, scoped, bound, not revoked) or a registered client certificate.
 * The result is one Identity; anything else is refused with a specific error and challenge.
 */
import type { X509Certificate } from 'node:crypto';
import type { AgentConfig, AuthConfig } from '../config/config.js';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import { AGENT_CLAIM } from './builtin-issuer.js';
import { checkCertificateBinding } from './certificate-binding.js';
import { selfSignedThumbprint } from './certificate-client-authentication.js';
import {
  matchAgentByCertificate,
  type ClientCertificateDescription,
} from './client-certificate.js';
import { requireScopes, type JwtVerifier, type VerifiedToken } from './jwt-verifier.js';
import { endpointResource } from './protected-resource-metadata.js';
import type { RevocationList } from './revocation-list.js';
import { TokenRejectedError } from './token-rejected-error.js';

export interface AuthenticationInput {
  /** The Authorization header(s) as received. */
  readonly authorization: string | readonly string[] | undefined;
  /** The request target (path and query), to refuse tokens sent in the URL. */
  readonly url: string;
  /**
   * The upstream endpoint being called; a token for another endpoint is refused. Undefined for
   * the gateway's own API, which accepts only gateway-wide tokens.
   */
  readonly upstream: string | undefined;
  /** The client certificate, only when the TLS layer verified it against the client CA. */
  readonly clientCertificate: ClientCertificateDescription | undefined;
  /**
   * Why the certificate the client presented does not count (untrusted CA, expired, revoked,
   * outside its CA's trust domains): a caller with nothing else is refused with this reason.
   */
  readonly clientCertificateRefusal?:
    | {
        readonly reason: string;
        readonly detail: string;
        readonly fingerprint: string | undefined;
      }
    | undefined;
  /**
   * A certificate the client presented that the listener did not verify: it satisfies a bound
   * token only when its key is one the token's agent registered (`self_signed_tls_client_auth`).
   */
  readonly unverifiedCertificate?: X509Certificate | undefined;
  /** The model the client declares (header), recorded as declared. */
  readonly declaredModel: string | undefined;
}

export interface RequestAuthenticator {
  authenticate(input: AuthenticationInput): Promise<Identity>;
}

export interface RequestAuthenticatorOptions {
  readonly auth: AuthConfig;
  readonly environment: string;
  readonly agents: ReadonlyMap<string, AgentConfig>;
  readonly verifier: JwtVerifier;
  readonly revocations: RevocationList;
  /** The built-in issuer's `iss`: its tokens name agents by id directly. */
  readonly builtinIssuer: string | undefined;
}

/** Query parameters that carry credentials (RFC 6750 §2.3 and common variants). */
const QUERY_CREDENTIALS = ['access_token', 'token', 'id_token', 'api_key'];
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
/** The auth-scheme of an Authorization header (RFC 9110 §11.4): a token, then space or the end. */
const AUTH_SCHEME = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s|$)/;

export function createRequestAuthenticator(
  options: RequestAuthenticatorOptions,
): RequestAuthenticator {
  const { auth, agents } = options;

  async function authenticateToken(token: string, input: AuthenticationInput): Promise<Identity> {
    const verified = await verifyOrRefuse(options.verifier, token);
    const endpoint =
      input.upstream === undefined ? auth.resource : endpointResource(auth, input.upstream);
    if (
      !verified.audience.some((audience) => audience === auth.resource || audience === endpoint)
    ) {
      throw invalidToken(
        'audience_mismatch',
        'The access token is for another endpoint of this gateway.',
      );
    }
    try {
      requireScopes(verified, auth.requiredScopes);
    } catch (error) {
      throw toWardenError(error);
    }
    const agent =
      verified.issuer === options.builtinIssuer
        ? agents.get(builtinAgentOf(verified))
        : findAgentByClientId(agents, verified.agentClaimValue);
    if (!agent)
      throw invalidToken(
        'agent_unknown',
        'The token names a client that is not a registered agent.',
      );
    checkCertificateBinding(
      verified.certificateThumbprint,
      input.clientCertificate?.thumbprint ??
        (verified.certificateThumbprint === undefined
          ? undefined
          : await selfSignedThumbprint(agent, input.unverifiedCertificate)),
    );
    // client_credentials tokens name the client as their subject: there is no human then.
    const user = verified.subject === verified.agentClaimValue ? undefined : verified.subject;
    const revoked = options.revocations.find({
      tokenId: verified.tokenId,
      agent: agent.id,
      user,
      issuedAt: verified.issuedAt,
    });
    if (revoked) throw invalidToken('revoked', 'The access token has been revoked.');
    if (
      agent.tenant !== undefined &&
      verified.tenant !== undefined &&
      verified.tenant !== agent.tenant
    ) {
      throw invalidToken(
        'tenant_mismatch',
        'The access token names another tenant than its agent.',
      );
    }
    return Object.freeze({
      user,
      delegation: verified.actChain,
      agent: agent.id,
      roles: narrowRoles(agent.roles, verified.rolesClaim),
      environment: options.environment,
      tenant: agent.tenant ?? verified.tenant,
      declaredModel: input.declaredModel,
      credential: {
        kind: 'jwt' as const,
        issuer: verified.issuer,
        tokenId: verified.tokenId,
        issuedAt: verified.issuedAt,
        expiresAt: verified.expiresAt,
        scopes: verified.scopes,
        boundCertificate: verified.certificateThumbprint,
      },
    });
  }

  function authenticateCertificate(
    certificate: ClientCertificateDescription,
    input: AuthenticationInput,
  ): Identity {
    const agent = matchAgentByCertificate(certificate, agents);
    if (!agent) {
      throw new WardenError(
        'WARDEN_UNAUTHENTICATED',
        'The client certificate does not belong to a registered agent.',
        {
          details: { reason: 'certificate_unregistered' },
        },
      );
    }
    // A certificate has no issue time we track: an agent revocation blocks it until the agent
    // is re-enrolled (the revocation expires or the certificate is replaced and the entry lifted).
    if (
      options.revocations.find({
        tokenId: undefined,
        agent: agent.id,
        user: undefined,
        issuedAt: undefined,
      })
    ) {
      throw new WardenError('WARDEN_UNAUTHENTICATED', 'This agent has been revoked.', {
        details: { reason: 'revoked' },
      });
    }
    return Object.freeze({
      user: undefined,
      delegation: [],
      agent: agent.id,
      roles: agent.roles,
      environment: options.environment,
      tenant: agent.tenant,
      declaredModel: input.declaredModel,
      credential: {
        kind: 'mtls' as const,
        subject: certificate.spiffeId ?? certificate.subjectCommonName ?? '',
        fingerprint: certificate.thumbprint,
        expiresAt: certificate.notAfter,
      },
    });
  }

  return {
    async authenticate(input) {
      refuseQueryCredentials(input.url);
      const token = readBearerToken(input.authorization);
      if (token !== undefined) return authenticateToken(token, input);
      if (auth.mtls && input.clientCertificate)
        return authenticateCertificate(input.clientCertificate, input);
      const refused = input.clientCertificateRefusal;
      throw new WardenError(
        'WARDEN_UNAUTHENTICATED',
        refused === undefined ? undefined : 'The client certificate was not accepted.',
        refused === undefined ? undefined : { details: { reason: refused.reason } },
      );
    },
  };
}

/**
 * The agent a built-in token names: `warden_agent` when an app acts for a person (its
 * `client_id` is the app's), else `client_id`. The claim is trusted only because the built-in
 * issuer signed it; external issuers' tokens are matched by client id alone.
 */
function builtinAgentOf(verified: VerifiedToken): string {
  const agent = verified.claims[AGENT_CLAIM];
  return typeof agent === 'string' ? agent : verified.agentClaimValue;
}

/** The bearer token of the one Authorization header, if there is one. */
export function readBearerToken(
  authorization: string | readonly string[] | undefined,
): string | undefined {
  if (authorization === undefined) return undefined;
  if (typeof authorization !== 'string') {
    if (authorization.length !== 1) {
      throw new WardenError(
        'WARDEN_INVALID_AUTH_REQUEST',
        'Send exactly one Authorization header.',
      );
    }
    return readBearerToken(authorization[0]);
  }
  const credentials = authorization.trim();
  const scheme = AUTH_SCHEME.exec(credentials)?.[1];
  // RFC 6750 §3.1: a client using another scheme (Basic, Digest, …) is one unaware that a bearer
  // token is needed. It gets 401 and the bare challenge, which leads it to the metadata and its
  // authorization server, as a request without credentials does.
  if (scheme !== undefined && scheme.toLowerCase() !== 'bearer') {
    throw new WardenError('WARDEN_UNAUTHENTICATED', undefined, {
      details: { reason: 'unsupported_scheme' },
    });
  }
  const match = BEARER.exec(credentials);
  if (!match) {
    throw new WardenError(
      'WARDEN_INVALID_AUTH_REQUEST',
      'The Authorization header must be "Bearer <token>".',
    );
  }
  return match[1];
}

function refuseQueryCredentials(url: string): void {
  const query = url.indexOf('?');
  if (query === -1) return;
  const params = new URLSearchParams(url.slice(query + 1));
  for (const name of params.keys()) {
    if (QUERY_CREDENTIALS.includes(name.toLowerCase())) {
      throw new WardenError(
        'WARDEN_INVALID_AUTH_REQUEST',
        'Tokens are never accepted in the URL, where logs and proxies keep them; use the Authorization header.',
        { details: { reason: 'token_in_query' } },
      );
    }
  }
}

async function verifyOrRefuse(verifier: JwtVerifier, token: string): Promise<VerifiedToken> {
  try {
    return await verifier.verify(token);
  } catch (error) {
    throw toWardenError(error);
  }
}

function toWardenError(error: unknown): WardenError {
  if (error instanceof WardenError) return error;
  if (error instanceof TokenRejectedError) {
    if (error.reason === 'jwks_unavailable') {
      return new WardenError('WARDEN_ISSUER_UNAVAILABLE', error.message, {
        details: { reason: error.reason },
      });
    }
    if (error.oauthError === 'insufficient_scope') {
      return new WardenError('WARDEN_INSUFFICIENT_SCOPE', error.message, {
        details: { reason: error.reason },
      });
    }
    return new WardenError('WARDEN_INVALID_TOKEN', error.message, {
      details: { reason: error.reason },
    });
  }
  return new WardenError('WARDEN_INVALID_TOKEN', undefined, {
    cause: error,
    details: { reason: 'unverifiable' },
  });
}

function invalidToken(reason: string, message: string): WardenError {
  return new WardenError('WARDEN_INVALID_TOKEN', message, { details: { reason } });
}

/** A token may narrow the registry's roles, never add one. */
function narrowRoles(
  registered: readonly string[],
  claimed: readonly string[] | undefined,
): readonly string[] {
  if (claimed === undefined) return registered;
  return registered.filter((role) => claimed.includes(role));
}

/**
 * External issuers name agents by their client ids there (`agents.<id>.client_ids`, unique
 * across agents). Looked up at each request, never indexed once: a reload may change the agents.
 */
function findAgentByClientId(
  agents: ReadonlyMap<string, AgentConfig>,
  clientId: string,
): AgentConfig | undefined {
  for (const agent of agents.values()) if (agent.clientIds.includes(clientId)) return agent;
  return undefined;
}
