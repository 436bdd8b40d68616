// Authentication, from the attacker's side, end to end through a real gateway: every way of
// getting in without a genuine, current token for this gateway, this endpoint and this environment
// is refused with its status, its WWW-Authenticate challenge (RFC 6750 §3, RFC 9728 §5.1) and its
// error code, and nothing at all reaches the upstream, which records every request it receives.
//
// Besides the built-in issuer, the gateway trusts a "partner" authorization server whose signing
// key this test holds: tokens that are genuine but wrong (audience, lifetime, no exp, unknown
// client) can only be refused for that one reason. The attacker's keys are trusted by nobody.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  base64url,
  decodeJwt,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import type { AgentConfig } from '../src/config/config.js';
import type { ErrorCode } from '../src/domain/errors.js';
import type { IssueTokenRequest } from '../src/identity/builtin-issuer.js';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import type { Revocation } from '../src/store/types.js';
import {
  startTestGateway,
  TEST_AGENT,
  TEST_RESOURCE,
  type TestGateway,
} from './support/gateway.js';
import {
  answerIn,
  assertWardenError,
  initializeRequest,
  openSession,
  postMcp,
  sendRaw,
  type RawReply,
} from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

const BUILTIN_ISSUER = new URL(TEST_RESOURCE).origin;
const METADATA = 'https://warden.test/.well-known/oauth-protected-resource';
const PARTNER_CLIENT = 'partner-client';
const OTHER_AGENT = 'other-agent';
const DOOMED_AGENT = 'doomed-agent';
const CC_AGENT = 'cc-agent';
const CC_SECRET = 'cc-agent-secret-for-tests-only-3b7f';
const CLOCK_SKEW_MS = 100;
const TOOLS_CALL = {
  jsonrpc: '2.0',
  id: 'call',
  method: 'tools/call',
  params: { name: 'echo', arguments: {} },
};

/** A tiny authorization server that only publishes its keys, and records who asked for them. */
interface KeyServer {
  readonly url: string;
  readonly requests: string[];
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  close(): Promise<void>;
}

async function startKeyServer(kid: string): Promise<KeyServer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(request.url ?? '');
    const body = JSON.stringify({ keys: [publicJwk] });
    response.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    privateKey,
    publicJwk,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

let upstream: ScriptedUpstream;
let partner: KeyServer;
let attacker: KeyServer;
let gateway: TestGateway;
let fixture: string;

before(async () => {
  upstream = await startScriptedUpstream();
  partner = await startKeyServer('partner-key');
  attacker = await startKeyServer('attacker-key');
  gateway = await startTestGateway({
    upstreams: { fixture: { url: upstream.url }, other: { url: upstream.url } },
    auth: {
      resource: TEST_RESOURCE,
      clock_skew: `${CLOCK_SKEW_MS}ms`,
      issuers: [
        { builtin: {} },
        { issuer: partner.url, jwks_uri: `${partner.url}/jwks`, algorithms: ['ES256'] },
      ],
    },
    agents: {
      [TEST_AGENT]: { roles: ['tester'], client_ids: [PARTNER_CLIENT] },
      [OTHER_AGENT]: { roles: ['tester'] },
      [DOOMED_AGENT]: { roles: ['tester'] },
      [CC_AGENT]: { roles: ['tester'], secret_hash: await hashClientSecret(CC_SECRET) },
    },
  });
  fixture = gateway.endpoint('fixture');
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
  await partner?.close();
  await attacker?.close();
});

beforeEach(() => {
  upstream.received.length = 0;
  attacker.requests.length = 0;
});

// ---------------------------------------------------------------------------------------------
// Helpers

/** The parameters of a `Bearer` challenge. */
function readChallenge(headers: IncomingHttpHeaders): Record<string, string> {
  const value = headers['www-authenticate'];
  assert.equal(typeof value, 'string', 'a WWW-Authenticate challenge');
  assert.match(value as string, /^Bearer /);
  return Object.fromEntries(
    [...(value as string).matchAll(/(\w+)="([^"]*)"/g)].map(([, name = '', text = '']) => [
      name,
      text,
    ]),
  );
}

interface Refusal {
  readonly code: ErrorCode;
  /** The RFC 6750 error in the challenge; undefined when there must be none. */
  readonly error: 'invalid_token' | 'invalid_request' | undefined;
  /** error.data.reason, when the refusal names one. */
  readonly reason?: string;
  readonly upstream?: string;
}

