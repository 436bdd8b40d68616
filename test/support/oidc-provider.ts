/**
 * A real OAuth 2.1 authorization server (oidc-provider) on 127.0.0.1, port 0, for tests: one
 * confidential client that may use the client_credentials grant, RFC 8707 resource indicators,
 * and RFC 9068 JWT access tokens for one resource, carrying Warden's environment claim.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

export interface AuthorizationServerOptions {
  /** The only resource it issues tokens for (the gateway's `auth.resource`). */
  readonly resource: string;
  /** Written into every access token's `warden_env` claim. */
  readonly environment: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Access token lifetime in seconds; 300 by default. */
  readonly accessTokenTtlSeconds?: number;
}

export interface AuthorizationServer {
  /** Its issuer URL, e.g. http://127.0.0.1:41234; Warden discovers the keys from it. */
  readonly issuer: string;
  /** The `kid` of its signing key. */
  readonly keyId: string;
  /** A plain RFC 6749 §4.4 token request as the client, for `resource`; the access token. */
  requestToken(resource?: string): Promise<string>;
  close(): Promise<void>;
}

/** The slice of oidc-provider's API used here (the package ships no type declarations). */
interface OidcModule {
  readonly Provider: new (
    issuer: string,
    configuration: Record<string, unknown>,
  ) => { callback(): (request: IncomingMessage, response: ServerResponse) => void };
  readonly errors: { readonly InvalidTarget: new () => Error };
}

const KEY_ID = 'idp-rs256';
const SCOPE = 'mcp';

export async function startAuthorizationServer(
  options: AuthorizationServerOptions,
): Promise<AuthorizationServer> {
  const { resource, environment, clientId, clientSecret } = options;
  const ttl = options.accessTokenTtlSeconds ?? 300;
  const restoreConsole = silenceOidcProviderNotices();
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // @ts-expect-error -- oidc-provider ships no type declarations; OidcModule types what is used.
  const { Provider, errors } = (await import('oidc-provider')) as OidcModule;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: KEY_ID, alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPE,
      },
    ],
    scopes: [SCOPE],
    ttl: { ClientCredentials: ttl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, indicator: string) => {
          if (indicator !== resource) throw new errors.InvalidTarget();
          return {
            scope: SCOPE,
            accessTokenFormat: 'jwt',
            audience: resource,
            accessTokenTTL: ttl,
          };
        },
      },
    },
    // Bind every access token to the deployment's environment (Warden's environment_claim).
    extraTokenClaims: () => ({ warden_env: environment }),
  });
  server.on('request', provider.callback());

  return {
    issuer,
    keyId: KEY_ID,
    async requestToken(target = resource) {
      const metadata = (await (
        await fetch(`${issuer}/.well-known/openid-configuration`)
      ).json()) as { token_endpoint: string };
      const basic = Buffer.from(
        `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`,
      ).toString('base64');
      const response = await fetch(metadata.token_endpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          resource: target,
          scope: SCOPE,
        }),
        signal: AbortSignal.timeout(5_000),
      });
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(response.status, 200, JSON.stringify(body));
      assert.equal(body['token_type'], 'Bearer');
      assert.equal(typeof body['access_token'], 'string');
      return body['access_token'] as string;
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
      restoreConsole();
    },
  };
}

/**
 * oidc-provider warns about its development defaults (and Node 20) on the console: keep test
 * output clean. Returns the function that puts the console back.
 */
export function silenceOidcProviderNotices(): () => void {
  const original = { warn: console.warn, info: console.info };
  const quiet =
    (write: (...args: unknown[]) => void) =>
    (...args: unknown[]): void => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider ')) return;
      write(...args);
    };
  console.warn = quiet(original.warn);
  console.info = quiet(original.info);
  return () => Object.assign(console, original);
}
