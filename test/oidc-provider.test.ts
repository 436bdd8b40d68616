// A real authorization server (oidc-provider) issues a client_credentials JWT access token for
// Warden's resource (RFC 8707 resource indicator) and environment; Warden, knowing only the
// issuer URL, discovers its keys and accepts the token, and refuses it wherever it does not
// belong: at another resource, or in another environment.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import type { AuthConfig, ExternalIssuerConfig } from '../src/config/config.js';
import { createJwtVerifier, type JwtVerifier } from '../src/identity/jwt-verifier.js';
import {
  TokenRejectedError,
  type TokenRejectionReason,
} from '../src/identity/token-rejected-error.js';

const RESOURCE = 'https://warden.example.com/mcp';
const ENVIRONMENT = 'production';
const CLIENT_ID = 'agent-finance';
const CLIENT_SECRET = 'a-long-random-client-secret-for-tests-only';

/** The slice of oidc-provider's API these tests use (the package ships no type declarations). */
interface OidcModule {
  readonly Provider: new (
    issuer: string,
    configuration: Record<string, unknown>,
  ) => { callback(): (request: IncomingMessage, response: ServerResponse) => void };
  readonly errors: { readonly InvalidTarget: new () => Error };
}

const AUTH: AuthConfig = {
  resource: RESOURCE,
  issuers: [],
  requiredScopes: ['mcp'],
  maxTokenLifetimeMs: 60 * 60_000,
  clockSkewMs: 30_000,
  mtls: false,
};

const server = createServer();
let issuer: string;
let accessToken: string;
const quietedConsole = { warn: console.warn, info: console.info };

/** oidc-provider warns about its dev defaults (and Node 20) on the console: keep test output clean. */
function silenceOidcProviderNotices(): void {
  const quiet =
    (write: (...args: unknown[]) => void) =>
    (...args: unknown[]): void => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider ')) return;
      write(...args);
    };
  console.warn = quiet(quietedConsole.warn);
  console.info = quiet(quietedConsole.info);
}

async function startAuthorizationServer(): Promise<void> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // @ts-expect-error -- oidc-provider ships no type declarations; OidcModule types what is used.
  const { Provider, errors } = (await import('oidc-provider')) as OidcModule;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = {
    ...(await exportJWK(privateKey)),
    kid: 'idp-rs256',
    alg: 'RS256',
    use: 'sig',
  };

  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'mcp',
      },
    ],
    scopes: ['mcp'],
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, indicator: string) => {
          if (indicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: 'mcp',
            accessTokenFormat: 'jwt',
            audience: RESOURCE,
            accessTokenTTL: 300,
          };
        },
      },
    },
    // Bind every access token to this deployment's environment (Warden's environment_claim).
    extraTokenClaims: () => ({ warden_env: ENVIRONMENT }),
  });
  server.on('request', provider.callback());
}

/** A plain RFC 6749 §4.4 token request, as an agent would send it. */
async function requestClientCredentialsToken(): Promise<string> {
  const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    token_endpoint: string;
  };
  const basic = Buffer.from(
    `${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`,
  ).toString('base64');
  const response = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      resource: RESOURCE,
      scope: 'mcp',
    }),
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.token_type, 'Bearer');
  assert.equal(typeof body.access_token, 'string');
  return body.access_token as string;
}

function createVerifierFor(options: { resource?: string; environment?: string } = {}): JwtVerifier {
  const external: ExternalIssuerConfig = {
    kind: 'external',
    issuer,
    jwksUri: undefined,
    algorithms: ['RS256', 'ES256'],
    agentClaim: 'client_id',
    environmentClaim: 'warden_env',
  };
  return createJwtVerifier({
    auth: { ...AUTH, resource: options.resource ?? RESOURCE },
    environment: options.environment ?? ENVIRONMENT,
    issuers: [external],
    jwks: { timeoutMs: 5_000 },
  });
}

before(async () => {
  silenceOidcProviderNotices();
  await startAuthorizationServer();
  accessToken = await requestClientCredentialsToken();
});

after(async () => {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
  Object.assign(console, quietedConsole);
});

test('the authorization server issues an RFC 9068 JWT access token for the resource', () => {
  const header = decodeProtectedHeader(accessToken);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.alg, 'RS256');
  assert.equal(header.kid, 'idp-rs256');
});

test('accepts the token, naming the agent by client_id, after discovering the keys', async () => {
  const verified = await createVerifierFor().verify(accessToken);
  assert.equal(verified.issuer, issuer);
  assert.equal(verified.agentClaimValue, CLIENT_ID);
  assert.equal(verified.subject, CLIENT_ID, 'client_credentials: the client is its own subject');
  assert.deepEqual(verified.scopes, ['mcp']);
  assert.deepEqual(verified.audience, [RESOURCE]);
  assert.equal(typeof verified.tokenId, 'string');
  assert.ok(verified.expiresAt - (verified.issuedAt ?? 0) <= 300_000);
});

async function assertRefused(verifier: JwtVerifier, reason: TokenRejectionReason): Promise<void> {
  await assert.rejects(verifier.verify(accessToken), (error: unknown) => {
    assert.ok(error instanceof TokenRejectedError);
    assert.equal(error.reason, reason);
    return true;
  });
}

test('refuses the token at a gateway serving another resource (wrong audience)', async () => {
  const verifier = createVerifierFor({ resource: 'https://other-warden.example.com/mcp' });
  await assertRefused(verifier, 'audience_mismatch');
});

test('refuses the token at a gateway of another environment', async () => {
  await assertRefused(createVerifierFor({ environment: 'staging' }), 'environment_mismatch');
});
