/**
 * Certificate-bound tokens from the built-in token endpoint (RFC 8705): a real HTTPS listener
 * with a client CA in `optional` mode, agents authenticating with their certificate alone
 * (`tls_client_auth`, `self_signed_tls_client_auth`), and the tokens they get working only with
 * that certificate. Tried from the attacker's side: another agent's certificate, a foreign CA,
 * a self-signed certificate whose key was never registered.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { issueCertificate } from '../src/identity/certificate-issuer.js';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import { writeDevCertificates } from '../src/identity/dev-certificates.js';
import { describeAuthorizationServer } from '../src/identity/token-endpoint.js';
import { freshSource, type AuditedGateway } from './support/audit-reader.js';
import { initializeRequest } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import {
  boundThumbprintOf,
  postMcpTls,
  readKeyPair,
  requestToken,
  sendTls,
  startMtlsGateway,
  thumbprintOf,
  type ClientKeyPair,
} from './support/tls-client.js';

const DAY_MS = 86_400_000;
const SECRET = 'plain-bot secret, long enough';

let workDir: string;
let ca: string;
let upstream: ScriptedUpstream;
let audited: AuditedGateway;
const clients: Record<string, ClientKeyPair> = {};

/** A self-signed client certificate, as a client registering its key in `jwks` makes one. */
function selfSigned(commonName: string): ClientKeyPair {
  const issued = issueCertificate({
    commonName,
    usage: 'client',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY_MS),
  });
  return { cert: issued.certificate, key: issued.privateKey };
}

function publicJwkOf(pair: ClientKeyPair): Record<string, unknown> {
  return new X509Certificate(pair.cert).publicKey.export({ format: 'jwk' }) as Record<
    string,
    unknown
  >;
}

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'warden-token-mtls-'));
  const pki = await writeDevCertificates(join(workDir, 'pki'), {
    agents: [{ id: 'research-bot' }, { id: 'other-bot' }, { id: 'plain-bot' }],
  });
  ca = readFileSync(pki.caCert, 'utf8');
  for (const agent of pki.agents) clients[agent.id] = readKeyPair(agent);
  // research-bot's very names, from a CA this gateway does not trust.
  const foreign = await writeDevCertificates(join(workDir, 'foreign'), {
    agents: [{ id: 'research-bot' }],
  });
  const [foreignAgent] = foreign.agents;
  assert.ok(foreignAgent);
  clients['foreign'] = readKeyPair(foreignAgent);
  clients['selfie'] = selfSigned('selfie-bot');
  clients['impostor'] = selfSigned('selfie-bot');

  upstream = await startScriptedUpstream();
  audited = await startMtlsGateway(
    'token-mtls',
    pki,
    {
      'research-bot': { mtls_identity: 'spiffe://warden.local/agent/research-bot' },
      'other-bot': { mtls_identity: 'spiffe://warden.local/agent/other-bot' },
      // Registered with a secret only: its CA-signed certificate names it, but not as mtls_identity.
      'plain-bot': { secret_hash: await hashClientSecret(SECRET) },
      'selfie-bot': { jwks: { keys: [publicJwkOf(client('selfie'))] } },
    },
    upstream.url,
  );
});

