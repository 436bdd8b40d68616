/**
 * The listener's TLS files change under a running gateway: a rotated server certificate and key,
 * a replaced client CA. New connections get the new material, open connections keep theirs, and
 * a bad file changes nothing. Also from the attacker's side: client-initiated renegotiation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { TlsConfig } from '../src/config/config.js';
import { loadTlsMaterial } from '../src/identity/tls-options.js';
import { watchTlsFiles, type TlsReloadTrigger } from '../src/identity/tls-reloader.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { findFreePort, startProcess, waitForPort } from './support/processes.js';
import {
  issueCa,
  issueClient,
  issueServer,
  openSocket,
  sendGet,
  tryRequest,
  writeFiles,
  type Pair,
} from './support/tls-pki.js';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
// The CLI runs with the test's folder as its config's home, so tsx is imported by its location.
const TSX = import.meta.resolve('tsx');

/** Bounded wait for a condition a file watch or poll brings about. */
async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let last = await probe();
  for (let attempt = 0; attempt < 100 && !done(last); attempt += 1) {
    await sleep(100);
    last = await probe();
  }
  return last;
}

const serverCa = issueCa('server CA');
const clientCaOne = issueCa('client CA one');
const clientCaTwo = issueCa('client CA two');
const clientOfOne = issueClient(clientCaOne, { commonName: 'one' });
const clientOfTwo = issueClient(clientCaTwo, { commonName: 'two' });
const firstServer = issueServer(serverCa, 'warden first');
const secondServer = issueServer(serverCa, 'warden second');

function fingerprintOf(pair: Pair): string {
  return new X509Certificate(pair.cert).fingerprint256;
}

describe('a running gateway re-reads its TLS files', () => {
  let dir: string;
  let gateway: TestGateway;
  const port = (): number => gateway.port;
  const request = (client: Pair | undefined) =>
    tryRequest({ port: port(), serverCa: serverCa.certificate, ...(client && { client }) });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-tls-reload-'));
    writeFiles(dir, {
      'server.crt': firstServer.cert,
      'server.key': firstServer.key,
      'clients.crt': clientCaOne.certificate,
    });
    gateway = await startTestGateway({
      listen: {
        host: '127.0.0.1',
        port: 0,
        tls: {
          cert: join(dir, 'server.crt'),
          key: join(dir, 'server.key'),
          client_ca: join(dir, 'clients.crt'),
          client_certificates: 'required',
        },
      },
      // Never called: these tests stop at the listener.
      upstreams: { unused: { url: 'http://127.0.0.1:9/mcp' } },
    });
  });

  after(async () => {
    await gateway?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a rotated certificate reaches new connections; an open one keeps its own', async () => {
    const open = await openSocket({
      port: port(),
      serverCa: serverCa.certificate,
      client: clientOfOne,
    });
    try {
      assert.equal(open.getPeerX509Certificate()?.fingerprint256, fingerprintOf(firstServer));
      // Written as a rotation tool does: new files renamed into place, key first.
      writeFileSync(join(dir, 'server.key.new'), secondServer.key);
      writeFileSync(join(dir, 'server.crt.new'), secondServer.cert);
      renameSync(join(dir, 'server.key.new'), join(dir, 'server.key'));
      renameSync(join(dir, 'server.crt.new'), join(dir, 'server.crt'));

      const rotated = await eventually(
        () => request(clientOfOne),
        (seen) => seen.serverFingerprint === fingerprintOf(secondServer),
      );
      assert.equal(rotated.serverFingerprint, fingerprintOf(secondServer));
      assert.equal(rotated.status, 200);
      // The connection made before the rotation (on the first certificate) still works.
      const again = await sendGet(open, '/healthz', {});
      assert.equal(again.status, 200);
      assert.ok(gateway.logs.some((line) => line['event'] === 'tls.reloaded'));
    } finally {
      open.destroy();
    }
  });

  test('a key that does not match the new certificate keeps the running pair', async () => {
    const running = (await request(clientOfOne)).serverFingerprint;
    writeFileSync(join(dir, 'server.key'), issueServer(serverCa, 'stray').key);
    const outcome = gateway.reloadTls();
    assert.equal(outcome.ok, false);
    assert.match(outcome.ok ? '' : outcome.problems.join(' '), /does not belong/);
    const after = await request(clientOfOne);
    assert.equal(after.status, 200);
    assert.equal(after.serverFingerprint, running);
    // Put the right key back (the next test starts from a good state).
    writeFileSync(
      join(dir, 'server.key'),
      running === fingerprintOf(secondServer) ? secondServer.key : firstServer.key,
    );
    assert.equal(gateway.reloadTls().ok, true);
  });

  test('a certificate file that is not PEM is reported, and the gateway keeps serving', async () => {
    const running = (await request(clientOfOne)).serverFingerprint;
    const failedFromFile = () =>
      gateway.logs.filter(
        (line) => line['event'] === 'tls.reload_failed' && line['trigger'] === 'file',
      );
    const before = failedFromFile().length;
    writeFileSync(join(dir, 'server.crt'), 'not a certificate');
    const failures = await eventually(
      () => Promise.resolve(failedFromFile()),
      (lines) => lines.length > before,
    );
    assert.ok(failures.length > before, 'the failed reload is logged');
    assert.match(JSON.stringify(failures.at(-1)), /not a PEM certificate/);
    const after = await request(clientOfOne);
    assert.equal(after.status, 200);
    assert.equal(after.serverFingerprint, running);
    writeFileSync(
      join(dir, 'server.crt'),
      running === fingerprintOf(secondServer) ? secondServer.cert : firstServer.cert,
    );
    assert.equal(gateway.reloadTls().ok, true);
  });

  test('a replaced client CA: its certificates get in, the old CA’s no longer do', async () => {
    assert.equal((await request(clientOfOne)).status, 200);
    assert.equal((await request(clientOfTwo)).status, undefined);
    writeFileSync(join(dir, 'clients.crt'), clientCaTwo.certificate);
    // SIGHUP's path (warden serve calls reloadTls on SIGHUP).
    assert.equal(gateway.reloadTls().ok, true);
    assert.equal((await request(clientOfTwo)).status, 200);
    const refused = await request(clientOfOne);
    assert.equal(refused.status, undefined, 'a certificate of the removed CA is refused');
  });

  test('refuses client-initiated renegotiation (TLS 1.2): the connection is closed', async () => {
    writeFileSync(join(dir, 'clients.crt'), clientCaOne.certificate);
    assert.equal(gateway.reloadTls().ok, true);
    const socket = await openSocket({
      port: port(),
      serverCa: serverCa.certificate,
      client: clientOfOne,
      maxVersion: 'TLSv1.2',
    });
    try {
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      assert.equal((await sendGet(socket, '/healthz', {})).status, 200);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      const renegotiated = await new Promise<Error | null>((resolve) => {
        const started = socket.renegotiate({ rejectUnauthorized: true }, (error) =>
          resolve(error ?? null),
        );
        if (!started) resolve(new Error('renegotiation not started'));
        socket.once('close', () => resolve(new Error('closed')));
      });
      assert.notEqual(renegotiated, null, 'the renegotiation did not complete');
      await closed;
      assert.equal(socket.destroyed, true);
    } finally {
      socket.destroy();
    }
  });
});

