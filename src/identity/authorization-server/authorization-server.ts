/**
 * The built-in authorization server, for people logging in through apps: oidc-provider mounted
 * under the built-in issuer's origin (authorization, registration, revocation, and the
 * authorization_code and refresh_token grants of the one token endpoint), Warden's login and
 * consent pages as its interactions, its state in the store, and its access tokens minted by the
 * built-in issuer (person-token.ts).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import type { Dispatcher } from 'undici';
import type { AgentConfig, AuthConfig } from '../../config/config.js';
import type { LoginConfig } from '../../config/login-schema.js';
import type { Store } from '../../store/types.js';
import type { BuiltinIssuer } from '../builtin-issuer.js';
import type { BuiltinUserDirectory } from '../login/builtin-users.js';
import type { CompanyLogin } from '../login/company-login.js';
import { createInteractionCsrf } from '../login/interaction-csrf.js';
import type { InteractionContext } from '../login/interaction-context.js';
import { routeInteraction } from '../login/interaction-routes.js';
import { LOGIN_STYLESHEET, LOGIN_STYLESHEET_PATH } from '../login/pages/html.js';
import { createArtifactAdapterFactory } from './artifact-adapter.js';
import type { AuthorizationEventSink, LoginStep } from './authorization-events.js';
import { createClientMetadataFetch } from './client-metadata-fetch.js';
import { createLoggedInPeople } from './logged-in-people.js';
import { loadOidcProvider, type OidcContext } from './oidc-provider-api.js';
import { createDefaultScopeMiddleware } from './default-scope.js';
import { createPersonTokenMiddleware } from './person-token.js';
import {
  AUTHORIZATION_SERVER_PATHS,
  buildProviderConfiguration,
} from './provider-configuration.js';

/** The grants oidc-provider runs at the token endpoint; the others stay with the built-in one. */
export const LOGIN_GRANT_TYPES: ReadonlySet<string> = new Set([
  'authorization_code',
  'refresh_token',
]);

export interface AuthorizationServerExchange {
  readonly requestId: string;
  readonly source: string;
}

export type AuthorizationServerHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  exchange: AuthorizationServerExchange,
) => Promise<void>;

export interface AuthorizationServerOptions {
  readonly issuer: BuiltinIssuer;
  readonly auth: AuthConfig;
  readonly login: LoginConfig;
  readonly agents: ReadonlyMap<string, AgentConfig>;
  readonly upstreams: () => Iterable<string>;
  readonly store: Pick<Store, 'oauthArtifacts' | 'sharedSecrets'>;
  readonly users: BuiltinUserDirectory;
  readonly companyLogin: CompanyLogin | undefined;
  /** The SSRF-safe dispatcher client metadata documents are fetched through. */
  readonly clientMetadataDispatcher: Dispatcher;
  readonly onEvent: AuthorizationEventSink;
  /** Told about unexpected failures; the client only sees server_error. */
  readonly onError: (error: unknown) => void;
  readonly now?: () => number;
}

export interface AuthorizationServer {
  /** The handler of a path the authorization server serves (not the token endpoint). */
  route(path: string): AuthorizationServerHandler | undefined;
  /** Runs a token request of one of LOGIN_GRANT_TYPES. */
  readonly token: AuthorizationServerHandler;
  /** What it adds to the RFC 8414 metadata. */
  readonly metadata: {
    readonly authorizationEndpoint: string;
    readonly registrationEndpoint: string | undefined;
    readonly revocationEndpoint: string;
    readonly clientIdMetadataDocumentSupported: boolean;
    readonly scopes: readonly string[];
  };
  close(): void;
}

const PRUNE_EVERY_MS = 10 * 60_000;