/** Asserts the reply refuses the request as `refusal` says, and that nothing went upstream. */
function assertRefused(reply: RawReply, refusal: Refusal): void {
  const body = assertWardenError(reply, refusal.code);
  const challenge = readChallenge(reply.headers);
  assert.equal(challenge['resource_metadata'], `${METADATA}/mcp/${refusal.upstream ?? 'fixture'}`);
  assert.equal(
    challenge['error'],
    refusal.error,
    `challenge: ${reply.headers['www-authenticate']}`,
  );
  if (refusal.reason !== undefined) {
    assert.equal((body.error?.data as { reason?: string } | undefined)?.reason, refusal.reason);
  }
  assert.equal(reply.headers['mcp-session-id'], undefined, 'no session was opened');
  assert.deepEqual(upstream.received, [], 'nothing was forwarded to the upstream');
}

/** A 401 invalid_token refusal for `reason`, with nothing forwarded. */
function assertInvalidToken(reply: RawReply, reason: string): void {
  assertRefused(reply, { code: 'WARDEN_INVALID_TOKEN', error: 'invalid_token', reason });
}

/** An initialize with `Authorization: Bearer <token>`: what a client sends first. */
function initializeWith(token: string, url = fixture): Promise<RawReply> {
  return postMcp(url, initializeRequest(), { headers: { authorization: `Bearer ${token}` } });
}

/** A registry entry to name in an issue request: the issuer reads only the id. */
function registered(id: string): AgentConfig {
  return {
    id,
    roles: [],
    tenant: undefined,
    clientIds: [],
    secretHash: undefined,
    jwks: undefined,
    mtlsIdentity: undefined,
  };
}

/** A token from the gateway's built-in issuer, with its id. */
async function issue(
  request: Omit<IssueTokenRequest, 'agent'> & { readonly agent?: string } = {},
): Promise<{ token: string; tokenId: string }> {
  assert.ok(gateway.issuer, 'the test gateway has a built-in issuer');
  const { agent = TEST_AGENT, ...rest } = request;
  const issued = await gateway.issuer.issueToken({ ...rest, agent: registered(agent) });
  return { token: issued.token, tokenId: issued.tokenId };
}

function revocation(kind: Revocation['kind'], subject: string): Revocation {
  const revokedAt = Date.now();
  return {
    kind,
    subject,
    revokedAt,
    expiresAt: revokedAt + 3_600_000,
    reason: 'authentication test',
    revokedBy: 'test',
  };
}

/** Claims as a genuine token of the partner issuer carries them, `overrides` applied. */
function partnerClaims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: partner.url,
    aud: TEST_RESOURCE,
    sub: PARTNER_CLIENT,
    client_id: PARTNER_CLIENT,
    warden_env: 'development',
    jti: `partner-${now}-${Math.random()}`,
    iat: now,
    exp: now + 300,
    ...overrides,
  };
}

/** Signs claims as a JWT access token, with any protected header the test wants. */
function sign(
  claims: JWTPayload,
  key: CryptoKey | Uint8Array,
  header: Record<string, unknown>,
): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({
    typ: 'at+jwt',
    ...header,
  } as Parameters<SignJWT['setProtectedHeader']>[0]);
  return jwt.sign(key);
}

function signAsPartner(claims: JWTPayload): Promise<string> {
  return sign(claims, partner.privateKey, { alg: 'ES256', kid: 'partner-key' });
}

/** A token whose parts are given as JSON and raw signature text: what no library would sign. */
function forge(header: Record<string, unknown>, payload: JWTPayload, signature: string): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part(header)}.${part(payload)}.${signature}`;
}

/** Opens a session as `token`, proves it works, and returns its id. */
async function openWorkingSession(token: string, url = fixture): Promise<string> {
  const headers = { authorization: `Bearer ${token}` };
  const sessionId = await openSession(url, headers);
  const reply = await postMcp(url, TOOLS_CALL, { sessionId, headers });
  assert.equal(reply.status, 200, reply.text);
  assert.ok(answerIn(reply, 'call').result, reply.text);
  upstream.received.length = 0;
  return sessionId;
}

function callTool(token: string, sessionId: string, url = fixture): Promise<RawReply> {
  return postMcp(url, TOOLS_CALL, { sessionId, headers: { authorization: `Bearer ${token}` } });
}

async function withSdkClient<T>(
  url: string,
  token: string,
  run: (client: Client) => Promise<T>,
): Promise<T> {
  const client = new Client({ name: 'authentication-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

async function requestClientCredentialsToken(form: Record<string, string>): Promise<Response> {
  return fetch(`${gateway.url}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CC_AGENT}:${CC_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...form }),
  });
}