describe('the content check finds a change the file watch missed', () => {
  test('a changed certificate is picked up by the periodic check alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tls-poll-'));
    writeFiles(dir, { 'server.crt': firstServer.cert, 'server.key': firstServer.key });
    const tls: TlsConfig = {
      cert: join(dir, 'server.crt'),
      key: join(dir, 'server.key'),
      clientCas: [],
      crls: [],
      clientCertificates: 'optional',
    };
    const applied: string[] = [];
    const triggers: TlsReloadTrigger[] = [];
    const reloader = watchTlsFiles({
      tls,
      initial: loadTlsMaterial(tls),
      apply: (material) => applied.push(material.serverFingerprint),
      onReload: (_, trigger) => triggers.push(trigger),
      // A watch event would wait longer than the test: only the content check can act.
      debounceMs: 3_600_000,
      pollMs: 50,
    });
    try {
      writeFiles(dir, { 'server.key': secondServer.key, 'server.crt': secondServer.cert });
      await eventually(
        () => Promise.resolve(applied.length),
        (count) => count > 0,
      );
      assert.deepEqual(applied.slice(-1), [fingerprintOf(secondServer)]);
      assert.ok(triggers.includes('poll'));
    } finally {
      reloader.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('warden serve on SIGHUP', () => {
  test(
    're-reads the TLS files; a bad one is refused and the gateway keeps serving',
    {
      timeout: 120_000,
    },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-tls-sighup-'));
      const port = await findFreePort();
      writeFiles(dir, { 'server.crt': firstServer.cert, 'server.key': firstServer.key });
      const config = join(dir, 'warden.yaml');
      // YAML reads JSON.
      writeFileSync(
        config,
        JSON.stringify({
          listen: {
            host: '127.0.0.1',
            port,
            tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key') },
          },
          store: `sqlite:${join(dir, 'warden.db')}`,
          audit: { hash_key_file: join(dir, 'hash.key') },
          auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
          agents: { bot: { roles: ['tester'] } },
          roles: { tester: {} },
          upstreams: { unused: { url: 'http://127.0.0.1:9/mcp' } },
        }),
      );
      const serve = startProcess(process.execPath, [
        '--import',
        TSX,
        CLI,
        'serve',
        '--config',
        config,
      ]);
      let stdout = '';
      let stderr = '';
      serve.child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      serve.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const fingerprint = async () =>
        (await tryRequest({ port, serverCa: serverCa.certificate })).serverFingerprint;
      try {
        await waitForPort(port, 60_000);
        assert.equal(await fingerprint(), fingerprintOf(firstServer));
        writeFiles(dir, { 'server.key': secondServer.key, 'server.crt': secondServer.cert });
        serve.child.kill('SIGHUP');
        const reloaded = await eventually(
          () => Promise.resolve(stdout),
          (text) => /"event":"tls\.reloaded","trigger":"signal"/.test(text),
        );
        assert.match(reloaded, /"event":"tls\.reloaded","trigger":"signal"/);
        assert.equal(await fingerprint(), fingerprintOf(secondServer));

        writeFileSync(join(dir, 'server.key'), 'not a key');
        serve.child.kill('SIGHUP');
        await eventually(
          () => Promise.resolve(stderr),
          (text) => text.includes('TLS reload refused'),
        );
        assert.match(stderr, /TLS reload refused[\s\S]*listen\.tls\.key/);
        assert.equal(serve.child.exitCode, null, 'still running');
        assert.equal(await fingerprint(), fingerprintOf(secondServer));
      } finally {
        await serve.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
