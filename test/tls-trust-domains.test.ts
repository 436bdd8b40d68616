/**
 * Several client CAs, each allowed its own SPIFFE trust domains, from the attacker's side: a
 * certificate of CA A naming an id of CA B's domain, an unrestricted CA naming a reserved
 * domain, a CN posing as an identity, an untrusted CA, an expired certificate, none at all.
 * In `required` mode each is refused at the handshake and counted per source on the audit log;
 * in `optional` mode the caller is refused with the certificate's reason, not as a plain
 * "unauthenticated".
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { freshSource, startAuditedGateway, type AuditedGateway } from './support/audit-reader.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { TESTER_ROLE } from './support/gateway.js';
import {
  initializeOver,
  issueCa,
  issueClient,
  issueServer,
  tryRequest,
  writeFiles,
  type Pair,
} from './support/tls-pki.js';

const DAY_MS = 86_400_000;
const serverCa = issueCa('server CA');
const caA = issueCa('team A CA');
const caB = issueCa('team B CA');
const caLegacy = issueCa('legacy CA');
const stranger = issueCa('stranger CA');
const server = issueServer(serverCa);
const A_BOT = 'spiffe://a.example/agent/a-bot';
const B_BOT = 'spiffe://b.example/agent/b-bot';

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-trust-domains-'));
  writeFiles(dir, {
    'server.crt': server.cert,
    'server.key': server.key,
    'a.crt': caA.certificate,
    'b.crt': caB.certificate,
    'legacy.crt': caLegacy.certificate,
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function tlsConfig(mode: 'required' | 'optional') {
  return {
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
    client_ca: [
      { file: join(dir, 'a.crt'), trust_domains: ['a.example'] },
      { file: join(dir, 'b.crt'), trust_domains: ['b.example'] },
      join(dir, 'legacy.crt'),
    ],
    client_certificates: mode,
  };
}

/** The `auth.failed` record of refused handshakes from one source. */
async function handshakeRecordsFrom(
  audited: AuditedGateway,
  source: string,
): Promise<AuditRecord[]> {
  const from = (records: AuditRecord[]) =>
    records.filter(
      (record) => record.details?.['layer'] === 'tls' && record.details['source'] === source,
    );
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const found = from(await audited.audit.withEvent('auth.failed'));
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return [];
}

