// A real authorization server (oidc-provider) issues a client_credentials JWT access token for
// Warden's resource (RFC 8707 resource indicator) and environment; Warden, knowing only the
// issuer URL, discovers its keys and accepts the token, and refuses it wherever it does not
// belong: at another resource, or in another environment.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import type { AuthConfig, ExternalIssuerConfig } from '../src/config/config.js';
import { createJwtVerifier, type JwtVerifier } from '../src/identity/jwt-verifier.js';
import {
  TokenRejectedError,
  type TokenRejectionReason,
} from '../src/identity/token-rejected-error.js';
import { startAuthorizationServer, type AuthorizationServer } from './support/oidc-provider.js';

const RESOURCE = 'https://warden.example.com/mcp';
const ENVIRONMENT = 'production';
const CLIENT_ID = 'agent-finance';
const CLIENT_SECRET = 'a-long-random-client-secret-for-tests-only';

const AUTH: AuthConfig = {
  resource: RESOURCE,
  issuers: [],
  requiredScopes: ['mcp'],
  maxTokenLifetimeMs: 60 * 60_000,
  clockSkewMs: 30_000,
  mtls: false,
};

let authorizationServer: AuthorizationServer;
let issuer: string;
let accessToken: string;

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
  authorizationServer = await startAuthorizationServer({
    resource: RESOURCE,
    environment: ENVIRONMENT,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
  });
  issuer = authorizationServer.issuer;
  accessToken = await authorizationServer.requestToken();
});

after(async () => {
  await authorizationServer?.close();
});

test('the authorization server issues an RFC 9068 JWT access token for the resource', () => {
  const header = decodeProtectedHeader(accessToken);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.alg, 'RS256');
  assert.equal(header.kid, authorizationServer.keyId);
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
