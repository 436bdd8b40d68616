// Malformed and hostile HTTP exchanges: each is refused with its own status and JSON-RPC error
// (src/domain/errors.ts), nothing reaches the upstream, and the gateway keeps serving.
// Each is sent with a valid token, so it reaches the check it is about. Without a token the same
// request is refused by authentication first (401), before its body is read: the last tests here.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  assertWardenError,
  initializeRequest,
  MCP_POST_HEADERS,
  openSession,
  postMcp,
  sendRaw,
  type RawReply,
} from './support/raw-http.js';

const MAX_BODY_BYTES = 4096;
const TOOLS_LIST = { jsonrpc: '2.0', id: 7, method: 'tools/list' };

let fixture: Awaited<ReturnType<typeof startConformanceHttpServer>>;
let gateway: TestGateway;
let alpha: string;
/** A valid `Authorization: Bearer …` header, sent with every request unless a test says not. */
let auth: Record<string, string>;

before(async () => {
  fixture = await startConformanceHttpServer();
  gateway = await startTestGateway({
    limits: { max_body_bytes: MAX_BODY_BYTES },
    upstreams: { alpha: { url: fixture.url }, beta: { url: fixture.url } },
  });
  alpha = gateway.endpoint('alpha');
  auth = await gateway.authHeaders();
});

after(async () => {
  await gateway?.close();
  await fixture?.close();
});

/** Opens a raw socket to the gateway and sends the request head, with the token unless told not. */
async function openUpload(
  framing: string,
  options: { readonly authenticated: boolean },
): Promise<{
  socket: ReturnType<typeof connect>;
  received: () => string;
  closed: Promise<unknown>;
}> {
  const url = new URL(alpha);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(
    `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n` +
      `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n` +
      (options.authenticated ? `Authorization: ${auth['authorization']}\r\n` : '') +
      `${framing}\r\n\r\n`,
  );
  return { socket, received: () => received, closed };
}

/**
 * Keeps sending body bytes; resolves whether the gateway closed the connection within 10 s. A
 * gateway that keeps reading never closes it; the bound only leaves a loaded machine room.
 */
async function keepSendingPastTheLimit(
  upload: Awaited<ReturnType<typeof openUpload>>,
  framing: string,
): Promise<'closed' | 'still open'> {
  const piece = 'x'.repeat(1024);
  const chunk = framing.startsWith('Transfer') ? `400\r\n${piece}\r\n` : piece;
  const writer = setInterval(() => upload.socket.destroyed || upload.socket.write(chunk), 2);
  try {
    return await Promise.race([
      upload.closed.then(() => 'closed' as const),
      sleep(10_000).then(() => 'still open' as const),
    ]);
  } finally {
    clearInterval(writer);
    upload.socket.destroy();
  }
}

function assertUnauthenticated(reply: RawReply): void {
  assertWardenError(reply, 'WARDEN_UNAUTHENTICATED');
  assert.match(String(reply.headers['www-authenticate']), /^Bearer resource_metadata="/);
}

test('refuses a body that is not JSON with 400 and -32700', async () => {
  for (const body of ['{"jsonrpc":"2.0","id":1,', 'not json', '']) {
    assertWardenError(await postMcp(alpha, body, { headers: auth }), 'WARDEN_PARSE_ERROR');
  }
});

test('refuses JSON that is not a JSON-RPC 2.0 message with 400 and -32600', async () => {
  const shapes: unknown[] = [
    42,
    'initialize',
    null,
    {},
    { jsonrpc: '1.0', id: 1, method: 'ping' },
    { id: 1, method: 'ping' },
    { jsonrpc: '2.0', id: { forged: true }, method: 'ping' },
    { jsonrpc: '2.0', id: null, method: 'ping' },
    { jsonrpc: '2.0', id: 1, method: '' },
    { jsonrpc: '2.0', id: 1, method: 42 },
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: ['positional'] },
    { jsonrpc: '2.0', id: 1 },
    { jsonrpc: '2.0', id: 1, result: {}, error: { code: 1, message: 'both' } },
    { jsonrpc: '2.0', id: 1, error: 'not an object' },
  ];
  for (const shape of shapes) {
    const reply = await postMcp(alpha, JSON.stringify(shape), { headers: auth });
    const body = assertWardenError(reply, 'WARDEN_INVALID_MESSAGE');
    assert.match(body.error?.message ?? '', /^Invalid JSON-RPC message: /, JSON.stringify(shape));
  }
});

test('refuses a JSON-RPC batch with 400, whatever it contains', async () => {
  for (const batch of [[initializeRequest()], [], [TOOLS_LIST, TOOLS_LIST]]) {
    assertWardenError(await postMcp(alpha, batch, { headers: auth }), 'WARDEN_BATCH_UNSUPPORTED');
  }
});