after(async () => {
  await audited?.close();
  await upstream?.close();
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

function client(name: string): ClientKeyPair {
  const pair = clients[name];
  assert.ok(pair, `no client certificate ${name}`);
  return pair;
}

function url(): string {
  return audited.gateway.url;
}

async function tokenFor(clientId: string, certificate: string | undefined) {
  const reply = await requestToken(
    url(),
    ca,
    certificate === undefined ? undefined : client(certificate),
    { client_id: clientId },
    // A source of its own: the refusals of one source are recorded in full only once a minute.
    freshSource(),
  );
  return { reply, body: JSON.parse(reply.text) as Record<string, unknown> };
}

/** The refusal's auth.failed record, found by the reference the endpoint answered with. */
async function refusalReasonOf(reply: { headers: Record<string, unknown> }) {
  const requestId = String(reply.headers['x-request-id']);
  const [record] = await audited.audit.recordsUntil(requestId, (r) => r.event === 'auth.failed');
  assert.ok(record, `no auth.failed record for ${requestId}`);
  return { reason: record.details?.['reason'], method: record.details?.['method'] };
}

function initialize(options: { client?: ClientKeyPair; token?: string }) {
  return postMcpTls(`${url()}/mcp/fixture`, ca, initializeRequest(), options);
}

describe('tls_client_auth', () => {
  test('an agent authenticating with its certificate gets a token bound to it', async () => {
    const { reply, body } = await tokenFor('research-bot', 'research-bot');
    assert.equal(reply.status, 200, reply.text);
    assert.equal(body['token_type'], 'Bearer');
    const token = String(body['access_token']);
    assert.equal(boundThumbprintOf(token), thumbprintOf(client('research-bot').cert));

    const issued = await audited.audit.recordsUntil(
      String(reply.headers['x-request-id']),
      (r) => r.event === 'token.issued',
    );
    const record = issued.find((r) => r.event === 'token.issued');
    assert.equal(record?.details?.['method'], 'tls_client_auth');
    assert.equal(record?.details?.['boundCertificate'], thumbprintOf(client('research-bot').cert));

    // The bound token works with its certificate, and with no other nor with none.
    const withIt = await initialize({ client: client('research-bot'), token });
    assert.equal(withIt.status, 200, withIt.text);
    const withAnother = await initialize({ client: client('other-bot'), token });
    assert.equal(withAnother.status, 401, withAnother.text);
    assert.match(String(withAnother.headers['www-authenticate']), /error="invalid_token"/);
    const withNone = await initialize({ token });
    assert.equal(withNone.status, 401, withNone.text);
    assert.match(withNone.text, /WARDEN_CERTIFICATE_REQUIRED/);
  });

  test('refuses another agent’s certificate for this agent’s client_id', async () => {
    const { reply, body } = await tokenFor('research-bot', 'other-bot');
    assert.equal(reply.status, 401, reply.text);
    assert.equal(body['error'], 'invalid_client');
    assert.deepEqual(await refusalReasonOf(reply), {
      reason: 'certificate_mismatch',
      method: 'tls_client_auth',
    });
  });

  test('refuses tls_client_auth for an agent with no mtls_identity, even with its own certificate', async () => {
    const { reply, body } = await tokenFor('plain-bot', 'plain-bot');
    assert.equal(reply.status, 401, reply.text);
    assert.equal(body['error'], 'invalid_client');
    assert.deepEqual(await refusalReasonOf(reply), {
      reason: 'method_not_registered',
      method: 'tls_client_auth',
    });
  });

  test('refuses a certificate naming the agent from a CA the listener does not trust', async () => {
    const { reply, body } = await tokenFor('research-bot', 'foreign');
    assert.equal(reply.status, 401, reply.text);
    assert.equal(body['error'], 'invalid_client');
    assert.equal((await refusalReasonOf(reply)).reason, 'certificate_untrusted');
  });

  test('a client_id without a certificate is no credential at all', async () => {
    const { reply, body } = await tokenFor('research-bot', undefined);
    assert.equal(reply.status, 401, reply.text);
    assert.equal(body['error'], 'invalid_client');
    assert.equal((await refusalReasonOf(reply)).reason, 'no_credentials');
  });

  test('refuses a certificate for a client id that is not registered', async () => {
    const { reply } = await tokenFor('nobody-bot', 'research-bot');
    assert.equal(reply.status, 401, reply.text);
    assert.equal((await refusalReasonOf(reply)).reason, 'unknown_client');
  });
});

describe('self_signed_tls_client_auth', () => {
  test('a self-signed certificate holding a registered key gets a token bound to it', async () => {
    const { reply, body } = await tokenFor('selfie-bot', 'selfie');
    assert.equal(reply.status, 200, reply.text);
    assert.equal(
      boundThumbprintOf(String(body['access_token'])),
      thumbprintOf(client('selfie').cert),
    );
    const issued = await audited.audit.recordsUntil(
      String(reply.headers['x-request-id']),
      (r) => r.event === 'token.issued',
    );
    assert.equal(
      issued.find((r) => r.event === 'token.issued')?.details?.['method'],
      'self_signed_tls_client_auth',
    );

    // The listener does not verify the certificate; its registered key makes the binding hold.
    const token = String(body['access_token']);
    const withIt = await initialize({ client: client('selfie'), token });
    assert.equal(withIt.status, 200, withIt.text);
    const withLookalike = await initialize({ client: client('impostor'), token });
    assert.equal(withLookalike.status, 401, withLookalike.text);
    const withNone = await initialize({ token });
    assert.equal(withNone.status, 401, withNone.text);
    assert.match(withNone.text, /WARDEN_CERTIFICATE_REQUIRED/);
  });

  test('refuses a self-signed certificate with the same names but a key not in jwks', async () => {
    const { reply, body } = await tokenFor('selfie-bot', 'impostor');
    assert.equal(reply.status, 401, reply.text);
    assert.equal(body['error'], 'invalid_client');
    assert.deepEqual(await refusalReasonOf(reply), {
      reason: 'certificate_mismatch',
      method: 'self_signed_tls_client_auth',
    });
  });

  test('refuses a registered agent certificate for an agent that registered only keys', async () => {
    const { reply } = await tokenFor('selfie-bot', 'research-bot');
    assert.equal(reply.status, 401, reply.text);
    assert.equal((await refusalReasonOf(reply)).reason, 'certificate_mismatch');
  });
});

describe('binding tokens of other client authentication methods', () => {
  test('a client authenticating with its secret over a verified certificate gets a bound token', async () => {
    const reply = await requestToken(url(), ca, client('plain-bot'), {
      client_id: 'plain-bot',
      client_secret: SECRET,
    });
    assert.equal(reply.status, 200, reply.text);
    const token = String((JSON.parse(reply.text) as Record<string, unknown>)['access_token']);
    assert.equal(boundThumbprintOf(token), thumbprintOf(client('plain-bot').cert));
  });

  test('a client authenticating with its secret and no certificate gets an unbound token', async () => {
    const reply = await requestToken(url(), ca, undefined, {
      client_id: 'plain-bot',
      client_secret: SECRET,
    });
    assert.equal(reply.status, 200, reply.text);
    const token = String((JSON.parse(reply.text) as Record<string, unknown>)['access_token']);
    assert.equal(boundThumbprintOf(token), undefined);
  });

  test('refuses a secret presented over a certificate the listener did not verify', async () => {
    // Ignoring it would hand out an unbound token to a client that asked for a bound one.
    const reply = await requestToken(
      url(),
      ca,
      client('impostor'),
      { client_id: 'plain-bot', client_secret: SECRET },
      freshSource(),
    );
    assert.equal(reply.status, 401, reply.text);
    assert.deepEqual(await refusalReasonOf(reply), {
      reason: 'certificate_untrusted',
      method: 'client_secret_post',
    });
  });
});

describe('authorization server metadata', () => {
  test('advertises the certificate methods and bound tokens when the listener has a client CA', async () => {
    const reply = await sendTls(`${url()}/.well-known/oauth-authorization-server`, { ca });
    assert.equal(reply.status, 200, reply.text);
    const metadata = JSON.parse(reply.text) as Record<string, unknown>;
    const methods = metadata['token_endpoint_auth_methods_supported'] as string[];
    assert.ok(methods.includes('tls_client_auth'), methods.join());
    assert.ok(methods.includes('self_signed_tls_client_auth'), methods.join());
    assert.ok(methods.includes('private_key_jwt'), methods.join());
    assert.equal(metadata['tls_client_certificate_bound_access_tokens'], true);
  });

  test('advertises neither without a client CA', () => {
    const metadata = describeAuthorizationServer({
      issuer: 'https://warden.test',
      tokenEndpointUrl: 'https://warden.test/oauth/token',
      jwksUri: 'https://warden.test/.well-known/jwks.json',
    });
    const methods = metadata['token_endpoint_auth_methods_supported'] as string[];
    assert.ok(!methods.includes('tls_client_auth'));
    assert.ok(!methods.includes('self_signed_tls_client_auth'));
    assert.equal(metadata['tls_client_certificate_bound_access_tokens'], undefined);
  });
});
