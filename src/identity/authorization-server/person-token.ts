/**
 * Access tokens for people come from the built-in issuer, not from oidc-provider: oidc-provider
 * runs the authorization code and refresh token grants with opaque access tokens, and this
 * middleware swaps each one, before the response leaves, for the built-in issuer's JWT of the
 * same grant (sub = person, client_id/act = app, warden_agent, roles, aud = the resource).
 *
 * Why not let oidc-provider sign JWTs itself: its keystore is fixed when it is built, while the
 * built-in keyring lives in the store and rotates (on any replica, or by `warden keys rotate`);
 * and its claim set differs. Minting through `issueToken` keeps one key, one claim layout and one
 * set of checks (scopes, audience, lifetime) for every token Warden issues.
 */
import type { AgentConfig } from '../../config/config.js';
import { IssuerError, type BuiltinIssuer } from '../builtin-issuer.js';
import { actingRoles } from '../login/person.js';
import type { AuthorizationEventSink } from './authorization-events.js';
import type { LoggedInPeople } from './logged-in-people.js';
import type { OidcContext } from './oidc-provider-api.js';

export interface PersonTokenOptions {
  readonly issuer: BuiltinIssuer;
  /** The registry, read at each token: a reload may change the login agent's roles. */
  readonly agents: ReadonlyMap<string, AgentConfig>;
  /** `auth.login.agent`. */
  readonly agentId: string;
  readonly people: LoggedInPeople;
  readonly onEvent: AuthorizationEventSink;
  readonly requestIdOf: (ctx: OidcContext) => string | undefined;
  readonly sourceOf: (ctx: OidcContext) => string;
}

interface TokenResponse {
  readonly access_token?: unknown;
  readonly [field: string]: unknown;
}

/** The Koa middleware (provider.use) that swaps opaque access tokens for person tokens. */
export function createPersonTokenMiddleware(
  options: PersonTokenOptions,
): (ctx: OidcContext, next: () => Promise<void>) => Promise<void> {
  const { issuer, agents, agentId, people, onEvent } = options;
  return async (ctx, next) => {
    await next();
    const opaque = ctx.oidc?.entities.AccessToken;
    const body = ctx.body as TokenResponse | undefined;
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !opaque || !body?.access_token) return;
    // The opaque twin is never handed out; it must not stay usable anywhere either.
    await opaque.destroy();
    const refuse = (reason: string, user?: string) => {
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: 'the grant can no longer be used' };
      onEvent({
        kind: 'auth.failed',
        source: options.sourceOf(ctx),
        requestId: options.requestIdOf(ctx),
        step: 'token',
        error: 'invalid_grant',
        reason,
        app: opaque.clientId,
        user,
      });
    };
    const person = opaque.accountId === undefined ? undefined : await people.find(opaque.accountId);
    if (!person) return refuse('person_unknown', opaque.accountId);
    const agent = agents.get(agentId);
    if (!agent) return refuse('login_agent_missing', person.id);
    const roles = actingRoles(person.roles, agent.roles);
    // offline_access asks for a refresh token; it is no scope of the gateway's.
    const scopes = (opaque.scope?.split(' ') ?? []).filter(
      (scope) => scope !== '' && scope !== 'offline_access',
    );
    const audience = opaque.resourceServer?.audience ?? issuer.resource;
    let issued;
    try {
      issued = await issuer.issueToken({
        agent,
        user: person.id,
        ...(scopes.length > 0 && { scopes }),
        resource: audience,
        app: { clientId: opaque.clientId, roles },
      });
    } catch (error) {
      if (error instanceof IssuerError) return refuse(error.code, person.id);
      throw error;
    }
    ctx.body = {
      ...body,
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: Math.round((issued.expiresAt - issued.issuedAt) / 1000),
      ...(issued.scopes.length > 0 ? { scope: issued.scopes.join(' ') } : { scope: undefined }),
    };
    const grantType = ctx.oidc.params?.grant_type;
    onEvent({
      kind: 'token.issued',
      source: options.sourceOf(ctx),
      requestId: options.requestIdOf(ctx),
      user: person.id,
      app: opaque.clientId,
      agent: agent.id,
      roles,
      grantType: typeof grantType === 'string' ? grantType : 'authorization_code',
      tokenId: issued.tokenId,
      expiresAt: issued.expiresAt,
      scopes: issued.scopes,
      audience,
    });
  };
}