export async function createAuthorizationServer(
  options: AuthorizationServerOptions,
): Promise<AuthorizationServer> {
  const { issuer, auth, login, agents, store, onEvent } = options;
  const now = options.now ?? Date.now;
  const origin = issuer.issuer;
  const { Provider, errors } = await loadOidcProvider();
  const [cookieKey, csrfKey] = await Promise.all(
    ['login-cookie-key', 'login-csrf-key'].map((name) =>
      store.sharedSecrets.getOrCreate(name, randomBytes(32).toString('base64url')),
    ),
  );
  const people = createLoggedInPeople({
    repository: store.oauthArtifacts,
    users: login.users,
    keepMs: Math.max(login.sessionTtlMs, login.refreshTokenTtlMs),
    now,
  });
  // oidc-provider insists on a signing key of its own, for ID tokens; Warden issues none (no
  // `openid` scope), so a key made at start and never published is enough.
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const idTokenKey = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' };
  const loginAgent = agents.get(login.agent);
  const scopes = [...new Set([...auth.requiredScopes, ...(loginAgent?.scopes ?? [])])];
  const provider = new Provider(
    origin,
    buildProviderConfiguration({
      auth,
      login,
      upstreams: options.upstreams,
      scopes,
      accessTokenTtlSeconds: Math.floor(issuer.maxTtlMs / 1000),
      adapter: createArtifactAdapterFactory(store.oauthArtifacts, now),
      cookieKeys: [cookieKey ?? ''],
      people,
      fetch: createClientMetadataFetch({
        dispatcher: options.clientMetadataDispatcher,
        maxBytes: login.clientMetadataDocuments.maxBytes,
        timeoutMs: login.clientMetadataDocuments.timeoutMs,
      }),
      errors,
      idTokenKey,
    }),
  );
  // What the listener told each exchange, for the records oidc-provider's hooks make.
  const exchanges = new WeakMap<IncomingMessage, AuthorizationServerExchange>();
  const requestIdOf = (ctx: OidcContext) => exchanges.get(ctx.req)?.requestId;
  const sourceOf = (ctx: OidcContext) => exchanges.get(ctx.req)?.source ?? ctx.ip;
  provider.use(
    createDefaultScopeMiddleware({
      authorizationPath: AUTHORIZATION_SERVER_PATHS.authorization,
      requiredScopes: auth.requiredScopes,
    }),
  );
  provider.use(
    createPersonTokenMiddleware({
      issuer,
      agents,
      agentId: login.agent,
      people,
      onEvent,
      requestIdOf,
      sourceOf,
    }),
  );
  const refused = (step: LoginStep) => (ctx: OidcContext, subject: unknown) => {
    const error = subject as Error & { error?: string; error_description?: string };
    onEvent({
      kind: 'auth.failed',
      source: sourceOf(ctx),
      requestId: requestIdOf(ctx),
      step,
      error: error.error ?? 'server_error',
      reason: error.error_description ?? error.message,
      app: ctx.oidc?.client?.clientId ?? clientIdParameter(ctx),
      user: ctx.oidc?.entities.RefreshToken?.accountId,
    });
  };
  provider.on('authorization.error', refused('authorize'));
  provider.on('grant.error', refused('token'));
  provider.on('registration_create.error', refused('registration'));
  provider.on('revocation.error', refused('token'));
  provider.on('server_error', (_ctx, error) => options.onError(error));
  provider.on('grant.revoked', (ctx, grantId) => {
    const entities = ctx.oidc?.entities;
    const token = entities?.RefreshToken ?? entities?.AuthorizationCode;
    onEvent({
      kind: 'grant.revoked',
      source: sourceOf(ctx),
      requestId: requestIdOf(ctx),
      grantId: String(grantId),
      reason: revocationReason(ctx),
      app: token?.clientId ?? ctx.oidc?.client?.clientId,
      user: token?.accountId,
    });
  });

  const callback = provider.callback();
  const runProvider: AuthorizationServerHandler = async (request, response, exchange) => {
    exchanges.set(request, exchange);
    const done = new Promise<void>((resolve) => {
      response.once('finish', resolve);
      response.once('close', resolve);
    });
    callback(request, response);
    await done;
  };

  const context: InteractionContext = {
    provider,
    login,
    agents,
    people,
    users: options.users,
    companyLogin: options.companyLogin,
    csrf: createInteractionCsrf(Buffer.from(csrfKey ?? '', 'base64url')),
    artifacts: store.oauthArtifacts,
    issuer: origin,
    onEvent,
    now,
  };
  const providerPaths = new Set<string>([
    AUTHORIZATION_SERVER_PATHS.authorization,
    AUTHORIZATION_SERVER_PATHS.revocation,
    ...(login.registration ? [AUTHORIZATION_SERVER_PATHS.registration] : []),
  ]);
  // The interaction pages redirect back into the authorization endpoint to resume.
  const resumePrefix = `${AUTHORIZATION_SERVER_PATHS.authorization}/`;

  const pruner = setInterval(() => {
    store.oauthArtifacts.deleteExpired(now()).catch(options.onError);
  }, PRUNE_EVERY_MS);
  pruner.unref();

  return {
    route(path) {
      if (providerPaths.has(path) || path.startsWith(resumePrefix)) return runProvider;
      if (path === LOGIN_STYLESHEET_PATH) return serveStylesheet;
      const step = routeInteraction(context, path);
      return step && ((request, response, exchange) => step(request, response, exchange));
    },
    token: runProvider,
    metadata: {
      authorizationEndpoint: `${origin}${AUTHORIZATION_SERVER_PATHS.authorization}`,
      registrationEndpoint: login.registration
        ? `${origin}${AUTHORIZATION_SERVER_PATHS.registration}`
        : undefined,
      revocationEndpoint: `${origin}${AUTHORIZATION_SERVER_PATHS.revocation}`,
      clientIdMetadataDocumentSupported: login.clientMetadataDocuments.enabled,
      scopes,
    },
    close: () => clearInterval(pruner),
  };
}

/** Why oidc-provider revoked a grant: a replay at the token endpoint, or the app asked. */
function revocationReason(
  ctx: OidcContext,
): 'refresh_token_reused' | 'code_replayed' | 'revoked_by_client' {
  if (ctx.oidc?.route !== 'token') return 'revoked_by_client';
  return ctx.oidc.params?.grant_type === 'authorization_code'
    ? 'code_replayed'
    : 'refresh_token_reused';
}

function clientIdParameter(ctx: OidcContext): string | undefined {
  const clientId = ctx.oidc?.params?.client_id;
  return typeof clientId === 'string' ? clientId.slice(0, 256) : undefined;
}

const serveStylesheet: AuthorizationServerHandler = async (request, response) => {
  response.writeHead(200, {
    'content-type': 'text/css; charset=utf-8',
    'cache-control': 'public, max-age=3600',
    'x-content-type-options': 'nosniff',
  });
  response.end(request.method === 'HEAD' ? undefined : LOGIN_STYLESHEET);
};