describe('required client certificates from several CAs', () => {
  let audited: AuditedGateway;

  before(async () => {
    audited = await startAuditedGateway('trust-domains', {
      listen: { host: '127.0.0.1', port: 0, tls: tlsConfig('required') },
      upstreams: { unused: { url: 'http://127.0.0.1:9/mcp' } },
    });
  });

  after(async () => {
    await audited?.close();
  });

  const attempt = (client: Pair | undefined, localAddress: string) =>
    tryRequest({
      port: audited.gateway.port,
      serverCa: serverCa.certificate,
      localAddress,
      ...(client && { client }),
    });

  /** Refused at the handshake, with `reason` on the audit record of its source. */
  async function assertRefused(client: Pair | undefined, reason: string): Promise<AuditRecord> {
    const source = freshSource();
    const outcome = await attempt(client, source);
    assert.equal(outcome.status, undefined, `no HTTP answer over a refused handshake (${reason})`);
    const [record] = await handshakeRecordsFrom(audited, source);
    assert.ok(record, `an audit record for the refused handshake from ${source}`);
    assert.equal(record.details?.['reason'], reason);
    return record;
  }

  test('lets in each CA’s certificates for its own trust domain, and the legacy CA’s', async () => {
    const own = await attempt(issueClient(caA, { uris: [A_BOT] }), freshSource());
    assert.equal(own.status, 200);
    const otherDomain = issueClient(caLegacy, { uris: ['spiffe://c.example/agent/c-bot'] });
    assert.equal((await attempt(otherDomain, freshSource())).status, 200);
    const byName = issueClient(caLegacy, { commonName: 'legacy-bot' });
    assert.equal((await attempt(byName, freshSource())).status, 200);
  });

  test('refuses a certificate of CA A naming a SPIFFE id in CA B’s trust domain', async () => {
    const record = await assertRefused(
      issueClient(caA, { uris: [B_BOT] }),
      'certificate_trust_domain',
    );
    assert.match(String(record.details?.['detail']), /b\.example/);
    assert.equal(typeof record.details?.['fingerprint'], 'string');
  });

  test('refuses an unrestricted CA naming a trust domain another CA holds', async () => {
    await assertRefused(issueClient(caLegacy, { uris: [A_BOT] }), 'certificate_trust_domain');
  });

  test('refuses the same trust domain spelled in capitals', async () => {
    await assertRefused(
      issueClient(caLegacy, { uris: ['SPIFFE://A.EXAMPLE/agent/a-bot'] }),
      'certificate_trust_domain',
    );
  });

  test('refuses a certificate naming one id of its own domain and one of another', async () => {
    await assertRefused(issueClient(caA, { uris: [A_BOT, B_BOT] }), 'certificate_trust_domain');
  });

  test('refuses a CN-only certificate from a CA limited to trust domains', async () => {
    await assertRefused(issueClient(caA, { commonName: 'a-bot' }), 'certificate_trust_domain');
  });

  test('refuses a certificate from a CA it does not trust', async () => {
    await assertRefused(issueClient(stranger, { uris: [A_BOT] }), 'certificate_untrusted');
  });

  test('refuses an expired certificate', async () => {
    const expired = issueClient(caA, {
      uris: [A_BOT],
      notBefore: new Date(Date.now() - 3 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    });
    await assertRefused(expired, 'certificate_expired');
  });

  test('refuses a client without a certificate', async () => {
    await assertRefused(undefined, 'certificate_missing');
  });

  test('counts repeated refusals from one source in one summary, by reason', async () => {
    const source = freshSource();
    assert.equal((await attempt(undefined, source)).status, undefined);
    assert.equal((await attempt(undefined, source)).status, undefined);
    assert.equal((await attempt(issueClient(stranger), source)).status, undefined);
    assert.equal((await attempt(issueClient(caA, { uris: [B_BOT] }), source)).status, undefined);
    // The summary is written when its window closes, or at shutdown.
    await audited.gateway.close();
    const records = await handshakeRecordsFrom(audited, source);
    const summary = records.find((record) => record.details?.['repeated'] !== undefined);
    assert.equal(records.length, 2, 'one record in full, one summary');
    assert.equal(summary?.details?.['repeated'], 3);
    assert.deepEqual(summary?.details?.['reasons'], {
      certificate_missing: 1,
      certificate_untrusted: 1,
      certificate_trust_domain: 1,
    });
  });
});

describe('optional client certificates: identities only the right CA may vouch for', () => {
  let audited: AuditedGateway;
  let upstream: ScriptedUpstream;

  before(async () => {
    upstream = await startScriptedUpstream();
    audited = await startAuditedGateway('trust-domains-optional', {
      listen: { host: '127.0.0.1', port: 0, tls: tlsConfig('optional') },
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }], mtls: true },
      agents: {
        'test-agent': { roles: ['tester'] },
        'b-bot': { roles: ['tester'], mtls_identity: B_BOT },
        'legacy-bot': { roles: ['tester'], mtls_identity: 'legacy-bot' },
      },
      roles: { tester: TESTER_ROLE },
      upstreams: { fixture: { url: upstream.url } },
    });
  });

  after(async () => {
    await audited?.close();
    await upstream?.close();
  });

  /** From a source of its own: refused callers are recorded in full once per source and minute. */
  const initialize = (client: Pair) =>
    initializeOver(`${audited.gateway.url}/mcp/fixture`, {
      ca: serverCa.certificate,
      cert: client.cert,
      key: client.key,
      agent: false,
      localAddress: freshSource(),
    });

  /** The reasons of the `auth.failed` records, once (bounded) one of them is `expected`. */
  async function authFailureReasons(expected: string): Promise<unknown[]> {
    let reasons: unknown[] = [];
    for (let attempt = 0; attempt < 100 && !reasons.includes(expected); attempt += 1) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      const records = await audited.audit.withEvent('auth.failed');
      reasons = records.map((record) => record.details?.['reason']);
    }
    return reasons;
  }

  test('the agent’s own CA vouches for it', async () => {
    assert.equal((await initialize(issueClient(caB, { uris: [B_BOT] }))).status, 200);
    assert.equal(
      (await initialize(issueClient(caLegacy, { commonName: 'legacy-bot' }))).status,
      200,
    );
  });

  test('CA A cannot issue the identity only CA B may: refused with the reason recorded', async () => {
    const reply = await initialize(issueClient(caA, { uris: [B_BOT] }));
    assert.equal(reply.status, 401);
    assert.ok(
      (await authFailureReasons('certificate_trust_domain')).includes('certificate_trust_domain'),
    );
  });

  test('a CA limited to trust domains cannot pass a CN off as a registered agent', async () => {
    const reply = await initialize(issueClient(caA, { commonName: 'legacy-bot' }));
    assert.equal(reply.status, 401);
  });

  test('an expired certificate is recorded as expired, not as plain unauthenticated', async () => {
    const expired = issueClient(caB, {
      uris: [B_BOT],
      notBefore: new Date(Date.now() - 3 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    });
    assert.equal((await initialize(expired)).status, 401);
    const reasons = await authFailureReasons('certificate_expired');
    assert.ok(reasons.includes('certificate_expired'), JSON.stringify(reasons));
  });
});
