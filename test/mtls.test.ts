// Client certificates from the attacker's side, over real TLS on 127.0.0.1: no certificate, a
// certificate from another CA, an expired one, names crafted to pass for another agent, and a
// certificate-bound token (RFC 8705) replayed over a connection with the wrong certificate.
// The servers here do what the gateway must: trust a certificate only when socket.authorized.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import type { AgentConfig, TlsConfig } from '../src/config/config.js';
import {
  CertificateBindingError,
  checkCertificateBinding,
} from '../src/identity/certificate-binding.js';
import { issueCertificate } from '../src/identity/certificate-issuer.js';
import {
  describeClientCertificate,
  matchAgentByCertificate,
} from '../src/identity/client-certificate.js';
import {
  writeDevCertificates,
  type DevCertificateFiles,
} from '../src/identity/dev-certificates.js';
import { buildTlsServerOptions, TlsOptionsError } from '../src/identity/tls-options.js';

const DAY_MS = 86_400_000;
const BILLING_SPIFFE = 'spiffe://warden.local/agent/billing-bot';
const ADMIN_SPIFFE = 'spiffe://warden.local/agent/admin';

function agentConfig(id: string, mtlsIdentity: string): AgentConfig {
  return {
    id,
    roles: [],
    tenant: undefined,
    clientIds: [],
    secretHash: undefined,
    jwks: undefined,
    mtlsIdentity,
  };
}

const AGENTS: ReadonlyMap<string, AgentConfig> = new Map([
  ['billing-bot', agentConfig('billing-bot', BILLING_SPIFFE)],
  ['admin', agentConfig('admin', ADMIN_SPIFFE)],
  // Registered by subject CN, as certificates from an older, non-SPIFFE CA are.
  ['legacy-bot', agentConfig('legacy-bot', 'legacy-bot')],
]);

interface ClientKeyPair {
  readonly cert: string;
  readonly key: string;
}

interface Reply {
  readonly authorized: boolean;
  readonly authorizationError: string | null;
  readonly agent: string | null;
  readonly spiffeId: string | null;
  readonly thumbprint: string | null;
  readonly binding: string;
}

let workDir: string;
let pki: DevCertificateFiles;
let caPem: string;
const clients: Record<string, ClientKeyPair> = {};
interface TestServer {
  readonly server: Server;
  port: number;
  served: number;
}
let requiredServer: TestServer;
let optionalServer: TestServer;

function readPair(cert: string, key: string): ClientKeyPair {
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

/** A client certificate signed by the trusted dev CA, with names the dev tool would refuse. */
function issueCrafted(commonName: string, uris: readonly string[]): ClientKeyPair {
  const issued = issueCertificate({
    commonName,
    usage: 'client',
    subjectAltNames: uris.map((value) => ({ kind: 'uri', value })),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + DAY_MS),
    issuer: { certificate: caPem, privateKey: readFileSync(pki.caKey, 'utf8') },
  });
  return { cert: issued.certificate, key: issued.privateKey };
}

/** What the gateway does with a connection: identity only from an authorized certificate. */
function identify(request: IncomingMessage, response: ServerResponse): void {
  const socket = request.socket as TLSSocket;
  const peer = socket.getPeerX509Certificate();
  const presented = socket.authorized && peer ? describeClientCertificate(peer) : undefined;
  const agent = presented ? matchAgentByCertificate(presented, AGENTS) : undefined;
  // Stands in for the verified token's cnf["x5t#S256"] claim.
  const bound = request.headers['x-bound-thumbprint'];
  let binding = 'ok';
  try {
    checkCertificateBinding(typeof bound === 'string' ? bound : undefined, presented?.thumbprint);
  } catch (error) {
    if (!(error instanceof CertificateBindingError)) throw error;
    binding = error.reason;
  }
  const authorizationError = socket.authorizationError as unknown;
  const reply: Reply = {
    authorized: socket.authorized,
    authorizationError: authorizationError === undefined ? null : String(authorizationError),
    agent: agent?.id ?? null,
    spiffeId: presented?.spiffeId ?? null,
    thumbprint: presented?.thumbprint ?? null,
    binding,
  };
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify(reply));
}