// ---------------------------------------------------------------------------------------------
// No credentials, or credentials sent the wrong way

describe('credentials missing or sent the wrong way', () => {
  test('refuses a request without a token with 401 and a bare challenge naming the metadata', async () => {
    const reply = await postMcp(fixture, initializeRequest());
    assertRefused(reply, { code: 'WARDEN_UNAUTHENTICATED', error: undefined });
    // RFC 6750 §3.1: a request without credentials gets no error code, only where to get some.
    assert.equal(
      reply.headers['www-authenticate'],
      `Bearer resource_metadata="${METADATA}/mcp/fixture"`,
    );
    for (const method of ['GET', 'DELETE']) {
      const other = await sendRaw(fixture, {
        method,
        headers: { accept: 'text/event-stream', 'mcp-session-id': 'any' },
      });
      assertRefused(other, { code: 'WARDEN_UNAUTHENTICATED', error: undefined });
    }
  });

  test('challenges at the metadata of the endpoint called, not of another', async () => {
    const reply = await postMcp(gateway.endpoint('other'), initializeRequest());
    assertRefused(reply, { code: 'WARDEN_UNAUTHENTICATED', error: undefined, upstream: 'other' });
  });

  test('refuses a token in the query string with 400, even next to a valid header', async () => {
    const { token } = await issue();
    for (const name of ['access_token', 'ACCESS_TOKEN', 'token', 'id_token', 'api_key']) {
      const reply = await postMcp(`${fixture}?${name}=${token}`, initializeRequest(), {
        headers: { authorization: `Bearer ${token}` },
      });
      assertRefused(reply, {
        code: 'WARDEN_INVALID_AUTH_REQUEST',
        error: 'invalid_request',
        reason: 'token_in_query',
      });
    }
    const alone = await postMcp(`${fixture}?access_token=${token}`, initializeRequest());
    assertRefused(alone, { code: 'WARDEN_INVALID_AUTH_REQUEST', error: 'invalid_request' });
  });

  test('refuses two Authorization headers with 400, whichever of them is valid', async () => {
    const { token } = await issue();
    for (const pair of [
      [`Bearer ${token}`, 'Bearer forged.by.attacker'],
      ['Bearer forged.by.attacker', `Bearer ${token}`],
      [`Bearer ${token}`, `Bearer ${token}`],
    ]) {
      const reply = await sendTwoAuthorizationHeaders(pair);
      assertRefused(reply, { code: 'WARDEN_INVALID_AUTH_REQUEST', error: 'invalid_request' });
    }
  });

  test('refuses the Basic scheme with 401 and a bare challenge, as if no token was sent', async () => {
    // RFC 6750 §3.1: a client that used an unsupported scheme gets no error code, only the
    // challenge telling it where to get a bearer token (so an MCP client starts its OAuth flow).
    const basic = `Basic ${Buffer.from(`${CC_AGENT}:${CC_SECRET}`).toString('base64')}`;
    const { token } = await issue();
    for (const authorization of [basic, `basic ${token}`, `Digest username="${CC_AGENT}"`]) {
      const reply = await postMcp(fixture, initializeRequest(), { headers: { authorization } });
      assertRefused(reply, {
        code: 'WARDEN_UNAUTHENTICATED',
        error: undefined,
        reason: 'unsupported_scheme',
      });
    }
  });

  test('refuses a malformed Bearer header with 400 invalid_request', async () => {
    for (const authorization of [
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer <script>',
      'Bearer"x"',
    ]) {
      const reply = await postMcp(fixture, initializeRequest(), { headers: { authorization } });
      assertRefused(reply, { code: 'WARDEN_INVALID_AUTH_REQUEST', error: 'invalid_request' });
    }
  });

  test('refuses an oversized token (9 KiB) unparsed', async () => {
    const { token } = await issue();
    const [header = '', , signature = ''] = token.split('.');
    const padded = `${header}.${'A'.repeat(9 * 1024)}.${signature}`;
    assertInvalidToken(await initializeWith(padded), 'token_too_large');
  });
});

