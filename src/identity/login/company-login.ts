/**
 * Login delegated to the company's OpenID Provider (`auth.login.oidc`): the built-in
 * authorization server's login page sends the browser there with `begin` and turns the callback
 * into a Warden person with `finish`. Authorization code flow with PKCE (S256), state and nonce,
 * done by openid-client: it validates the callback (state, RFC 9207 `iss`), the ID token (its
 * signature, `iss`, `aud`, `nonce`, `exp`) and the user info's `sub`.
 *
 * Roles come only from the provider's groups (`roles_by_group`). A built-in user of the same id
 * (`auth.login.users`) lends a company login nothing: whoever controls that claim at the provider
 * would otherwise gain the built-in user's roles, and a person removed from a group there would
 * keep them here.
 */
import * as client from 'openid-client';
import type { BuiltinUserConfig, CompanyLoginConfig } from '../../config/login-schema.js';
import {
  checkCallbackIssuer,
  checkCallbackState,
  createFinishedLogins,
} from './company-callback.js';
import { CompanyLoginError, toCompanyLoginError } from './company-login-error.js';
import { createCompanyProvider } from './company-provider.js';
import { rolesFromGroups, userIdFromClaims, type Person } from './person.js';

/** What `finish` needs from `begin`; plain JSON, kept by the caller with the login interaction. */
export interface PendingCompanyLogin {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  /** The redirect_uri sent to the provider; the token request repeats it. */
  readonly callbackUrl: string;
}

export interface CompanyLogin {
  /** What to call the provider on the login page's button: the issuer's host. */
  readonly label: string;
  /**
   * Where to send the browser, and what to keep until it comes back. `callbackUrl` is the
   * redirect_uri registered at the provider, without a query (the response's parameters go there).
   * @throws CompanyLoginError LOGIN_SECRET_MISSING, LOGIN_DISCOVERY_FAILED
   */
  begin(input: {
    readonly callbackUrl: string;
  }): Promise<{ redirectTo: string; pending: PendingCompanyLogin }>;
  /**
   * The person the provider vouched for, from the full callback URL (with its query).
   * @throws CompanyLoginError
   */
  finish(input: {
    readonly callbackUrl: URL;
    readonly pending: PendingCompanyLogin;
  }): Promise<Person>;
}

export interface CompanyLoginOptions {
  /** Replaces global fetch for the requests to the provider (a proxy, a test's tap). */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Warden's clock (ms since the epoch); ID token times are checked against it. */
  readonly now?: () => number;
  /** Where the client secret is read from; process.env by default. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Per-request timeout towards the provider; 10 s by default. */
  readonly timeoutMs?: number;
  /**
   * The built-in users. Deliberately not consulted: a company login's roles come only from its
   * groups (see the module comment); accepted so the caller can pass the login config whole.
   */
  readonly users?: ReadonlyMap<string, BuiltinUserConfig>;
}

/** How long a finished login's state is remembered: longer than any provider's code lives. */
const REMEMBER_FINISHED_MS = 15 * 60_000;
const MAX_REMEMBERED = 10_000;

