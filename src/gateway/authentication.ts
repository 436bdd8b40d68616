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
import { createStoreSecretLimiter } from '../identity/client-secret-limiter.js';
import { advertiseJwtBearerGrant, createIdJagVerifier } from '../identity/id-jag.js';
import { describeKeyRotation } from '../identity/rotate-signing-keys.js';
import type { AuditEntry } from '../domain/audit-record.js';
import type { AgentConfig } from '../config/config.js';
import {
  type TokenEndpointEvent,
  BUILTIN_ISSUER_PATHS,
  createJwksHandler,
  createTokenEndpoint,
  describeAuthorizationServer,
} from '../identity/token-endpoint.js';
import { formatChallenge } from '../identity/www-authenticate.js';
import { sendJson } from '../http/json-reply.js';
import type { Store } from '../store/types.js';
import { createAuthFailureReporter, type AuthFailure } from './auth-failure-reporter.js';
import type { RouteHandler } from './pipeline/index.js';
import type { Logger } from './logger.js';
import { setUpLoginServer, type LoginServer } from './login-server.js';
import type { SubjectTokenSigner } from '../mcp/upstream/token-exchange-subject.js';

export interface GatewayAuthentication {
  readonly authenticator: RequestAuthenticator;
  readonly revocations: RevocationList;
  /** The built-in issuer, when configured (the demo and tests mint tokens with it). */
  readonly issuer: BuiltinIssuer | undefined;
  /** Signs the subject tokens of upstream token exchanges: the built-in issuer's keys. */
  readonly subjectTokenSigner: SubjectTokenSigner | undefined;
  /** Public routes by exact path, plus the metadata paths. */
  route(path: string): RouteHandler | undefined;
  /** Whether an error refuses the caller's credentials (recorded as `auth.failed`). */
  isCallerRefusal(error: unknown): boolean;
  /** The WWW-Authenticate value for an error refusing a call to `upstream`, if it needs one. */
  challenge(error: unknown, upstream: string): string | undefined;
  /** Also records the pending summaries of refused token requests: close before the audit log. */
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
      onRotated: (rotation) => note(describeKeyRotation(rotation, environment)),
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
    localKeys: keyring ? (kid) => keyring.publicJwksFor(kid) : undefined,
  });
  const authenticator = createRequestAuthenticator({
    auth,
    environment,
    agents,
    verifier,
    revocations,
    builtinIssuer: issuer?.issuer,
  });

  const tokenFailures = createTokenFailureReporter(logger, note, environment, agents);
  const routes = new Map<string, RouteHandler>();
  // People log in through apps (auth.login): the built-in authorization server.
  let loginServer: LoginServer | undefined;
  // A key stored by another replica (or the CLI) is re-read at once, not on the next refresh.
  const stopFollowingKeys = keyring
    ? await store.signingKeys.subscribe(() => keyring.markStale())
    : undefined;
  if (issuer && keyring) {
    // Create the first key now, so the first token request does not pay for it.
    await keyring.currentKey();
    const tokenEndpointUrl = `${issuer.issuer}${BUILTIN_ISSUER_PATHS.token}`;
    const jwksUri = `${issuer.issuer}${BUILTIN_ISSUER_PATHS.jwks}`;
    // Enterprise-managed authorization (SEP-990): jwt-bearer is offered only with a trusted IdP.
    const idps = auth.enterprise?.idJag ?? [];
    const enterprise =
      idps.length === 0
        ? undefined
        : {
            verifier: createIdJagVerifier({
              idps,
              audience: issuer.issuer,
              agentIds: agents,
              clockSkewMs: auth.clockSkewMs,
              // Shared through the store: an ID-JAG is spent once across the replicas.
              assertionReplays: store.assertionReplays,
              onError: (error) => logger.error({ err: error }, 'pruning used ID-JAGs failed'),
            }),
            builtinUsers: auth.login?.users,
            requiredScopes: auth.requiredScopes,
          };
    routes.set(
      BUILTIN_ISSUER_PATHS.token,
      createTokenEndpoint({
        issuer,
        agents,
        tokenEndpointUrl,
        revocations,
        // Shared through the store: replicas count wrong secrets and used assertions as one.
        secretLimiter: createStoreSecretLimiter({
          repository: store.secretFailures,
          onError: (error) => logger.error({ err: error }, 'pruning secret failures failed'),
        }),
        assertionReplays: store.assertionReplays,
        ...(enterprise && { enterprise }),
        onError: (error) => logger.error({ err: error }, 'token endpoint failed'),
        onEvent: (event) =>
          event.kind === 'token.issued'
            ? note(describeIssuedToken(event, environment))
            : tokenFailures.report(event),
      }),
    );
    const jwks = createJwksHandler(keyring, {
      onError: (error) => logger.error({ err: error }, 'jwks failed'),
    });
    routes.set(BUILTIN_ISSUER_PATHS.jwks, (request, response) => {
      // A wrong method is refused by the listener, as on the other public routes: with a
      // reference, and on the record.
      requireReadMethod(request);
      return jwks(request, response);
    });
    if (auth.login) {
      loginServer = await setUpLoginServer({
        config,
        login: auth.login,
        store,
        issuer,
        logger,
        note,
      });
      const builtinToken = routes.get(BUILTIN_ISSUER_PATHS.token);
      if (builtinToken)
        routes.set(BUILTIN_ISSUER_PATHS.token, loginServer.tokenEndpoint(builtinToken));
    }
    const serverMetadata = describeAuthorizationServer({
      ...(loginServer && { login: loginServer.server.metadata }),
      issuer: issuer.issuer,
      tokenEndpointUrl,
      jwksUri,
      clientCertificates: (config.listen.tls?.clientCas.length ?? 0) > 0,
    });
    const advertised = enterprise ? advertiseJwtBearerGrant(serverMetadata) : serverMetadata;
    routes.set(
      BUILTIN_ISSUER_PATHS.metadata,
      serveJson(() => advertised),
    );
  }
  const upstreams = new Set(config.upstreams.keys());
  const mtls = (config.listen.tls?.clientCas.length ?? 0) > 0;

  return {
    authenticator,
    revocations,
    issuer,
    subjectTokenSigner:
      issuer && keyring
        ? { issuer: issuer.issuer, currentKey: () => keyring.currentKey() }
        : undefined,
    route(path) {
      const exact = routes.get(path) ?? loginServer?.route(path);
      if (exact) return exact;
      const resource = resolveMetadataPath(auth, path, upstreams);
      if (resource === undefined) return undefined;
      return serveJson(() => describeProtectedResource(auth, resource, { mtls }));
    },
    isCallerRefusal: (error) => error instanceof WardenError && CHALLENGED.has(error.code),
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
    close: async () => {
      tokenFailures.flush();
      await loginServer?.close();
      await stopFollowingKeys?.();
      await revocations.close();
    },
  };
}

