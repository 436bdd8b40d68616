/**
 * oidc-provider's configuration for the built-in authorization server: authorization code with
 * PKCE (S256 only: oidc-provider 9 knows no other method, and PKCE is required of every client),
 * RFC 8707 resource indicators for the gateway's resources only, refresh tokens rotated at every
 * use (a reused one revokes its whole grant), Client ID Metadata Documents fetched through the
 * SSRF-safe fetch, Dynamic Client Registration when allowed, and no OpenID Connect extras
 * (no ID tokens, userinfo or logout: apps need access tokens, the login is Warden's own).
 */
import type { AuthConfig } from '../../config/config.js';
import type { LoginConfig } from '../../config/login-schema.js';
import { renderErrorPage } from '../login/pages/error-page.js';
import { LOGIN_PAGE_CSP } from '../login/pages/html.js';
import type { ArtifactAdapter } from './artifact-adapter.js';
import type { LoggedInPeople } from './logged-in-people.js';
import type { OidcClient, OidcContext, OidcErrorOut, OidcModule } from './oidc-provider-api.js';
import { audienceFor } from './resource-indicators.js';

/** Where oidc-provider's endpoints are, under the built-in issuer's origin. */
export const AUTHORIZATION_SERVER_PATHS = Object.freeze({
  authorization: '/oauth/authorize',
  registration: '/oauth/register',
  revocation: '/oauth/revoke',
  token: '/oauth/token',
});

// Endpoints oidc-provider always has but Warden never serves: parked under a path no route
// forwards to it.
const UNSERVED = '/oauth/unserved';
const AUTHORIZATION_CODE_TTL_S = 60;
const INTERACTION_TTL_S = 10 * 60;

export interface ProviderConfigurationInput {
  readonly auth: AuthConfig;
  readonly login: LoginConfig;
  /** The upstreams configured now (their endpoints are resources too). */
  readonly upstreams: () => Iterable<string>;
  /** Scopes a token may carry: auth.required_scopes and the login agent's. */
  readonly scopes: readonly string[];
  readonly accessTokenTtlSeconds: number;
  readonly adapter: (model: string) => ArtifactAdapter;
  /** Signs the login cookies; shared by the replicas. */
  readonly cookieKeys: readonly string[];
  readonly people: LoggedInPeople;
  readonly fetch: (url: string | URL, init?: { readonly method?: string }) => Promise<Response>;
  readonly errors: OidcModule['errors'];
  /** A private JWK (ES256) oidc-provider requires for ID tokens, which Warden never issues. */
  readonly idTokenKey: Record<string, unknown>;
}

export function buildProviderConfiguration(
  input: ProviderConfigurationInput,
): Record<string, unknown> {
  const { auth, login, errors, people } = input;
  const scope = input.scopes.join(' ');
  const cookie = { httpOnly: true, sameSite: 'lax', signed: true, overwrite: true };
  return {
    adapter: input.adapter,
    jwks: { keys: [input.idTokenKey] },
    clients: [],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      id_token_signed_response_alg: 'ES256',
    },
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    // OAuth 2.1: the redirect URI is always sent, and compared exactly.
    allowOmittingSingleRegisteredRedirectUri: false,
    // A browser app (the MCP Inspector) may call the token endpoint from its redirect URI's origin.
    clientBasedCORS: (
      _ctx: OidcContext,
      origin: string,
      client: OidcClient & { redirectUris: string[] },
    ) => origin !== 'null' && client.redirectUris.some((uri) => originOf(uri) === origin),
    cookies: {
      names: {
        session: 'warden_login',
        interaction: 'warden_interaction',
        resume: 'warden_interaction_resume',
      },
      long: cookie,
      short: cookie,
      keys: [...input.cookieKeys],
    },
    responseTypes: ['code'],
    pkce: { required: () => true },
    scopes: ['offline_access', ...input.scopes],
    claims: { openid: ['sub'] },
    routes: {
      ...AUTHORIZATION_SERVER_PATHS,
      backchannel_authentication: `${UNSERVED}/backchannel`,
      code_verification: `${UNSERVED}/device`,
      challenge: `${UNSERVED}/challenge`,
      device_authorization: `${UNSERVED}/device/auth`,
      end_session: `${UNSERVED}/session/end`,
      introspection: `${UNSERVED}/introspection`,
      jwks: `${UNSERVED}/jwks`,
      pushed_authorization_request: `${UNSERVED}/par`,
      userinfo: `${UNSERVED}/userinfo`,
      credential: `${UNSERVED}/credential`,
    },
    interactions: {
      url: (_ctx: OidcContext, interaction: { uid: string }) =>
        `/oauth/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: input.accessTokenTtlSeconds,
      AuthorizationCode: AUTHORIZATION_CODE_TTL_S,
      Interaction: INTERACTION_TTL_S,
      Session: Math.ceil(login.sessionTtlMs / 1000),
      Grant: Math.ceil(login.refreshTokenTtlMs / 1000),
      RefreshToken: Math.ceil(login.refreshTokenTtlMs / 1000),
      IdToken: INTERACTION_TTL_S,
    },
    // A refresh token lives its own lifetime, not the browser session's.
    expiresWithSession: () => false,
    issueRefreshToken: (_ctx: OidcContext, client: OidcClient) =>
      client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    findAccount: async (_ctx: OidcContext, id: string) => {
      const person = await people.find(id);
      return person && { accountId: person.id, claims: () => ({ sub: person.id }) };
    },
    renderError: (ctx: OidcContext, out: OidcErrorOut) => {
      ctx.type = 'html';
      ctx.set('content-security-policy', LOGIN_PAGE_CSP);
      ctx.set('cache-control', 'no-store');
      ctx.body = renderErrorPage({
        error: out.error,
        description: out.error_description ?? 'The request could not be processed.',
      });
    },
    fetch: input.fetch,
    fetchResponseBodyLimits: {
      'client_id metadata document': login.clientMetadataDocuments.maxBytes,
      jwks_uri: login.clientMetadataDocuments.maxBytes * 4,
      sector_identifier_uri: login.clientMetadataDocuments.maxBytes,
    },
    features: {
      devInteractions: { enabled: false },
      registration: {
        enabled: login.registration,
        initialAccessToken: false,
        issueRegistrationAccessToken: false,
      },
      revocation: { enabled: true, allowedPolicy: () => true },
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      // DPoP-bound tokens would need the binding carried into Warden's JWT; not offered.
      dPoP: { enabled: false },
      clientIdMetadataDocument: {
        enabled: login.clientMetadataDocuments.enabled,
        ack: 'draft-02',
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: OidcContext, _client: OidcClient, oneOf?: string[]) =>
          oneOf ?? auth.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: OidcContext, resource: string) => {
          if (audienceFor(resource, auth, input.upstreams()) === undefined)
            throw new errors.InvalidTarget('the resource is not served by this gateway');
          return {
            scope,
            audience: resource,
            accessTokenFormat: 'opaque',
            accessTokenTTL: input.accessTokenTtlSeconds,
          };
        },
      },
    },
  };
}

function originOf(uri: string): string | undefined {
  try {
    return new URL(uri).origin;
  } catch {
    return undefined;
  }
}
