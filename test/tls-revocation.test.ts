/**
 * Revoked client certificates, from the attacker's side: a certificate on its CA's CRL, a CRL
 * updated under the running gateway, a forged CRL that would un-revoke one, and a serial revoked
 * with `warden certs revoke` while the gateway runs (the store's revocation feed), and one
 * revoked while its keep-alive connection stays open.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { loadTlsMaterial, TlsOptionsError } from '../src/identity/tls-options.js';
import {
  createAuditedSetup,
  freshSource,
  openAuditReader,
  type AuditReader,
  type AuditedSetup,
} from './support/audit-reader.js';
import { startTestGateway, TESTER_ROLE, type TestGateway } from './support/gateway.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import {
  issueCa,
  issueClient,
  issueCrl,
  initializeOver,
  issueServer,
  pemCrl,
  serialOf,
  tryRequest,
  writeFiles,
  type Pair,
} from './support/tls-pki.js';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
// The CLI runs in the test's folder, so tsx is imported by its resolved location.
const TSX = import.meta.resolve('tsx');

const serverCa = issueCa('server CA');
const clientCa = issueCa('client CA');
// Same name as the client CA, another key: what a forger of its CRL would sign with.
const impostorCa = issueCa('client CA');
const stranger = issueCa('stranger CA');
const server = issueServer(serverCa);
const onCrl = issueClient(clientCa, { commonName: 'on-crl' });
const laterOnCrl = issueClient(clientCa, { commonName: 'later-on-crl' });
const stolen = issueClient(clientCa, { commonName: 'stolen' });
const good = issueClient(clientCa, { commonName: 'good' });

async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let last = await probe();
  for (let attempt = 0; attempt < 100 && !done(last); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await probe();
  }
  return last;
}

describe('revoked client certificates', () => {
  let setup: AuditedSetup;
  let gateway: TestGateway;
  let audit: AuditReader;
  let configFile: string;

  const attempt = (client: Pair, localAddress = freshSource()) =>
    tryRequest({ port: gateway.port, serverCa: serverCa.certificate, client, localAddress });

  /** The refused-handshake record of one source, waiting (bounded) for it. */
  async function refusalFrom(source: string): Promise<AuditRecord | undefined> {
    const records = await eventually(
      () => audit.withEvent('auth.failed'),
      (found) => found.some((record) => record.details?.['source'] === source),
    );
    return records.find((record) => record.details?.['source'] === source);
  }

  before(async () => {
    setup = createAuditedSetup('tls-revocation');
    writeFiles(setup.dir, {
      'server.crt': server.cert,
      'server.key': server.key,
      'clients.crt': clientCa.certificate,
      'clients.crl': issueCrl(clientCa, [serialOf(onCrl.cert)]),
    });
    const raw = {
      ...setup.config,
      listen: {
        host: '127.0.0.1',
        port: 0,
        tls: {
          cert: join(setup.dir, 'server.crt'),
          key: join(setup.dir, 'server.key'),
          client_ca: join(setup.dir, 'clients.crt'),
          crl: join(setup.dir, 'clients.crl'),
          client_certificates: 'required',
        },
      },
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { 'test-agent': { roles: ['tester'] } },
      roles: { tester: {} },
      upstreams: { unused: { url: 'http://127.0.0.1:9/mcp' } },
    };
    // The same deployment for `warden certs revoke` (YAML reads JSON).
    configFile = join(setup.dir, 'warden.yaml');
    writeFileSync(configFile, JSON.stringify(raw));
    gateway = await startTestGateway(raw);
    audit = await openAuditReader(setup.storeUrl);
  });

  after(async () => {
    await gateway?.close();
    await audit?.close();
    setup?.cleanUp();
  });

  test('refuses a certificate on its CA’s CRL (DER) and lets the others in', async () => {
    const source = freshSource();
    assert.equal((await attempt(onCrl, source)).status, undefined);
    const record = await refusalFrom(source);
    assert.equal(record?.details?.['reason'], 'certificate_revoked');
    assert.equal((await attempt(good)).status, 200);
  });

  test('a CRL replaced on disk (PEM) revokes for new connections', async () => {
    assert.equal((await attempt(laterOnCrl)).status, 200);
    writeFileSync(
      join(setup.dir, 'clients.crl'),
      pemCrl(issueCrl(clientCa, [serialOf(onCrl.cert), serialOf(laterOnCrl.cert)])),
    );
    const refused = await eventually(
      () => attempt(laterOnCrl),
      (outcome) => outcome.status === undefined,
    );
    assert.equal(refused.status, undefined);
    assert.equal((await attempt(good)).status, 200);
  });

  test('a forged CRL that would lift a revocation is refused; the running one stays', async () => {
    writeFileSync(join(setup.dir, 'clients.crl'), issueCrl(impostorCa, []));
    const forged = gateway.reloadTls();
    assert.equal(forged.ok, false);
    assert.match(forged.ok ? '' : forged.problems.join(' '), /not signed by the client CA/);
    writeFileSync(join(setup.dir, 'clients.crl'), issueCrl(stranger, []));
    const foreign = gateway.reloadTls();
    assert.equal(foreign.ok, false);
    assert.match(foreign.ok ? '' : foreign.problems.join(' '), /no client CA has the issuer name/);
    assert.equal((await attempt(onCrl)).status, undefined);
    assert.equal((await attempt(laterOnCrl)).status, undefined);
  });

  test('a serial revoked with warden certs revoke is refused by the running gateway', async () => {
    assert.equal((await attempt(stolen)).status, 200);
    // Printed with colons, as openssl x509 -serial and browsers show serials.
    const serial = (serialOf(stolen.cert).match(/../g) ?? []).join(':');
    const revoked = spawnSync(
      process.execPath,
      [
        '--import',
        TSX,
        CLI,
        'certs',
        'revoke',
        '--config',
        configFile,
        '--serial',
        serial,
        '--reason',
        'laptop stolen',
      ],
      { cwd: setup.dir, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked certificate [0-9a-f]+/);

    const source = freshSource();
    const refused = await eventually(
      () => attempt(stolen, source),
      (outcome) => outcome.status === undefined,
    );
    assert.equal(refused.status, undefined);
    assert.equal((await refusalFrom(source))?.details?.['reason'], 'certificate_revoked');
    assert.equal((await attempt(good)).status, 200);

    const [record] = (await audit.withEvent('token.revoked')).filter(
      (entry) => entry.details?.['kind'] === 'certificate',
    );
    assert.equal(
      record?.details?.['subject'],
      new X509Certificate(stolen.cert).serialNumber.toLowerCase().replace(/^0+/, ''),
    );
    assert.equal(record?.details?.['reason'], 'laptop stolen');
  });

  test('warden certs revoke refuses a serial that is not hex, and two targets at once', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--import', TSX, CLI, 'certs', 'revoke', ...args], {
        cwd: setup.dir,
        encoding: 'utf8',
        timeout: 60_000,
      });
    const notHex = run(['--config', configFile, '--serial', 'zz-top']);
    assert.notEqual(notHex.status, 0);
    assert.match(notHex.stderr, /hexadecimal/);
    const both = run(['--config', configFile, '--serial', '01', '--cert', 'x.crt']);
    assert.notEqual(both.status, 0);
    assert.match(both.stderr, /exactly one of --serial or --cert/);
  });
});

