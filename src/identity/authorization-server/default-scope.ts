/**
 * MCP apps often send no `scope` (the gateway may require none), but oidc-provider refuses an
 * authorization that grants nothing. An authorization request without one asks for the gateway's
 * required scopes and `offline_access` (a refresh token), with `prompt=consent`: oidc-provider
 * grants offline_access only with it, and the person is asked, which is the point anyway.
 */
import type { OidcContext } from './oidc-provider-api.js';

export function createDefaultScopeMiddleware(options: {
  readonly authorizationPath: string;
  readonly requiredScopes: readonly string[];
}): (ctx: OidcContext, next: () => Promise<void>) => Promise<void> {
  const scope = [...options.requiredScopes, 'offline_access'].join(' ');
  return async (ctx, next) => {
    if (ctx.path === options.authorizationPath && ctx.method === 'GET') {
      const query = new URLSearchParams(ctx.querystring);
      if ((query.get('scope') ?? '') === '') {
        query.set('scope', scope);
        if (!query.has('prompt')) query.set('prompt', 'consent');
        ctx.querystring = query.toString();
      }
    }
    await next();
  };
}
