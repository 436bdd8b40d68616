/**
 * Every record of a call names the credential it was made with, so an operator can tell which
 * token or certificate to revoke: a token by its issuer and `jti`, a client certificate by its
 * fingerprint and identity, a certificate-bound token by both. A real HTTPS gateway with a
 * client CA, the audit log read back from its store.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import { tellCallStory } from '../src/audit/call-story.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { writeDevCertificates } from '../src/identity/dev-certificates.js';
import { freshSource, type AuditedGateway } from './support/audit-reader.js';
import { initializeRequest } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import {
  callToolTls,
  readKeyPair,
  requestToken,
  sendTls,
  startMtlsGateway,
  thumbprintOf,
  type ClientKeyPair,
} from './support/tls-client.js';

const RESEARCH_SPIFFE = 'spiffe://warden.local/agent/research-bot';

let workDir: string;
let ca: string;
let research: ClientKeyPair;
let foreign: ClientKeyPair;
let upstream: ScriptedUpstream;
let audited: AuditedGateway;

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'warden-audit-credential-'));
  const pki = await writeDevCertificates(join(workDir, 'pki'), {
    agents: [{ id: 'research-bot' }],
  });
  ca = readFileSync(pki.caCert, 'utf8');
  const [agent] = pki.agents;
  assert.ok(agent);
  research = readKeyPair(agent);
  const other = await writeDevCertificates(join(workDir, 'foreign'), {
    agents: [{ id: 'research-bot' }],
  });
  const [otherAgent] = other.agents;
  assert.ok(otherAgent);
  foreign = readKeyPair(otherAgent);

  upstream = await startScriptedUpstream();
  audited = await startMtlsGateway(
    'audit-credential',
    pki,
    { 'research-bot': { mtls_identity: RESEARCH_SPIFFE } },
    upstream.url,
  );
});

after(async () => {
  await audited?.close();
  await upstream?.close();
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
});

function endpoint(): string {
  return `${audited.gateway.url}/mcp/fixture`;
}

/** The call's records once its outcome is recorded: the decision and the result. */
async function recordsOfCall(requestId: string): Promise<AuditRecord[]> {
  const records = await audited.audit.recordsUntil(requestId, (r) => r.event === 'call.result');
  assert.ok(
    records.some((r) => r.event === 'call.allowed'),
    `no call.allowed for ${requestId}`,
  );
  assert.ok(
    records.some((r) => r.event === 'call.result'),
    `no call.result for ${requestId}`,
  );
  return records;
}

function assertEveryRecordNames(records: readonly AuditRecord[], expected: unknown): void {
  for (const record of records) {
    assert.deepEqual(record.credential, expected, `${record.event} names the credential`);
  }
}

test('a token call is recorded with kind jwt, its issuer and its jti', async () => {
  const token = await audited.gateway.token();
  const claims = decodeJwt(token);
  assert.equal(typeof claims.jti, 'string');
  const { requestId, reply } = await callToolTls(endpoint(), ca, 'echo', { token });
  assert.equal(reply.status, 200, reply.text);
  const records = await recordsOfCall(requestId);
  assertEveryRecordNames(records, { kind: 'jwt', issuer: claims.iss, tokenId: claims.jti });
  assert.match(tellCallStory(records), new RegExp(`credential +token jti ${claims.jti} from `));
});

test('a certificate call is recorded with kind mtls, its fingerprint and its SPIFFE id', async () => {
  const { requestId, reply } = await callToolTls(endpoint(), ca, 'echo', { client: research });
  assert.equal(reply.status, 200, reply.text);
  const records = await recordsOfCall(requestId);
  const fingerprint = thumbprintOf(research.cert);
  assertEveryRecordNames(records, { kind: 'mtls', subject: RESEARCH_SPIFFE, fingerprint });
  assert.ok(records.every((record) => record.agent === 'research-bot'));
  assert.match(
    tellCallStory(records),
    new RegExp(`credential +client certificate ${RESEARCH_SPIFFE}, SHA-256 ${fingerprint}`),
  );
});

test('a certificate-bound token call is recorded with its jti and the bound certificate', async () => {
  const issued = await requestToken(audited.gateway.url, ca, research, {
    client_id: 'research-bot',
  });
  assert.equal(issued.status, 200, issued.text);
  const token = String((JSON.parse(issued.text) as Record<string, unknown>)['access_token']);
  const claims = decodeJwt(token);
  const { requestId, reply } = await callToolTls(endpoint(), ca, 'echo', {
    client: research,
    token,
  });
  assert.equal(reply.status, 200, reply.text);
  const records = await recordsOfCall(requestId);
  assertEveryRecordNames(records, {
    kind: 'jwt',
    issuer: claims.iss,
    tokenId: claims.jti,
    boundCertificate: thumbprintOf(research.cert),
  });
  assert.match(tellCallStory(records), /bound to certificate SHA-256 /);
});

test('a denied call names its credential too', async () => {
  const token = await audited.gateway.token();
  const { requestId } = await callToolTls(endpoint(), ca, 'not_listed', { token });
  const records = await audited.audit.recordsUntil(requestId, (r) => r.event === 'call.denied');
  const denied = records.find((r) => r.event === 'call.denied');
  assert.ok(denied, `no call.denied among ${records.map((r) => r.event).join()}`);
  assert.equal(denied.credential?.kind, 'jwt');
  assert.equal(
    denied.credential?.kind === 'jwt' ? denied.credential.tokenId : undefined,
    decodeJwt(token).jti,
  );
});

test('a caller with only a certificate from an untrusted CA is recorded with the certificate reason', async () => {
  const reply = await sendTls(endpoint(), {
    ca,
    client: foreign,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify(initializeRequest()),
    localAddress: freshSource(),
  });
  assert.equal(reply.status, 401, reply.text);
  const requestId = String(reply.headers['x-request-id']);
  const records = await audited.audit.recordsUntil(requestId, (r) => r.event === 'auth.failed');
  const failed = records.find((r) => r.event === 'auth.failed');
  assert.ok(failed, `no auth.failed for ${requestId}`);
  assert.equal(failed.details?.['reason'], 'certificate_untrusted');
  const certificate = failed.details?.['certificate'] as Record<string, unknown> | undefined;
  // OpenSSL's verification code, and the certificate, so the operator can find its holder.
  assert.match(String(certificate?.['detail']), /^[A-Z_]+$/);
  assert.equal(typeof certificate?.['fingerprint'], 'string');
  assert.equal(failed.credential, undefined, 'a refused certificate names no credential');
});