describe('a CRL at start', () => {
  test('one no client CA signed stops the start, naming the file', () => {
    const setup = createAuditedSetup('tls-crl-start');
    try {
      writeFiles(setup.dir, {
        'server.crt': server.cert,
        'server.key': server.key,
        'clients.crt': clientCa.certificate,
        'foreign.crl': issueCrl(stranger, []),
      });
      const crl = join(setup.dir, 'foreign.crl');
      assert.throws(
        () =>
          loadTlsMaterial({
            cert: join(setup.dir, 'server.crt'),
            key: join(setup.dir, 'server.key'),
            clientCas: [{ file: join(setup.dir, 'clients.crt'), trustDomains: undefined }],
            crls: [crl],
            clientCertificates: 'required',
          }),
        (error: unknown) =>
          error instanceof TlsOptionsError &&
          error.reason === 'issuer_unknown' &&
          error.setting === 'crl' &&
          error.file === crl,
      );
    } finally {
      setup.cleanUp();
    }
  });
});

describe('a certificate revoked while its connection is open', () => {
  let setup: AuditedSetup;
  let gateway: TestGateway;
  let upstream: ScriptedUpstream;
  const agentCertificate = issueClient(clientCa, { uris: ['spiffe://warden.test/agent/bot'] });

  before(async () => {
    setup = createAuditedSetup('tls-revocation-open');
    writeFiles(setup.dir, {
      'server.crt': server.cert,
      'server.key': server.key,
      'clients.crt': clientCa.certificate,
    });
    upstream = await startScriptedUpstream();
    gateway = await startTestGateway({
      ...setup.config,
      listen: {
        host: '127.0.0.1',
        port: 0,
        tls: {
          cert: join(setup.dir, 'server.crt'),
          key: join(setup.dir, 'server.key'),
          client_ca: join(setup.dir, 'clients.crt'),
        },
      },
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }], mtls: true },
      agents: {
        'test-agent': { roles: ['tester'] },
        bot: { roles: ['tester'], mtls_identity: 'spiffe://warden.test/agent/bot' },
      },
      roles: { tester: TESTER_ROLE },
      upstreams: { fixture: { url: upstream.url } },
    });
  });

  after(async () => {
    await gateway?.close();
    await upstream?.close();
    setup?.cleanUp();
  });

  test('no longer authenticates the next request on the same connection', async () => {
    const agent = new HttpsAgent({
      keepAlive: true,
      maxSockets: 1,
      ca: serverCa.certificate,
      cert: agentCertificate.cert,
      key: agentCertificate.key,
    });
    try {
      const first = await initializeOver(`${gateway.url}/mcp/fixture`, { agent });
      assert.equal(first.status, 200);
      await gateway.revoke({
        kind: 'certificate',
        subject: new X509Certificate(agentCertificate.cert).serialNumber.toLowerCase(),
        revokedAt: Date.now(),
        expiresAt: Date.now() + 3_600_000,
        reason: 'key leaked',
        revokedBy: 'test',
      });
      const second = await initializeOver(`${gateway.url}/mcp/fixture`, { agent });
      assert.equal(second.reused, true, 'the same TLS connection');
      assert.equal(second.status, 401);
    } finally {
      agent.destroy();
    }
  });
});
