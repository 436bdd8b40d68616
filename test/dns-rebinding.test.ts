// DNS rebinding, from the attacker's side: a page on evil.example that a victim opens in a browser
// while Warden runs on their machine. Either the attacker rebinds evil.example to 127.0.0.1 (the
// browser then sends Host: evil.example:<port>), or the page calls the gateway cross-origin (the
// browser sends Origin: http://evil.example). Both are refused before anything reaches an upstream,
// even when the request carries a valid token (a page might get hold of one), and before
// authentication is even tried when it does not.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, beforeEach, test } from 'node:test';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  assertWardenError,
  initializeRequest,
  openSession,
  postMcp,
  sendRaw,
  type RawReply,
} from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

const CONSOLE_ORIGIN = 'https://console.example';

let upstream: ScriptedUpstream;
let gateway: TestGateway;
let endpoint: string;
let port: number;
let auth: Record<string, string>;

before(async () => {
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    listen: { host: '127.0.0.1', port: 0, allowed_origins: [CONSOLE_ORIGIN] },
    upstreams: { tools: { url: upstream.url } },
  });
  endpoint = gateway.endpoint('tools');
  port = gateway.port;
  auth = await gateway.authHeaders();
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
});

beforeEach(() => {
  upstream.received.length = 0;
});

/** The initialize a page's fetch() would send, with the Host and Origin its browser adds. */
function initializeFromBrowser(headers: Record<string, string>): Promise<RawReply> {
  return postMcp(endpoint, initializeRequest(), { headers: { ...auth, ...headers } });
}

test('refuses a rebound evil.example Host with 403 before the upstream sees anything', async () => {
  const reply = await initializeFromBrowser({
    host: `evil.example:${port}`,
    origin: `http://evil.example:${port}`,
  });
  assertWardenError(reply, 'WARDEN_FORBIDDEN_HOST');
  assert.equal(reply.headers['mcp-session-id'], undefined);
  assert.deepEqual(upstream.received, []);
});

test('refuses a rebound Host on every method, not only initialize', async () => {
  const sessionId = await openSession(endpoint, auth);
  upstream.received.length = 0;
  const host = `evil.example:${port}`;
  const forged = { ...auth, host, 'mcp-session-id': sessionId };
  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } };
  assertWardenError(
    await postMcp(endpoint, call, { sessionId, headers: { ...auth, host } }),
    'WARDEN_FORBIDDEN_HOST',
  );
  assertWardenError(
    await sendRaw(endpoint, { headers: { ...forged, accept: 'text/event-stream' } }),
    'WARDEN_FORBIDDEN_HOST',
  );
  assertWardenError(
    await sendRaw(endpoint, { method: 'DELETE', headers: forged }),
    'WARDEN_FORBIDDEN_HOST',
  );
  assert.deepEqual(upstream.received, [], 'the session was neither used nor ended');
});

test('refuses loopback names on another port, and a Host missing its port', async () => {
  for (const host of [`127.0.0.1:${port + 1}`, 'localhost', '127.0.0.1', `127.0.0.2:${port}`]) {
    assertWardenError(await initializeFromBrowser({ host }), 'WARDEN_FORBIDDEN_HOST');
  }
  assert.deepEqual(upstream.received, []);
});

test('refuses a request with no Host header at all', async () => {
  const url = new URL(endpoint);
  const reply = await new Promise<RawReply>((resolve, reject) => {
    const body = JSON.stringify(initializeRequest());
    const request = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        setHost: false,
        agent: false,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': Buffer.byteLength(body),
          ...auth,
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
    request.on('error', reject);
    request.end(body);
  });
  // HTTP/1.1 requires Host: Node's parser itself answers 400 before Warden's guard runs.
  assert.ok(reply.status === 400 || reply.status === 403, `got ${reply.status}`);
  assert.deepEqual(upstream.received, []);
});

test('refuses a cross-origin call from a page on evil.example with 403', async () => {
  for (const origin of [
    'http://evil.example',
    `http://evil.example:${port}`,
    'https://evil.example',
    'null',
  ]) {
    const reply = await initializeFromBrowser({ host: `127.0.0.1:${port}`, origin });
    assertWardenError(reply, 'WARDEN_FORBIDDEN_ORIGIN');
  }
  assert.deepEqual(upstream.received, []);
});

test('refuses origins that merely resemble the allowed one', async () => {
  for (const origin of [
    'http://console.example',
    'https://console.example.evil.example',
    'https://evil-console.example',
    'https://console.example:8443',
  ]) {
    const reply = await initializeFromBrowser({ origin });
    assertWardenError(reply, 'WARDEN_FORBIDDEN_ORIGIN');
  }
  assert.deepEqual(upstream.received, []);
});

test('refuses a rebound Host with 403 before asking for a token, so it learns nothing of auth', async () => {
  const reply = await postMcp(endpoint, initializeRequest(), {
    headers: { host: `evil.example:${port}`, origin: `http://evil.example:${port}` },
  });
  assertWardenError(reply, 'WARDEN_FORBIDDEN_HOST');
  assert.equal(reply.headers['www-authenticate'], undefined);
  const crossOrigin = await postMcp(endpoint, initializeRequest(), {
    headers: { origin: 'http://evil.example' },
  });
  assertWardenError(crossOrigin, 'WARDEN_FORBIDDEN_ORIGIN');
  assert.equal(crossOrigin.headers['www-authenticate'], undefined);
  assert.deepEqual(upstream.received, []);
});

test('admits the one origin listed in listen.allowed_origins', async () => {
  await openSession(endpoint, { ...auth, origin: CONSOLE_ORIGIN });
  assert.ok(upstream.received.length > 0);
});

test('admits localhost and 127.0.0.1 on its own port, with or without a same-host Origin', async () => {
  for (const name of ['127.0.0.1', 'localhost', 'LOCALHOST']) {
    const host = `${name}:${port}`;
    await openSession(endpoint, { ...auth, host });
    await openSession(endpoint, { ...auth, host, origin: `http://${host}` });
  }
});