async function startServer(clientCertificates: TlsConfig['clientCertificates']) {
  const options = buildTlsServerOptions({
    cert: pki.serverCert,
    key: pki.serverKey,
    clientCas: [{ file: pki.caCert, trustDomains: undefined }],
    crls: [],
    clientCertificates,
  });
  const state: TestServer = { server: createServer(options), port: 0, served: 0 };
  state.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    state.served += 1;
    identify(request, response);
  });
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

function call(
  port: number,
  client?: ClientKeyPair,
  headers: Record<string, string> = {},
  servername?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        ca: caPem,
        agent: false,
        headers,
        ...(client ?? {}),
        ...(servername === undefined ? {} : { servername }),
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve(JSON.parse(body) as Reply));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/**
 * The handshake ends before any request is read. With TLS 1.3 the client learns it only after
 * its own Finished: from OpenSSL's alert (no certificate), or as a reset, since Node destroys a
 * connection whose certificate fails verification without sending an alert. The optional-mode
 * tests show the verification error for the same certificates.
 */
async function assertRefusedAtHandshake(
  server: TestServer,
  client: ClientKeyPair | undefined,
  expectedCode: RegExp,
): Promise<void> {
  const servedBefore = server.served;
  await assert.rejects(call(server.port, client), (error: NodeJS.ErrnoException) => {
    assert.match(String(error.code), expectedCode);
    return true;
  });
  assert.equal(server.served, servedBefore, 'no request reached the application');
}

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'warden-mtls-'));
  pki = await writeDevCertificates(join(workDir, 'pki'), {
    agents: [
      { id: 'billing-bot' },
      // CN "legacy-bot" names a registered agent; its SPIFFE id names none.
      { id: 'legacy-bot', spiffeId: 'spiffe://warden.local/agent/unregistered' },
    ],
  });
  caPem = readFileSync(pki.caCert, 'utf8');
  for (const agent of pki.agents) clients[agent.id] = readPair(agent.cert, agent.key);

  // The same agent id and SPIFFE id, from a CA this gateway does not trust.
  const foreign = await writeDevCertificates(join(workDir, 'foreign'), {
    agents: [{ id: 'billing-bot' }],
  });
  const [foreignAgent] = foreign.agents;
  assert.ok(foreignAgent);
  clients.foreign = readPair(foreignAgent.cert, foreignAgent.key);

  // Signed by the trusted CA, but valid only for one day a month ago.
  const expiredDir = join(workDir, 'expired');
  mkdirSync(expiredDir);
  copyFileSync(pki.caCert, join(expiredDir, 'ca.crt'));
  copyFileSync(pki.caKey, join(expiredDir, 'ca.key'));
  const expired = await writeDevCertificates(expiredDir, {
    agents: [{ id: 'billing-bot' }],
    now: new Date(Date.now() - 30 * DAY_MS),
    validDays: 1,
  });
  assert.equal(expired.caReused, true);
  const [expiredAgent] = expired.agents;
  assert.ok(expiredAgent);
  clients.expired = readPair(expiredAgent.cert, expiredAgent.key);

  requiredServer = await startServer('required');
  optionalServer = await startServer('optional');
});

