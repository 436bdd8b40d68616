/**
 * Wires the identity pieces for one gateway: the built-in issuer (keys in the store), the JWT
 * verifier, the revocation list, the request authenticator, and the public OAuth routes
 * (protected resource metadata, JWKS, authorization server metadata, token endpoint).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/config.js';
import { WardenError } from '../domain/errors.js';
import {
  createRequestAuthenticator,
  type RequestAuthenticator,
} from '../identity/authenticate-request.js';
import {
  createBuiltinIssuer,
  createBuiltinKeyring,
  findBuiltinIssuerConfig,
  type BuiltinIssuer,
} from '../identity/builtin-issuer.js';
import { createJwtVerifier } from '../identity/jwt-verifier.js';
import {
  describeProtectedResource,
  endpointResource,
  metadataUrlFor,
  resolveMetadataPath,
} from '../identity/protected-resource-metadata.js';
import { loadRevocationList, type RevocationList } from '../identity/revocation-list.js';
import type { AuditEntry } from '../domain/audit-record.js';
import {
  type TokenEndpointEvent,
  BUILTIN_ISSUER_PATHS,
  createJwksHandler,
  createTokenEndpoint,
  describeAuthorizationServer,
} from '../identity/token-endpoint.js';
import { formatChallenge } from '../identity/www-authenticate.js';
import type { Store } from '../store/types.js';
import type { RouteHandler } from './http-server.js';
import type { Logger } from './logger.js';

export interface GatewayAuthentication {
  readonly authenticator: RequestAuthenticator;
  readonly revocations: RevocationList;
  /** The built-in issuer, when configured (the demo and tests mint tokens with it). */
  readonly issuer: BuiltinIssuer | undefined;
  /** Public routes by exact path, plus the metadata paths. */
  route(path: string): RouteHandler | undefined;
  /** The WWW-Authenticate value for an error refusing a call to `upstream`, if it needs one. */
  challenge(error: unknown, upstream: string): string | undefined;
  close(): Promise<void>;
}

const CHALLENGED = new Set([
  'WARDEN_UNAUTHENTICATED',
  'WARDEN_INVALID_TOKEN',
  'WARDEN_INSUFFICIENT_SCOPE',
  'WARDEN_CERTIFICATE_REQUIRED',
  'WARDEN_INVALID_AUTH_REQUEST',
]);

export async function setUpAuthentication(
  config: Config,
  store: Store,
  logger: Logger,
  note: (entry: Omit<AuditEntry, 'time'>) => void,
): Promise<GatewayAuthentication> {
  const { auth, agents, environment } = config;
  const revocations = await loadRevocationList(store.revocations);
  const builtinConfig = findBuiltinIssuerConfig(auth);
  const keyring =
    builtinConfig &&
    createBuiltinKeyring({
      repository: store.signingKeys,
      config: builtinConfig,
      auth,
      onRotated: ({ kid, scheduled }) =>
        note({
          event: 'key.rotated',
          environment,
          details: { kid, scheduled, issuer: builtinConfig.kind },
        }),
    });
  const issuer =
    builtinConfig && keyring
      ? createBuiltinIssuer({ config: builtinConfig, auth, environment, agents, keyring })
      : undefined;
  const verifier = createJwtVerifier({
    auth,
    environment,
    issuers: auth.issuers.filter((candidate) => candidate.kind === 'external'),
    builtinIssuer: issuer?.issuer,
    localKeys: keyring ? () => keyring.publicJwks() : undefined,
  });
  const authenticator = createRequestAuthenticator({
    auth,
    environment,
    agents,
    verifier,
    revocations,
    builtinIssuer: issuer?.issuer,
  });

  const routes = new Map<string, RouteHandler>();
  if (issuer && keyring) {
    // Create the first key now, so the first token request does not pay for it.
    await keyring.currentKey();
    const tokenEndpointUrl = `${issuer.issuer}${BUILTIN_ISSUER_PATHS.token}`;
    const jwksUri = `${issuer.issuer}${BUILTIN_ISSUER_PATHS.jwks}`;
    routes.set(
      BUILTIN_ISSUER_PATHS.token,
      createTokenEndpoint({
        issuer,
        agents,
        tokenEndpointUrl,
        revocations,
        onError: (error) => logger.error({ err: error }, 'token endpoint failed'),
        onEvent: (event) => note(describeTokenEvent(event, environment)),
      }),
    );
    routes.set(
      BUILTIN_ISSUER_PATHS.jwks,
      createJwksHandler(keyring, {
        onError: (error) => logger.error({ err: error }, 'jwks failed'),
      }),
    );
    const serverMetadata = describeAuthorizationServer({
      issuer: issuer.issuer,
      tokenEndpointUrl,
      jwksUri,
    });
    routes.set(
      BUILTIN_ISSUER_PATHS.metadata,
      serveJson(() => serverMetadata),
    );
  }
  const upstreams = new Set(config.upstreams.keys());
  const mtls = config.listen.tls?.clientCa !== undefined;

  return {
    authenticator,
    revocations,
    issuer,
    route(path) {
      const exact = routes.get(path);
      if (exact) return exact;
      const resource = resolveMetadataPath(auth, path, upstreams);
      if (resource === undefined) return undefined;
      return serveJson(() => describeProtectedResource(auth, resource, { mtls }));
    },
    challenge(error, upstream) {
      if (!(error instanceof WardenError) || !CHALLENGED.has(error.code)) return undefined;
      const resourceMetadataUrl = metadataUrlFor(endpointResource(auth, upstream));
      if (error.code === 'WARDEN_UNAUTHENTICATED') return formatChallenge({ resourceMetadataUrl });
      if (error.code === 'WARDEN_INSUFFICIENT_SCOPE') {
        return formatChallenge({
          resourceMetadataUrl,
          error: 'insufficient_scope',
          scope: auth.requiredScopes,
          description: error.message,
        });
      }
      if (error.code === 'WARDEN_INVALID_AUTH_REQUEST') {
        return formatChallenge({
          resourceMetadataUrl,
          error: 'invalid_request',
          description: error.message,
        });
      }
      return formatChallenge({
        resourceMetadataUrl,
        error: 'invalid_token',
        description: error.message,
      });
    },
    close: () => revocations.close(),
  };
}

/** The token endpoint's events, as audit entries: who got a token, who was turned away. */
function describeTokenEvent(
  event: TokenEndpointEvent,
  environment: string,
): Omit<AuditEntry, 'time'> {
  if (event.kind === 'token.issued') {
    return {
      event: 'token.issued',
      environment,
      agent: event.agent,
      details: {
        tokenId: event.tokenId,
        method: event.method,
        scopes: event.scopes,
        expiresAt: new Date(event.expiresAt).toISOString(),
      },
    };
  }
  return {
    event: 'auth.failed',
    environment,
    ...(event.clientId !== undefined && { agent: event.clientId }),
    errorCode: 'OAUTH_INVALID_CLIENT',
    details: { endpoint: 'token', method: event.method ?? null, reason: event.reason },
  };
}

function serveJson(body: () => Record<string, unknown>): RouteHandler {
  return (request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      throw new WardenError('WARDEN_METHOD_NOT_ALLOWED', undefined, {
        details: { allow: 'GET, HEAD' },
      });
    }
    const text = JSON.stringify(body());
    response
      .writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        'cache-control': 'public, max-age=300',
      })
      .end(request.method === 'HEAD' ? undefined : text);
    return Promise.resolve();
  };
}
