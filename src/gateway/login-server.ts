/**
 * Wires the built-in authorization server for `auth.login`: the built-in users (their wrong
 * passwords counted in the store, shared by the replicas), the company login, the SSRF-safe
 * dispatcher for client metadata documents, and the audit records of what it does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/config.js';
import type { LoginConfig } from '../config/login-schema.js';
import type { AuditEntry } from '../domain/audit-record.js';
import { createSafeDispatcher } from '../http/safe-fetch.js';
import type { BuiltinIssuer } from '../identity/builtin-issuer.js';
import { createStoreSecretLimiter } from '../identity/client-secret-limiter.js';
import type { AuthorizationServerEvent } from '../identity/authorization-server/authorization-events.js';
import {
  createAuthorizationServer,
  LOGIN_GRANT_TYPES,
  type AuthorizationServer,
} from '../identity/authorization-server/authorization-server.js';
import { createTokenDispatch } from '../identity/authorization-server/token-dispatch.js';
import { createBuiltinUserDirectory } from '../identity/login/builtin-users.js';
import { createCompanyLogin } from '../identity/login/company-login.js';
import type { Store } from '../store/types.js';
import type { Logger } from './logger.js';
import type { RouteHandler } from './pipeline/index.js';

export interface LoginServer {
  readonly server: AuthorizationServer;
  route(path: string): RouteHandler | undefined;
  /** The token endpoint: login grants to the authorization server, the rest to `builtin`. */
  tokenEndpoint(builtin: RouteHandler): RouteHandler;
  close(): Promise<void>;
}

export async function setUpLoginServer(options: {
  readonly config: Config;
  readonly login: LoginConfig;
  readonly store: Store;
  readonly issuer: BuiltinIssuer;
  readonly logger: Logger;
  readonly note: (entry: Omit<AuditEntry, 'time'>) => void;
}): Promise<LoginServer> {
  const { config, login, store, issuer, logger, note } = options;
  const documents = login.clientMetadataDocuments;
  const dispatcher = createSafeDispatcher({
    allowPrivateAddresses: documents.allowPrivateAddresses,
    timeoutMs: documents.timeoutMs,
    maxBytes: documents.maxBytes,
  });
  const server = await createAuthorizationServer({
    issuer,
    auth: config.auth,
    login,
    agents: config.agents,
    upstreams: () => config.upstreams.keys(),
    store,
    users: createBuiltinUserDirectory(login.users, {
      limiter: createStoreSecretLimiter({
        repository: store.secretFailures,
        onError: (error) => logger.error({ err: error }, 'pruning password failures failed'),
      }),
    }),
    companyLogin: login.oidc && createCompanyLogin(login.oidc, { users: login.users }),
    clientMetadataDispatcher: dispatcher,
    onEvent: (event) => note(describeLoginEvent(event, config.environment)),
    onError: (error) => logger.error({ err: error }, 'authorization server failed'),
  });
  const adapt =
    (handler: NonNullable<ReturnType<AuthorizationServer['route']>>): RouteHandler =>
    (request: IncomingMessage, response: ServerResponse, exchange) =>
      handler(request, response, { requestId: exchange.requestId, source: exchange.source });
  return {
    server,
    route(path) {
      const handler = server.route(path);
      return handler && adapt(handler);
    },
    tokenEndpoint: (builtin) =>
      createTokenDispatch({
        builtin,
        login: adapt(server.token),
        loginGrantTypes: LOGIN_GRANT_TYPES,
      }),
    close: async () => {
      server.close();
      await dispatcher.close();
    },
  };
}

/** What the authorization server did, as an audit entry naming the person, the app, the agent. */
export function describeLoginEvent(
  event: AuthorizationServerEvent,
  environment: string,
): Omit<AuditEntry, 'time'> {
  const reference = {
    ...(event.requestId !== undefined && { requestId: event.requestId }),
    environment,
  };
  switch (event.kind) {
    case 'token.issued':
      return {
        event: 'token.issued',
        ...reference,
        user: event.user,
        agent: event.agent,
        roles: event.roles,
        details: {
          app: event.app,
          grant: event.grantType,
          tokenId: event.tokenId,
          audience: event.audience,
          scopes: event.scopes,
          expiresAt: new Date(event.expiresAt).toISOString(),
          source: event.source,
        },
      };
    case 'auth.failed':
      return {
        event: 'auth.failed',
        ...reference,
        ...(event.user !== undefined && { user: event.user.slice(0, MAX_CLAIMED) }),
        errorCode: `OAUTH_${event.error.toUpperCase()}`,
        details: {
          endpoint: event.step,
          source: event.source,
          reason: event.reason.slice(0, MAX_CLAIMED),
          // Whatever the request claimed, kept short: it is told, not trusted.
          ...(event.app !== undefined && { app: event.app.slice(0, MAX_CLAIMED) }),
        },
      };
    case 'grant.revoked':
      return {
        event: 'token.revoked',
        ...reference,
        ...(event.user !== undefined && { user: event.user }),
        details: {
          reason: event.reason,
          grantId: event.grantId,
          ...(event.app !== undefined && { app: event.app }),
          source: event.source,
        },
      };
  }
}

const MAX_CLAIMED = 256;