/** A token issued at the token endpoint, as an audit entry. */
function describeIssuedToken(
  event: Extract<TokenEndpointEvent, { kind: 'token.issued' }>,
  environment: string,
): Omit<AuditEntry, 'time'> {
  return {
    event: 'token.issued',
    ...(event.requestId !== undefined && { requestId: event.requestId }),
    environment,
    ...(event.user !== undefined && { user: event.user }),
    agent: event.agent,
    ...(event.roles !== undefined && { roles: event.roles }),
    details: {
      tokenId: event.tokenId,
      method: event.method,
      grant: event.grant,
      ...(event.idp !== undefined && { idp: event.idp }),
      scopes: event.scopes,
      expiresAt: new Date(event.expiresAt).toISOString(),
      source: event.source,
      ...(event.boundCertificate !== undefined && { boundCertificate: event.boundCertificate }),
    },
  };
}

type TokenFailureEvent = Extract<TokenEndpointEvent, { kind: 'auth.failed' }>;

/** A refused token request as the reporter carries it: its fields, and the endpoint's event. */
interface TokenRefusal extends AuthFailure {
  readonly event: TokenFailureEvent;
}

/**
 * Refused token requests are aggregated per source as refused MCP requests are: in each window a
 * source's first refusal is recorded in full, the rest once as a count, so a flood of guesses
 * cannot flood the audit log.
 */
function createTokenFailureReporter(
  logger: Logger,
  note: (entry: Omit<AuditEntry, 'time'>) => void,
  environment: string,
  agents: ReadonlyMap<string, AgentConfig>,
): { report(event: TokenFailureEvent): void; flush(): void } {
  const reporter = createAuthFailureReporter<TokenRefusal>(logger, {
    sink: (report) =>
      note(
        report.kind === 'failure'
          ? describeTokenFailure(report.failure.event, environment, agents)
          : {
              event: 'auth.failed',
              environment,
              details: {
                endpoint: 'token',
                source: report.source,
                repeated: report.repeated,
                codes: report.codes,
              },
            },
      ),
  });
  return {
    report: (event) =>
      reporter.report({
        requestId: event.requestId ?? '',
        source: event.source,
        upstream: undefined,
        code: oauthErrorCodeOf(event.error),
        reason: event.reason,
        event,
      }),
    flush: () => reporter.flush(),
  };
}

/** A refused token request, as an audit entry; an unregistered client id is not an agent. */
function describeTokenFailure(
  event: TokenFailureEvent,
  environment: string,
  agents: ReadonlyMap<string, AgentConfig>,
): Omit<AuditEntry, 'time'> {
  const registered = event.clientId !== undefined && agents.has(event.clientId);
  return {
    event: 'auth.failed',
    ...(event.requestId !== undefined && { requestId: event.requestId }),
    environment,
    ...(registered && { agent: event.clientId }),
    errorCode: oauthErrorCodeOf(event.error),
    details: {
      endpoint: 'token',
      source: event.source,
      method: event.method ?? null,
      reason: event.reason,
      ...(event.idp !== undefined && { idp: event.idp }),
      // Whatever a stranger claimed, kept short: it is not trusted, only told.
      ...(!registered &&
        event.clientId !== undefined && { clientId: event.clientId.slice(0, MAX_CLAIMED_ID) }),
    },
  };
}

const MAX_CLAIMED_ID = 128;

/** `invalid_client` is recorded as `OAUTH_INVALID_CLIENT`, apart from Warden's own codes. */
function oauthErrorCodeOf(error: TokenFailureEvent['error']): string {
  return `OAUTH_${error.toUpperCase()}`;
}

/** Public documents are read with GET or HEAD; anything else is WARDEN_METHOD_NOT_ALLOWED. */
function requireReadMethod(request: IncomingMessage): void {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    throw new WardenError('WARDEN_METHOD_NOT_ALLOWED', undefined, {
      details: { allow: 'GET, HEAD' },
    });
  }
}

function serveJson(body: () => Record<string, unknown>): RouteHandler {
  return (request: IncomingMessage, response: ServerResponse) => {
    requireReadMethod(request);
    sendJson(response, 200, body(), { 'cache-control': 'public, max-age=300' });
    return Promise.resolve();
  };
}