test('refuses a POST that is not labelled application/json with 415', async () => {
  for (const contentType of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/jsonp',
  ]) {
    const reply = await postMcp(alpha, initializeRequest(), {
      headers: { ...auth, 'content-type': contentType },
    });
    assertWardenError(reply, 'WARDEN_UNSUPPORTED_MEDIA_TYPE');
  }
  const unlabelled = await sendRaw(alpha, {
    method: 'POST',
    headers: { ...auth, accept: MCP_POST_HEADERS['accept'] ?? '' },
    body: JSON.stringify(initializeRequest()),
  });
  assertWardenError(unlabelled, 'WARDEN_UNSUPPORTED_MEDIA_TYPE');
});

test('refuses a POST whose Accept leaves out text/event-stream with 406', async () => {
  for (const accept of ['application/json', 'text/html']) {
    const reply = await postMcp(alpha, initializeRequest(), { headers: { ...auth, accept } });
    assertWardenError(reply, 'WARDEN_NOT_ACCEPTABLE');
  }
  const stream = await sendRaw(alpha, { headers: { ...auth, accept: 'application/json' } });
  assertWardenError(stream, 'WARDEN_NOT_ACCEPTABLE');
});

test('refuses a request without Mcp-Session-Id with 400', async () => {
  assertWardenError(
    await postMcp(alpha, TOOLS_LIST, { headers: auth }),
    'WARDEN_SESSION_REQUIRED',
    7,
  );
  const stream = await sendRaw(alpha, { headers: { ...auth, accept: 'text/event-stream' } });
  assertWardenError(stream, 'WARDEN_SESSION_REQUIRED');
  assertWardenError(
    await sendRaw(alpha, { method: 'DELETE', headers: auth }),
    'WARDEN_SESSION_REQUIRED',
  );
});

test('refuses a forged or guessed session id with 404', async () => {
  await openSession(alpha, auth);
  for (const forged of ['1', 'upstream-session', 'A'.repeat(32), '../../admin']) {
    const reply = await postMcp(alpha, TOOLS_LIST, { sessionId: forged, headers: auth });
    assertWardenError(reply, 'WARDEN_SESSION_NOT_FOUND', 7);
  }
  const deleted = await sendRaw(alpha, {
    method: 'DELETE',
    headers: { ...auth, 'mcp-session-id': 'x' },
  });
  assertWardenError(deleted, 'WARDEN_SESSION_NOT_FOUND');
});

test("refuses a session id replayed on another upstream's path with 404", async () => {
  const sessionId = await openSession(alpha, auth);
  const stolen = await postMcp(gateway.endpoint('beta'), TOOLS_LIST, { sessionId, headers: auth });
  assertWardenError(stolen, 'WARDEN_SESSION_NOT_FOUND', 7);
  const own = await postMcp(alpha, TOOLS_LIST, { sessionId, headers: auth });
  assert.equal(own.status, 200, 'the session still works on its own path');
});

test('refuses an initialize that carries a session id with 400', async () => {
  const sessionId = await openSession(alpha, auth);
  const reply = await postMcp(alpha, initializeRequest(), { sessionId, headers: auth });
  assertWardenError(reply, 'WARDEN_SESSION_CONFLICT', 'init');
});

test('refuses an oversized body announced by Content-Length with 413', async () => {
  const reply = await postMcp(
    alpha,
    { ...initializeRequest(), padding: 'x'.repeat(MAX_BODY_BYTES) },
    { headers: auth },
  );
  assertWardenError(reply, 'WARDEN_BODY_TOO_LARGE');
});

test('refuses an oversized chunked body that never announced its length with 413', async () => {
  const reply = await sendRaw(alpha, {
    method: 'POST',
    headers: { ...MCP_POST_HEADERS, ...auth },
    chunked: true,
    body: JSON.stringify({ ...initializeRequest(), padding: 'x'.repeat(MAX_BODY_BYTES * 4) }),
  });
  assertWardenError(reply, 'WARDEN_BODY_TOO_LARGE');
});

for (const framing of ['Content-Length: 100000000', 'Transfer-Encoding: chunked']) {
  test(`cuts off a client that keeps sending past the limit (${framing.split(':')[0]})`, async () => {
    // After the 413 the connection must close: reading the rest to keep it alive would let the
    // attacker push an unbounded body through the gateway after all.
    const upload = await openUpload(framing, { authenticated: true });
    const outcome = await keepSendingPastTheLimit(upload, framing);
    assert.equal(outcome, 'closed', 'the gateway kept reading the oversized body');
    assert.match(upload.received(), /^HTTP\/1\.1 413 /);
    assert.match(upload.received(), /\r\nconnection: close\r\n/i);
  });
}

test('answers an unknown upstream with 404', async () => {
  for (const path of ['/mcp/nope', '/mcp/NOPE', '/mcp/alpha/extra', '/mcp']) {
    const reply = await postMcp(`${gateway.url}${path}`, initializeRequest(), { headers: auth });
    assertWardenError(reply, 'WARDEN_UNKNOWN_UPSTREAM');
  }
});