/** Sends an initialize with two Authorization header lines, as a confused proxy chain might. */
function sendTwoAuthorizationHeaders(values: readonly string[]): Promise<RawReply> {
  const url = new URL(fixture);
  const body = JSON.stringify(initializeRequest());
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text }),
        );
      },
    );
    // One header line per value: how a client (or a proxy appending its own) sends it twice.
    request.setHeader('authorization', [...values]);
    request.on('error', reject);
    request.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// Forged and doctored tokens

describe('forged and doctored tokens', () => {
  test('refuses a token signed with alg none', async () => {
    const { token } = await issue();
    const claims = decodeJwt(token);
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const unsigned = forge({ alg, typ: 'at+jwt' }, claims, '');
      assertInvalidToken(await initializeWith(unsigned), 'algorithm_refused');
    }
  });

  test("refuses HS256 signed with the built-in issuer's public key as the HMAC secret", async () => {
    // The key confusion attack: fetch the public key (no token needed), then sign with it as a
    // shared secret, hoping the verifier feeds the same key material to HMAC.
    const jwksReply = await fetch(`${gateway.url}/.well-known/jwks.json`);
    assert.equal(jwksReply.status, 200);
    const { keys } = (await jwksReply.json()) as { keys: JWK[] };
    const [jwk] = keys;
    assert.ok(jwk?.kid, 'the JWKS publishes the signing key');
    const publicKey = await importJWK(jwk, jwk.alg ?? 'ES256');
    const pem = await exportSPKI(publicKey as CryptoKey);
    const { token } = await issue();
    const claims = decodeJwt(token);
    const encoder = new TextEncoder();
    for (const secret of [pem, pem.trim(), JSON.stringify(jwk), jwk.x ?? '']) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const confused = await sign(claims, encoder.encode(secret), { alg, kid: jwk.kid });
        assertInvalidToken(await initializeWith(confused), 'algorithm_refused');
      }
    }
  });

  test('refuses a token signed by a key the issuer never published (unknown kid)', async () => {
    const { token } = await issue();
    const claims = decodeJwt(token);
    for (const kid of ['attacker-key', 'retired-key-2019']) {
      const forged = await sign(claims, attacker.privateKey, { alg: 'ES256', kid });
      assertInvalidToken(await initializeWith(forged), 'key_unknown');
    }
  });

  test('refuses a kid carrying path or SQL characters before it is looked up anywhere', async () => {
    const { token } = await issue();
    const claims = decodeJwt(token);
    for (const kid of [
      '../../../../etc/passwd',
      '/dev/null',
      "x' OR '1'='1",
      'k; DROP TABLE signing_keys; --',
      'k\u0000',
      'k'.repeat(129),
    ]) {
      const forged = await sign(claims, attacker.privateKey, { alg: 'ES256', kid });
      assertInvalidToken(await initializeWith(forged), 'kid_invalid');
    }
  });

  test('refuses jku, x5u, jwk and x5c headers, and never fetches what they point to', async () => {
    const { token } = await issue();
    const claims = decodeJwt(token);
    const headers: Record<string, unknown>[] = [
      { jku: `${attacker.url}/jwks` },
      { x5u: `${attacker.url}/certificate.pem` },
      { jwk: attacker.publicJwk },
      { x5c: ['MIIBszCCAVmgAwIBAgIUQ2hhbGxlbmdlZA=='] },
    ];
    for (const header of headers) {
      const forged = await sign(claims, attacker.privateKey, {
        alg: 'ES256',
        kid: 'attacker-key',
        ...header,
      });
      assertInvalidToken(await initializeWith(forged), 'key_header_refused');
    }
    assert.deepEqual(attacker.requests, [], "the gateway never fetched the attacker's keys");
  });

  test('refuses a token whose payload was changed after signing', async () => {
    const { token } = await issue();
    const [header = '', , signature = ''] = token.split('.');
    const claims = decodeJwt(token);
    for (const change of [
      { client_id: OTHER_AGENT },
      { sub: 'admin@example.com' },
      { exp: (claims.exp ?? 0) + 3600 },
      { aud: `${TEST_RESOURCE}/other` },
    ]) {
      const tampered = `${header}.${base64url.encode(JSON.stringify({ ...claims, ...change }))}.${signature}`;
      assertInvalidToken(await initializeWith(tampered), 'signature_invalid');
    }
  });

  test('refuses a token from an issuer it does not trust', async () => {
    for (const iss of ['https://evil.example', `${BUILTIN_ISSUER}/`, 'https://warden.test.evil']) {
      const forged = await sign(partnerClaims({ iss }), attacker.privateKey, {
        alg: 'ES256',
        kid: 'attacker-key',
      });
      assertInvalidToken(await initializeWith(forged), 'issuer_unknown');
    }
    assert.deepEqual(attacker.requests, [], 'an untrusted iss is not a place to fetch keys from');
  });

  test("refuses a token in the trusted partner's name but signed by the attacker", async () => {
    const forged = await sign(partnerClaims(), attacker.privateKey, {
      alg: 'ES256',
      kid: 'partner-key',
    });
    assertInvalidToken(await initializeWith(forged), 'signature_invalid');
  });
});