/** Builds the company login for `auth.login.oidc`; nothing is fetched until the first login. */
export function createCompanyLogin(
  config: CompanyLoginConfig,
  options: CompanyLoginOptions = {},
): CompanyLogin {
  const now = options.now ?? Date.now;
  const env = options.env ?? process.env;
  const provider = createCompanyProvider(config, {
    fetch: options.fetch,
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  const finished = createFinishedLogins({
    rememberMs: REMEMBER_FINISHED_MS,
    maxEntries: MAX_REMEMBERED,
  });
  const scope = [...new Set(['openid', ...config.scopes])].join(' ');

  function clientSecret(): string {
    const secret = env[config.clientSecretEnv];
    if (!secret)
      throw new CompanyLoginError(
        'LOGIN_SECRET_MISSING',
        `the client secret for ${config.issuer} is missing: set the environment variable ${config.clientSecretEnv} (auth.login.oidc.client_secret_env)`,
      );
    return secret;
  }

  return {
    label: new URL(config.issuer).host,

    async begin({ callbackUrl }) {
      clientSecret(); // Fail here, not after the person has logged in at the provider.
      const configuration = await provider.configure(undefined, now());
      const pending: PendingCompanyLogin = {
        state: client.randomState(),
        nonce: client.randomNonce(),
        codeVerifier: client.randomPKCECodeVerifier(),
        callbackUrl,
      };
      const redirectTo = client.buildAuthorizationUrl(configuration, {
        redirect_uri: callbackUrl,
        scope,
        state: pending.state,
        nonce: pending.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(pending.codeVerifier),
        code_challenge_method: 'S256',
      });
      return { redirectTo: redirectTo.href, pending };
    },

    async finish({ callbackUrl, pending }) {
      const parameters = callbackUrl.searchParams;
      checkCallbackState(parameters, pending.state);
      if (!finished.claim(pending.state, now()))
        throw new CompanyLoginError(
          'LOGIN_CALLBACK_REPLAYED',
          'this login was already finished once; start the login again',
        );
      const configuration = await provider.configure(clientSecret(), now());
      const server = configuration.serverMetadata();
      checkCallbackIssuer(
        parameters,
        server.issuer,
        server.authorization_response_iss_parameter_supported === true,
      );
      // The token request must repeat the redirect_uri sent, whatever URL the callback came on.
      const response = new URL(pending.callbackUrl);
      response.search = parameters.toString();
      const claims = await exchangeCode(configuration, response, pending, config);
      provider.keepKeys(configuration);
      return personFromClaims(claims, config);
    },
  };
}

/** The code for tokens, and the person's claims: the ID token's, completed by user info. */
async function exchangeCode(
  configuration: client.Configuration,
  response: URL,
  pending: PendingCompanyLogin,
  config: CompanyLoginConfig,
): Promise<Readonly<Record<string, unknown>>> {
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  try {
    tokens = await client.authorizationCodeGrant(configuration, response, {
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      pkceCodeVerifier: pending.codeVerifier,
      idTokenExpected: true,
    });
  } catch (error) {
    throw toCompanyLoginError(error, 'token', config.issuer);
  }
  const idToken = tokens.claims();
  if (!idToken)
    throw new CompanyLoginError(
      'LOGIN_ID_TOKEN_INVALID',
      `the identity provider ${config.issuer} sent no ID token`,
    );
  const complete = config.userClaim in idToken && config.groupsClaim in idToken;
  if (complete || configuration.serverMetadata().userinfo_endpoint === undefined) return idToken;
  // Many providers put only `sub` in the ID token of a code flow and the rest in user info;
  // openid-client checks that its `sub` is the ID token's.
  try {
    const userInfo = await client.fetchUserInfo(configuration, tokens.access_token, idToken.sub);
    return { ...userInfo, ...idToken };
  } catch (error) {
    throw toCompanyLoginError(error, 'userinfo', config.issuer);
  }
}

function personFromClaims(
  claims: Readonly<Record<string, unknown>>,
  config: CompanyLoginConfig,
): Person {
  const id = userIdFromClaims(claims, config);
  if (id === undefined)
    throw new CompanyLoginError(
      'LOGIN_CLAIM_MISSING',
      `the identity provider ${config.issuer} did not name the person in the "${config.userClaim}" claim (auth.login.oidc.user_claim); ask for a scope that releases it or choose another claim`,
    );
  // An address the provider has not verified may belong to someone else (nOAuth).
  const emailVerified = claims['email_verified'];
  if (config.userClaim === 'email' && (emailVerified === false || emailVerified === 'false'))
    throw new CompanyLoginError(
      'LOGIN_EMAIL_UNVERIFIED',
      `the identity provider ${config.issuer} says the person's email address is not verified`,
    );
  const name = claims['name'];
  const email = claims['email'];
  return Object.freeze({
    id,
    name: typeof name === 'string' ? name : undefined,
    email: typeof email === 'string' ? email : undefined,
    roles: rolesFromGroups(claims, config),
    via: 'oidc',
  });
}
