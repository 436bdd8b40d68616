/**
 * Mutual TLS through the gateway: a registered agent certificate authenticates on its own, a
 * certificate-bound token works only with its certificate, and strangers are refused before
 * anything reaches the upstream.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, mkdtempSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  writeDevCertificates,
  type DevCertificateFiles,
} from '../src/identity/dev-certificates.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { startTestGateway, TESTER_ROLE, type TestGateway } from './support/gateway.js';

let certs: DevCertificateFiles;
let fixture: ScriptedUpstream;
let gateway: TestGateway;

before(async () => {
  certs = await writeDevCertificates(mkdtempSync(join(tmpdir(), 'warden-mtls-')), {
    agents: [{ id: 'research-bot' }, { id: 'stranger-bot' }],
  });
  fixture = await startScriptedUpstream();
  gateway = await startTestGateway({
    log: { level: 'silent' },
    listen: {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: certs.serverCert, key: certs.serverKey, client_ca: certs.caCert },
    },
    auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }], mtls: true },
    agents: {
      'test-agent': { roles: ['tester'] },
      'research-bot': {
        roles: ['research'],
        mtls_identity: 'spiffe://warden.local/agent/research-bot',
      },
    },
    // research-bot needs a grant on the upstream: a caller holding none may not open a session.
    roles: { tester: TESTER_ROLE, research: { grants: [{ tool: 'fixture.echo' }] } },
    upstreams: { fixture: { url: fixture.url } },
  });
});

after(async () => {
  await gateway?.close();
  await fixture?.close();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function agentFiles(id: string): { cert: string; key: string } {
  const agent = certs.agents.find((candidate) => candidate.id === id);
  assert.ok(agent);
  return { cert: agent.cert, key: agent.key };
}

function post(options: { agent?: string; token?: string }): Promise<Reply> {
  const files = options.agent === undefined ? undefined : agentFiles(options.agent);
  return new Promise((resolve, reject) => {
    const req = request(
      `${gateway.url}/mcp/fixture`,
      {
        method: 'POST',
        ca: readFileSync(certs.caCert),
        ...(files && { cert: readFileSync(files.cert), key: readFileSync(files.key) }),
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 't', version: '1' },
        },
      }),
    );
  });
}

const TEST_AGENT_CONFIG = {
  id: 'test-agent',
  roles: ['tester'],
  tenant: undefined,
  clientIds: [],
  secretHash: undefined,
  jwks: undefined,
  mtlsIdentity: undefined,
} as const;

function thumbprintOf(certPath: string): string {
  return createHash('sha256')
    .update(new X509Certificate(readFileSync(certPath)).raw)
    .digest('base64url');
}

test('a registered agent certificate authenticates without a token', async () => {
  const reply = await post({ agent: 'research-bot' });
  assert.equal(reply.status, 200, reply.body);
  assert.ok(reply.headers['mcp-session-id']);
});

test('refuses a client with no certificate and no token (401 with a challenge)', async () => {
  const before = fixture.received.length;
  const reply = await post({});
  assert.equal(reply.status, 401);
  assert.match(String(reply.headers['www-authenticate']), /^Bearer resource_metadata="/);
  assert.equal(fixture.received.length, before, 'nothing reached the upstream');
});

test('refuses a certificate from the right CA that maps to no registered agent', async () => {
  const before = fixture.received.length;
  const reply = await post({ agent: 'stranger-bot' });
  assert.equal(reply.status, 401);
  assert.equal(
    (JSON.parse(reply.body) as { error: { data: { reason: string } } }).error.data.reason,
    'certificate_unregistered',
  );
  assert.equal(fixture.received.length, before);
});

test('a certificate-bound token works with its certificate', async () => {
  const agent =
    gateway.issuer &&
    (await gateway.issuer.issueToken({
      agent: TEST_AGENT_CONFIG,
      certificateThumbprint: thumbprintOf(agentFiles('research-bot').cert),
    }));
  assert.ok(agent);
  const reply = await post({ agent: 'research-bot', token: agent.token });
  assert.equal(reply.status, 200, reply.body);
});

test('refuses a certificate-bound token presented with another certificate', async () => {
  const issued = await gateway.issuer?.issueToken({
    agent: TEST_AGENT_CONFIG,
    certificateThumbprint: thumbprintOf(agentFiles('research-bot').cert),
  });
  assert.ok(issued);
  const before = fixture.received.length;
  const reply = await post({ agent: 'stranger-bot', token: issued.token });
  assert.equal(reply.status, 401);
  assert.match(String(reply.headers['www-authenticate']), /error="invalid_token"/);
  assert.equal(fixture.received.length, before);
});

test('refuses a certificate-bound token presented without a certificate', async () => {
  const issued = await gateway.issuer?.issueToken({
    agent: TEST_AGENT_CONFIG,
    certificateThumbprint: thumbprintOf(agentFiles('research-bot').cert),
  });
  assert.ok(issued);
  const reply = await post({ token: issued.token });
  assert.equal(reply.status, 401);
  assert.equal(
    (JSON.parse(reply.body) as { error: { data: { code: string } } }).error.data.code,
    'WARDEN_CERTIFICATE_REQUIRED',
  );
});

test('a revoked agent certificate is refused on the next request', async () => {
  assert.equal((await post({ agent: 'research-bot' })).status, 200);
  await gateway.revoke({
    kind: 'agent',
    subject: 'research-bot',
    revokedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    reason: 'test',
    revokedBy: 'test',
  });
  assert.equal((await post({ agent: 'research-bot' })).status, 401);
});