// ---------------------------------------------------------------------------------------------
// Genuine tokens that are not good here

describe('genuine tokens refused where they do not belong', () => {
  test('accepts a token from the partner issuer it trusts (the control for what follows)', async () => {
    const sessionId = await openWorkingSession(await signAsPartner(partnerClaims()));
    assert.equal(typeof sessionId, 'string');
  });

  test('refuses a token for another resource (wrong audience)', async () => {
    for (const aud of [
      'https://other-warden.example/mcp',
      'https://warden.test/mcpx',
      'https://warden.test',
      `${TEST_RESOURCE}/fixture/../other`,
      [],
    ]) {
      const token = await signAsPartner(partnerClaims({ aud }));
      assertInvalidToken(await initializeWith(token), 'audience_mismatch');
    }
  });

  test('refuses a token without exp', async () => {
    const claims = partnerClaims();
    delete claims.exp;
    assertInvalidToken(await initializeWith(await signAsPartner(claims)), 'expiry_missing');
  });

  test('refuses a token that lives longer than the gateway accepts', async () => {
    const now = Math.floor(Date.now() / 1000);
    // Without iat, what is left of its life counts.
    const withoutIat = partnerClaims({ exp: now + 2 * 3600 });
    delete withoutIat.iat;
    for (const claims of [partnerClaims({ iat: now, exp: now + 2 * 3600 }), withoutIat]) {
      assertInvalidToken(await initializeWith(await signAsPartner(claims)), 'lifetime_exceeded');
    }
  });

  test('refuses a token naming a client that is no registered agent', async () => {
    const token = await signAsPartner(
      partnerClaims({ client_id: 'stranger-client', sub: 'stranger-client' }),
    );
    assertInvalidToken(await initializeWith(token), 'agent_unknown');
  });

  test('refuses an expired token, and the very token it accepted a moment before', async () => {
    // Long enough for a loaded machine to open a working session with it first.
    const { token } = await issue({ ttlMs: 4000 });
    const sessionId = await openWorkingSession(token);
    const expiresAt = (decodeJwt(token).exp ?? 0) * 1000;
    // exp is in whole seconds and so is the verifier's clock (jose floors it): the token may be
    // honoured until the end of its exp second, plus the skew. At most ~5.2 s from issue.
    await sleep(Math.max(0, expiresAt + 1000 + CLOCK_SKEW_MS + 50 - Date.now()));
    const reply = await callTool(token, sessionId);
    assertInvalidToken(reply, 'token_expired');
    assertInvalidToken(await initializeWith(token), 'token_expired');
  });

  test('refuses a token for another endpoint of this gateway, and accepts it at its own', async () => {
    const { token } = await issue({ resource: `${TEST_RESOURCE}/other` });
    assert.equal(decodeJwt(token).aud, 'https://warden.test/mcp/other');
    assertInvalidToken(await initializeWith(token), 'audience_mismatch');
    await openWorkingSession(token, gateway.endpoint('other'));
  });

  test('refuses a certificate-bound token presented without its certificate', async () => {
    const thumbprint = createHash('sha256').update('the agent certificate').digest('base64url');
    const { token } = await issue({ certificateThumbprint: thumbprint });
    assertRefused(await initializeWith(token), {
      code: 'WARDEN_CERTIFICATE_REQUIRED',
      error: 'invalid_token',
      reason: 'certificate_required',
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Revocation and stolen sessions

describe('revocation and stolen sessions', () => {
  test('a revoked token fails on the very next request', async () => {
    const { token, tokenId } = await issue();
    const sessionId = await openWorkingSession(token);
    await gateway.revoke(revocation('token', tokenId));
    assertInvalidToken(await callTool(token, sessionId), 'revoked');
    assertInvalidToken(await initializeWith(token), 'revoked');
    // Only that token: another of the same agent still works.
    await openWorkingSession((await issue()).token);
  });

  test('a revoked agent loses every token it holds', async () => {
    const first = await issue({ agent: DOOMED_AGENT });
    const second = await issue({ agent: DOOMED_AGENT, user: 'someone@example.com' });
    const sessionId = await openWorkingSession(first.token);
    await gateway.revoke(revocation('agent', DOOMED_AGENT));
    assertInvalidToken(await callTool(first.token, sessionId), 'revoked');
    assertInvalidToken(await initializeWith(second.token), 'revoked');
  });

  test('a revoked user loses every token issued on their behalf, other users keep theirs', async () => {
    const mallory = await issue({ user: 'mallory@example.com' });
    const viaOtherAgent = await issue({ agent: OTHER_AGENT, user: 'mallory@example.com' });
    const alice = await issue({ user: 'alice@example.com' });
    const sessionId = await openWorkingSession(mallory.token);
    await gateway.revoke(revocation('user', 'mallory@example.com'));
    assertInvalidToken(await callTool(mallory.token, sessionId), 'revoked');
    assertInvalidToken(await initializeWith(viaOtherAgent.token), 'revoked');
    await openWorkingSession(alice.token);
  });

  test("refuses another identity using a session's id with 404, and forwards nothing", async () => {
    const owner = (await issue({ user: 'alice@example.com' })).token;
    const sessionId = await openWorkingSession(owner);
    const thieves = [
      (await issue({ agent: OTHER_AGENT, user: 'alice@example.com' })).token,
      (await issue({ user: 'eve@example.com' })).token,
      (await issue()).token,
    ];
    for (const thief of thieves) {
      const headers = { authorization: `Bearer ${thief}`, 'mcp-session-id': sessionId };
      assertWardenError(await callTool(thief, sessionId), 'WARDEN_SESSION_NOT_FOUND', 'call');
      assertWardenError(
        await sendRaw(fixture, { headers: { ...headers, accept: 'text/event-stream' } }),
        'WARDEN_SESSION_NOT_FOUND',
      );
      assertWardenError(
        await sendRaw(fixture, { method: 'DELETE', headers }),
        'WARDEN_SESSION_NOT_FOUND',
      );
    }
    assert.deepEqual(upstream.received, [], 'nothing was forwarded to the upstream');
    const own = await callTool(owner, sessionId);
    assert.equal(own.status, 200, 'the session is intact for its owner');
  });
});

// ---------------------------------------------------------------------------------------------
// Replicas sharing one store: the same keys, other environments, other registries

describe('gateways sharing one store', () => {
  let dir: string;
  let production: TestGateway;
  let staging: TestGateway;
  let productionAfterChange: TestGateway;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-auth-'));
    const store = `sqlite:${join(dir, 'warden.db')}`;
    const upstreams = { fixture: { url: upstream.url } };
    // Replicas sharing a store each write their own audit chain (stream).
    const replica = (stream: string) => ({
      store,
      upstreams,
      log: { level: 'silent' },
      audit: { stream, hash_key_file: join(dir, 'audit-hash.key') },
    });
    production = await startTestGateway({
      ...replica('production-a'),
      environment: 'production',
      agents: { [TEST_AGENT]: { roles: ['tester'] }, 'retired-bot': { roles: ['tester'] } },
    });
    staging = await startTestGateway({ ...replica('staging-a'), environment: 'staging' });
    // A replica of production whose configuration no longer lists retired-bot.
    productionAfterChange = await startTestGateway({
      ...replica('production-b'),
      environment: 'production',
    });
  });

  after(async () => {
    await productionAfterChange?.close();
    await staging?.close();
    await production?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('refuses a token minted for another environment with the very same keys', async () => {
    const stagingToken = await staging.token();
    const productionToken = await production.token();
    assert.equal(
      JSON.stringify(decodeJwt(stagingToken).aud),
      JSON.stringify(decodeJwt(productionToken).aud),
      'same resource',
    );
    // Genuine at home, and the signature checks out at production: only the environment differs.
    await openSession(staging.endpoint('fixture'), { authorization: `Bearer ${stagingToken}` });
    upstream.received.length = 0;
    const reply = await initializeWith(stagingToken, production.endpoint('fixture'));
    assertInvalidToken(reply, 'environment_mismatch');
    await openSession(production.endpoint('fixture'), {
      authorization: `Bearer ${productionToken}`,
    });
  });

  test('refuses a token of an agent removed from the configuration', async () => {
    const token = await production.token({ agent: 'retired-bot' });
    await openSession(production.endpoint('fixture'), { authorization: `Bearer ${token}` });
    upstream.received.length = 0;
    const reply = await initializeWith(token, productionAfterChange.endpoint('fixture'));
    assertInvalidToken(reply, 'agent_unknown');
  });
});

// ---------------------------------------------------------------------------------------------
// What is public, and the front door

describe('public routes and the client_credentials flow', () => {
  test('publishes RFC 9728 metadata for the gateway and for each endpoint, without a token', async () => {
    const servers = [BUILTIN_ISSUER, partner.url];
    for (const [path, resource] of [
      ['/.well-known/oauth-protected-resource', TEST_RESOURCE],
      ['/.well-known/oauth-protected-resource/mcp', TEST_RESOURCE],
      ['/.well-known/oauth-protected-resource/mcp/fixture', `${TEST_RESOURCE}/fixture`],
      ['/.well-known/oauth-protected-resource/mcp/other', `${TEST_RESOURCE}/other`],
    ] as const) {
      const reply = await fetch(`${gateway.url}${path}`);
      assert.equal(reply.status, 200, path);
      assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
      const metadata = (await reply.json()) as Record<string, unknown>;
      assert.equal(metadata['resource'], resource, path);
      assert.deepEqual(metadata['authorization_servers'], servers, path);
      assert.deepEqual(metadata['bearer_methods_supported'], ['header']);
    }
    const unknown = await fetch(`${gateway.url}/.well-known/oauth-protected-resource/mcp/nope`);
    assert.equal(unknown.status, 404, 'no metadata for an upstream that does not exist');
    await unknown.body?.cancel();
  });

  test('the challenge of a refused request leads to the metadata that is served', async () => {
    const refused = await postMcp(fixture, initializeRequest());
    const url = new URL(readChallenge(refused.headers)['resource_metadata'] ?? '');
    const reply = await fetch(`${gateway.url}${url.pathname}`);
    assert.equal(
      ((await reply.json()) as { resource: string }).resource,
      `${TEST_RESOURCE}/fixture`,
    );
  });

  test('health probes, keys and issuer metadata need no token', async () => {
    for (const path of [
      '/healthz',
      '/readyz',
      '/.well-known/jwks.json',
      '/.well-known/oauth-authorization-server',
    ]) {
      const reply = await fetch(`${gateway.url}${path}`);
      assert.equal(reply.status, 200, path);
      await reply.body?.cancel();
    }
  });

  test('an agent gets a token with its client secret and calls a tool through the gateway', async () => {
    const reply = await requestClientCredentialsToken({});
    const body = (await reply.json()) as { access_token: string; token_type: string };
    assert.equal(reply.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    const claims = decodeJwt(body.access_token);
    assert.equal(claims['client_id'], CC_AGENT);
    assert.equal(claims.aud, TEST_RESOURCE);
    const result = await withSdkClient(fixture, body.access_token, (client) =>
      client.callTool({ name: 'echo', arguments: {} }),
    );
    assert.deepEqual(result.content, [{ type: 'text', text: 'echoed' }]);
    assert.ok(upstream.received.some(({ message }) => message?.method === 'tools/call'));
  });

  test('a token asked for one endpoint (RFC 8707 resource) works there and nowhere else', async () => {
    const reply = await requestClientCredentialsToken({ resource: `${TEST_RESOURCE}/other` });
    const { access_token: token } = (await reply.json()) as { access_token: string };
    assert.equal(reply.status, 200);
    assertInvalidToken(await initializeWith(token), 'audience_mismatch');
    const tools = await withSdkClient(gateway.endpoint('other'), token, (client) =>
      client.listTools(),
    );
    assert.deepEqual(
      tools.tools.map((tool) => tool.name),
      ['echo'],
    );
  });

  test('a wrong client secret gets no token', async () => {
    const reply = await fetch(`${gateway.url}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CC_AGENT}:not-the-secret`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    assert.equal(reply.status, 401);
    assert.equal(((await reply.json()) as { error: string }).error, 'invalid_client');
  });
});
