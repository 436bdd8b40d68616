/**
 * Warden as a client of the company's OpenID Provider: the provider's metadata, discovered once
 * on first use (a failure is not cached, so the next login tries again), and an openid-client
 * Configuration per request, carrying the current client secret and clock.
 */
import * as client from 'openid-client';
import type { CompanyLoginConfig } from '../../config/login-schema.js';
import { CompanyLoginError, toCompanyLoginError } from './company-login-error.js';

export interface CompanyProviderOptions {
  /** Replaces global fetch for every request to the provider (tests, proxies). */
  readonly fetch: ((url: string, init: RequestInit) => Promise<Response>) | undefined;
  /** Per-request timeout towards the provider. */
  readonly timeoutMs: number;
}

export interface CompanyProvider {
  /** A Configuration for one request; `clientSecret` undefined when no secret is needed. */
  configure(clientSecret: string | undefined, nowMs: number): Promise<client.Configuration>;
  /** Keeps the provider's keys fetched during a request for the next one. */
  keepKeys(configuration: client.Configuration): void;
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/** Plain http is accepted for an issuer on loopback only (tests, a provider beside Warden). */
function allowsPlainHttp(issuer: URL): boolean {
  return issuer.protocol === 'http:' && LOOPBACK_HOST.test(issuer.hostname);
}

export function createCompanyProvider(
  config: CompanyLoginConfig,
  options: CompanyProviderOptions,
): CompanyProvider {
  const issuer = new URL(config.issuer);
  const timeout = Math.max(1, Math.ceil(options.timeoutMs / 1000));
  const { fetch } = options;
  // openid-client's fetch options are RequestInit in all but their optional-property types.
  const customFetch: client.CustomFetch | undefined =
    fetch && ((url, init) => fetch(url, init as RequestInit));
  const extensions = [
    // Verify the ID token's signature too: the token endpoint's TLS is not the only guard.
    client.enableNonRepudiationChecks,
    ...(allowsPlainHttp(issuer) ? [client.allowInsecureRequests] : []),
  ];
  let discovered: Promise<client.ServerMetadata> | undefined;
  let keys: ReturnType<typeof client.getJwksCache>;

  async function discover(): Promise<client.ServerMetadata> {
    if (issuer.protocol !== 'https:' && !allowsPlainHttp(issuer))
      throw new CompanyLoginError(
        'LOGIN_DISCOVERY_FAILED',
        `the identity provider ${config.issuer} must be reached over https (plain http only on loopback)`,
      );
    try {
      const configuration = await client.discovery(issuer, config.clientId, undefined, undefined, {
        execute: extensions,
        timeout,
        ...(customFetch && { [client.customFetch]: customFetch }),
      });
      return configuration.serverMetadata();
    } catch (error) {
      throw toCompanyLoginError(error, 'discovery', config.issuer);
    }
  }

  function metadata(): Promise<client.ServerMetadata> {
    discovered ??= discover().catch((error: unknown) => {
      discovered = undefined;
      throw error;
    });
    return discovered;
  }

  return {
    async configure(clientSecret, nowMs) {
      const server = await metadata();
      const configuration = new client.Configuration(
        server,
        config.clientId,
        {
          ...(clientSecret !== undefined && { client_secret: clientSecret }),
          // openid-client reads the time from Date.now(); Warden's clock may be injected.
          [client.clockSkew]: Math.round((nowMs - Date.now()) / 1000),
        },
        clientSecret ? clientAuthenticationFor(server, clientSecret) : client.None(),
      );
      configuration.timeout = timeout;
      if (customFetch) configuration[client.customFetch] = customFetch;
      for (const extension of extensions) extension(configuration);
      if (keys) client.setJwksCache(configuration, keys);
      return configuration;
    },
    keepKeys(configuration) {
      keys = client.getJwksCache(configuration) ?? keys;
    },
  };
}

/** client_secret_basic, the OAuth default, unless the provider only takes the secret in the body. */
function clientAuthenticationFor(
  server: client.ServerMetadata,
  clientSecret: string,
): client.ClientAuth {
  const methods = server.token_endpoint_auth_methods_supported;
  return methods &&
    !methods.includes('client_secret_basic') &&
    methods.includes('client_secret_post')
    ? client.ClientSecretPost(clientSecret)
    : client.ClientSecretBasic(clientSecret);
}