after(async () => {
  for (const state of [requiredServer, optionalServer]) {
    if (state === undefined) continue;
    state.server.closeAllConnections();
    await new Promise((resolve) => state.server.close(resolve));
  }
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

function client(name: string): ClientKeyPair {
  const pair = clients[name];
  assert.ok(pair, `client ${name} was set up`);
  return pair;
}

describe('certificates from writeDevCertificates', () => {
  test('an agent certificate is accepted and mapped to the agent by its SPIFFE id', async () => {
    const reply = await call(requiredServer.port, client('billing-bot'));
    assert.equal(reply.authorized, true);
    assert.equal(reply.spiffeId, BILLING_SPIFFE);
    assert.equal(reply.agent, 'billing-bot');
  });

  test('the thumbprint is x5t#S256: SHA-256 of the certificate DER, base64url', async () => {
    const reply = await call(requiredServer.port, client('billing-bot'));
    const der = Buffer.from(
      client('billing-bot')
        .cert.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
        .replace(/\s+/g, ''),
      'base64',
    );
    const expected = createHash('sha256').update(der).digest('base64url');
    assert.equal(reply.thumbprint, expected);
    assert.match(expected, /^[A-Za-z0-9_-]{43}$/);
  });

  test('the server certificate is valid for localhost, 127.0.0.1 and ::1', async () => {
    const reply = await call(optionalServer.port, undefined, {}, 'localhost');
    assert.equal(reply.authorized, false);
    const server = new X509Certificate(readFileSync(pki.serverCert));
    assert.equal(server.checkHost('localhost'), 'localhost');
    assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(server.checkIP('::1'), '::1');
    assert.equal(server.checkIssued(new X509Certificate(caPem)), true);
  });

  test('describes the certificate expiry', () => {
    const described = describeClientCertificate(new X509Certificate(client('billing-bot').cert));
    const expected = new X509Certificate(client('billing-bot').cert).validTo;
    assert.equal(described.notAfter, Date.parse(expected));
    assert.equal(described.subjectCommonName, 'billing-bot');
  });
});

describe('required client certificates', () => {
  test('refuses a client without a certificate at the TLS handshake', async () => {
    await assertRefusedAtHandshake(
      requiredServer,
      undefined,
      /^ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED$|^ECONNRESET$/,
    );
  });

  test('refuses a certificate from another CA at the TLS handshake', async () => {
    await assertRefusedAtHandshake(
      requiredServer,
      client('foreign'),
      /^ECONNRESET$|ALERT_UNKNOWN_CA/,
    );
  });

  test('refuses an expired client certificate at the TLS handshake', async () => {
    await assertRefusedAtHandshake(
      requiredServer,
      client('expired'),
      /^ECONNRESET$|ALERT_CERTIFICATE_EXPIRED/,
    );
  });
});

describe('optional client certificates', () => {
  test('a certificate from another CA connects but is not authorized and maps to no agent', async () => {
    const reply = await call(optionalServer.port, client('foreign'));
    assert.equal(reply.authorized, false);
    assert.equal(reply.authorizationError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(reply.agent, null);
    assert.equal(reply.thumbprint, null);
  });

  test('an expired certificate connects but is not authorized', async () => {
    const reply = await call(optionalServer.port, client('expired'));
    assert.equal(reply.authorized, false);
    assert.equal(reply.authorizationError, 'CERT_HAS_EXPIRED');
    assert.equal(reply.agent, null);
  });

  test('a trusted certificate is authorized and mapped', async () => {
    const reply = await call(optionalServer.port, client('billing-bot'));
    assert.equal(reply.authorized, true);
    assert.equal(reply.agent, 'billing-bot');
  });
});

describe('mapping a certificate to an agent', () => {
  test('a CN that names an agent does not count when the SPIFFE id maps to none', async () => {
    const reply = await call(requiredServer.port, client('legacy-bot'));
    assert.equal(reply.authorized, true);
    assert.equal(reply.spiffeId, 'spiffe://warden.local/agent/unregistered');
    assert.equal(reply.agent, null);
  });

  test('a certificate without a SPIFFE id maps by its subject CN', async () => {
    const reply = await call(requiredServer.port, issueCrafted('legacy-bot', []));
    assert.equal(reply.agent, 'legacy-bot');
  });

  test('a crafted URI SAN containing ", URI:spiffe://…/admin" does not map to admin', async () => {
    const crafted = issueCrafted('guest', [
      `spiffe://warden.local/agent/guest, URI:${ADMIN_SPIFFE}`,
    ]);
    // The attack is real: a naive split of Node's subjectAltName string would yield admin.
    const naive = new X509Certificate(crafted.cert).subjectAltName ?? '';
    assert.ok(naive.includes(`URI:${ADMIN_SPIFFE}`));

    const reply = await call(requiredServer.port, crafted);
    assert.equal(reply.authorized, true);
    assert.equal(reply.spiffeId, `spiffe://warden.local/agent/guest, URI:${ADMIN_SPIFFE}`);
    assert.equal(reply.agent, null);
  });

  test('a certificate with two SPIFFE ids is ambiguous and maps to no agent', async () => {
    const reply = await call(
      requiredServer.port,
      issueCrafted('billing-bot', [BILLING_SPIFFE, ADMIN_SPIFFE]),
    );
    assert.equal(reply.spiffeId, null);
    assert.equal(reply.agent, null);
  });

  test('a differently cased second SPIFFE URI also makes it ambiguous', () => {
    const crafted = issueCrafted('x', [BILLING_SPIFFE, 'SPIFFE://warden.local/agent/admin']);
    const described = describeClientCertificate(new X509Certificate(crafted.cert));
    assert.equal(described.spiffeId, undefined);
    assert.equal(matchAgentByCertificate(described, AGENTS), undefined);
  });

  test('one SPIFFE id beside a non-SPIFFE URI SAN still maps', async () => {
    const reply = await call(
      requiredServer.port,
      issueCrafted('x', ['https://billing.example/bot', BILLING_SPIFFE]),
    );
    assert.equal(reply.agent, 'billing-bot');
  });

  test('a CN spelling a SPIFFE id does not stand in for the URI SAN', async () => {
    const reply = await call(requiredServer.port, issueCrafted(ADMIN_SPIFFE, []));
    assert.equal(reply.authorized, true);
    assert.equal(reply.agent, null);
  });

  test('a SPIFFE id claimed by two agents maps to neither', () => {
    const described = describeClientCertificate(new X509Certificate(client('billing-bot').cert));
    const agents = new Map([
      ['billing-bot', agentConfig('billing-bot', BILLING_SPIFFE)],
      ['billing-bot-2', agentConfig('billing-bot-2', BILLING_SPIFFE)],
    ]);
    assert.equal(matchAgentByCertificate(described, agents), undefined);
  });

  test('matching is exact: a SPIFFE id prefix or different case is another identity', () => {
    const described = describeClientCertificate(new X509Certificate(client('billing-bot').cert));
    const agents = new Map([
      ['a', agentConfig('a', 'spiffe://warden.local/agent/billing')],
      ['b', agentConfig('b', BILLING_SPIFFE.toUpperCase())],
      ['c', agentConfig('c', `${BILLING_SPIFFE}/`)],
    ]);
    assert.equal(matchAgentByCertificate(described, agents), undefined);
  });
});

describe('certificate-bound tokens (RFC 8705)', () => {
  test('a token bound to certificate A presented with certificate B fails: certificate_mismatch', async () => {
    const a = await call(requiredServer.port, client('billing-bot'));
    assert.ok(a.thumbprint);
    const reply = await call(requiredServer.port, client('legacy-bot'), {
      'x-bound-thumbprint': a.thumbprint,
    });
    assert.equal(reply.binding, 'certificate_mismatch');
  });

  test('a bound token over a connection without a certificate fails: certificate_required', async () => {
    const a = await call(requiredServer.port, client('billing-bot'));
    assert.ok(a.thumbprint);
    const reply = await call(optionalServer.port, undefined, {
      'x-bound-thumbprint': a.thumbprint,
    });
    assert.equal(reply.binding, 'certificate_required');
  });

  test('a bound token with a certificate the gateway does not trust fails: certificate_required', async () => {
    // The attacker holds a foreign-CA certificate with the same thumbprint claim in mind: an
    // unauthorized certificate is no certificate, whatever its hash.
    const foreignThumbprint = createHash('sha256')
      .update(new X509Certificate(client('foreign').cert).raw)
      .digest('base64url');
    const reply = await call(optionalServer.port, client('foreign'), {
      'x-bound-thumbprint': foreignThumbprint,
    });
    assert.equal(reply.binding, 'certificate_required');
  });

  test('a bound token with its own certificate passes', async () => {
    const a = await call(requiredServer.port, client('billing-bot'));
    assert.ok(a.thumbprint);
    const reply = await call(requiredServer.port, client('billing-bot'), {
      'x-bound-thumbprint': a.thumbprint,
    });
    assert.equal(reply.binding, 'ok');
  });

  test('binding errors carry stable codes for the wire', () => {
    assert.doesNotThrow(() => checkCertificateBinding(undefined, undefined));
    assert.throws(
      () => checkCertificateBinding('abc', undefined),
      (error: unknown) =>
        error instanceof CertificateBindingError &&
        error.reason === 'certificate_required' &&
        error.code === 'WARDEN_CERTIFICATE_REQUIRED',
    );
    assert.throws(
      () => checkCertificateBinding('abc', 'abd'),
      (error: unknown) =>
        error instanceof CertificateBindingError &&
        error.reason === 'certificate_mismatch' &&
        error.code === 'WARDEN_INVALID_TOKEN',
    );
    // A prefix is not a match, and neither is an empty binding.
    assert.throws(() => checkCertificateBinding('abc', 'abcd'), CertificateBindingError);
    assert.throws(() => checkCertificateBinding('', 'abc'), CertificateBindingError);
  });
});

describe('buildTlsServerOptions', () => {
  /** The dev server certificate without client certificates, with `changes` applied. */
  function tlsConfig(changes: Partial<TlsConfig> = {}): TlsConfig {
    return {
      cert: pki.serverCert,
      key: pki.serverKey,
      clientCas: [],
      crls: [],
      clientCertificates: 'optional',
      ...changes,
    };
  }

  function refusal(reason: TlsOptionsError['reason'], check = (_: TlsOptionsError) => true) {
    return (error: unknown) =>
      error instanceof TlsOptionsError && error.reason === reason && check(error);
  }

  test('names an unreadable file and the setting pointing at it', () => {
    const missing = join(workDir, 'missing.key');
    assert.throws(
      () => buildTlsServerOptions(tlsConfig({ key: missing })),
      refusal(
        'unreadable',
        (error) =>
          error.file === missing && error.setting === 'key' && error.message.includes(missing),
      ),
    );
  });

  test('refuses a key that does not belong to the certificate', () => {
    assert.throws(
      () => buildTlsServerOptions(tlsConfig({ key: pki.caKey })),
      refusal('key_mismatch'),
    );
  });

  test('refuses a file that is not PEM', () => {
    assert.throws(
      () =>
        buildTlsServerOptions(
          tlsConfig({ clientCas: [{ file: pki.serverKey, trustDomains: undefined }] }),
        ),
      refusal('not_pem', (error) => error.setting === 'client_ca'),
    );
  });

  test('refuses required client certificates without a client CA', () => {
    assert.throws(
      () => buildTlsServerOptions(tlsConfig({ clientCertificates: 'required' })),
      refusal('client_ca_missing'),
    );
  });

  test('asks for client certificates only with a client CA, and never below TLS 1.2', () => {
    const without = buildTlsServerOptions(tlsConfig());
    assert.equal(without.requestCert, false);
    assert.equal(without.minVersion, 'TLSv1.2');
    const optional = buildTlsServerOptions(
      tlsConfig({ clientCas: [{ file: pki.caCert, trustDomains: undefined }] }),
    );
    assert.equal(optional.requestCert, true);
    assert.equal(optional.rejectUnauthorized, false);
    assert.equal(optional.minVersion, 'TLSv1.2');
    const required = buildTlsServerOptions(
      tlsConfig({
        clientCas: [{ file: pki.caCert, trustDomains: undefined }],
        clientCertificates: 'required',
      }),
    );
    assert.equal(required.rejectUnauthorized, true);
  });
});