test('answers any path outside /mcp with 404', async () => {
  for (const path of ['/elsewhere', '/', '/admin', '/.env', '/mcpx']) {
    assertWardenError(
      await sendRaw(`${gateway.url}${path}`, { headers: auth }),
      'WARDEN_NOT_FOUND',
    );
  }
});

test('refuses PUT and PATCH with 405 and names the allowed methods', async () => {
  for (const method of ['PUT', 'PATCH']) {
    const reply = await sendRaw(alpha, {
      method,
      headers: { ...MCP_POST_HEADERS, ...auth },
      body: JSON.stringify(initializeRequest()),
    });
    assertWardenError(reply, 'WARDEN_METHOD_NOT_ALLOWED');
    assert.equal(reply.headers['allow'], 'GET, POST, DELETE');
  }
});

test('refuses an MCP-Protocol-Version it does not serve with 400, answering the request id', async () => {
  for (const version of ['1999-01-01', '2025-06-18; drop table', 'latest']) {
    const reply = await postMcp(alpha, initializeRequest(), {
      headers: { ...auth, 'mcp-protocol-version': version },
    });
    assertWardenError(reply, 'WARDEN_UNSUPPORTED_PROTOCOL_VERSION', 'init');
  }
});

test('survives a client that disconnects in the middle of its body', async () => {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const upload = await openUpload('Content-Length: 2000', { authenticated: true });
    upload.socket.write('{"jsonrpc":"2.0","id":1,"method":"initi');
    await sleep(20);
    upload.socket.destroy();
  }
  await sleep(50);
  const failures = gateway.logs.filter((line) => Number(line['level']) >= 50);
  assert.deepEqual(failures, [], 'an aborted upload is not a gateway error');
  await openSession(alpha, auth);
});

test('without a token, a body that is not JSON gets 401, not 400: authentication comes first', async () => {
  for (const body of ['{"jsonrpc":"2.0","id":1,', 'not json', '[]']) {
    assertUnauthenticated(await postMcp(alpha, body));
  }
});

test('without a token, every malformed request gets the same 401', async () => {
  // An anonymous caller learns nothing about sessions, limits or methods: not even whether a
  // session id exists, or that a body is too large.
  const sessionId = await openSession(alpha, auth);
  const anonymous: RawReply[] = [
    await postMcp(alpha, TOOLS_LIST),
    await postMcp(alpha, TOOLS_LIST, { sessionId }),
    await postMcp(alpha, TOOLS_LIST, { sessionId: 'A'.repeat(32) }),
    await postMcp(alpha, initializeRequest(), { sessionId }),
    await postMcp(alpha, { ...initializeRequest(), padding: 'x'.repeat(MAX_BODY_BYTES) }),
    await postMcp(alpha, initializeRequest(), { headers: { 'content-type': 'text/plain' } }),
    await postMcp(alpha, initializeRequest(), { headers: { 'mcp-protocol-version': 'latest' } }),
    await sendRaw(alpha, { method: 'PUT', headers: MCP_POST_HEADERS, body: '{}' }),
    await sendRaw(alpha, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } }),
    await sendRaw(alpha, { headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } }),
  ];
  for (const reply of anonymous) assertUnauthenticated(reply);
  const own = await postMcp(alpha, TOOLS_LIST, { sessionId, headers: auth });
  assert.equal(own.status, 200, 'the session was not ended by the anonymous DELETE');
});

test('without a token, an unknown upstream is still 404: routing comes before authentication', async () => {
  // Upstream names are public anyway: each has its protected resource metadata document.
  for (const path of ['/mcp/nope', '/mcp']) {
    assertWardenError(
      await postMcp(`${gateway.url}${path}`, initializeRequest()),
      'WARDEN_UNKNOWN_UPSTREAM',
    );
  }
});

for (const framing of ['Content-Length: 100000000', 'Transfer-Encoding: chunked']) {
  test(`cuts off an anonymous client that keeps sending a body after its 401 (${framing.split(':')[0]})`, async () => {
    const upload = await openUpload(framing, { authenticated: false });
    const outcome = await keepSendingPastTheLimit(upload, framing);
    assert.match(upload.received(), /^HTTP\/1\.1 401 /);
    assert.equal(outcome, 'closed', 'the gateway kept reading the anonymous body');
    assert.match(upload.received(), /\r\nconnection: close\r\n/i);
  });
}

test('a well-formed initialize still works after all of the above', async () => {
  const sessionId = await openSession(alpha, auth);
  const reply = await postMcp(alpha, TOOLS_LIST, { sessionId, headers: auth });
  assert.equal(reply.status, 200);
  assert.match(reply.text, /test_simple_text/);
});
