// Pins the 2026-07-28 Streamable HTTP wire contract as implemented by the v2 SDK
// (@modelcontextprotocol/server 2.4.0), using the fixture in test/fixtures/v2-server.ts.
// The raw fetch() tests document exactly what a proxy in front of (or emulating)
// such a server must reproduce. See docs/notes-2026-07-28.md.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  FIXTURE_RESOURCE_TEXT,
  FIXTURE_RESOURCE_URI,
  FIXTURE_SERVER_INFO,
  startV2HttpServer,
} from './fixtures/v2-server.js';
import type { V2HttpServer } from './fixtures/v2-server.js';

const V = '2026-07-28';
const PV_KEY = 'io.modelcontextprotocol/protocolVersion';
const CAPS_KEY = 'io.modelcontextprotocol/clientCapabilities';
const INFO_KEY = 'io.modelcontextprotocol/clientInfo';
const LOG_KEY = 'io.modelcontextprotocol/logLevel';
const SERVER_INFO_KEY = 'io.modelcontextprotocol/serverInfo';

let fx: V2HttpServer;

before(async () => {
  fx = await startV2HttpServer();
});
after(async () => {
  await fx.close();
});

// ---------------------------------------------------------------- helpers

interface JsonRpcError {
  code: number;
  message: string;
  data?: unknown;
}
interface JsonRpcMessage {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: JsonRpcError;
}
interface RawReply {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body (application/json), or the `data:` payloads of an SSE body. */
  messages: JsonRpcMessage[];
}

function envelope(caps: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    [PV_KEY]: V,
    [INFO_KEY]: { name: 'raw-test', version: '0.0.0' },
    [CAPS_KEY]: caps,
    ...extra,
  };
}

/** The headers a conforming 2026-07-28 client sends for `method` (plus overrides; `null` deletes). */
function modernHeaders(
  method: string,
  overrides: Record<string, string | null> = {},
): Record<string, string> {
  const headers: Record<string, string | null> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': V,
    'mcp-method': method,
    ...overrides,
  };
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== null) out[name] = value;
  return out;
}

async function post(body: unknown, headers: Record<string, string>): Promise<RawReply> {
  return send('POST', headers, JSON.stringify(body));
}

async function send(
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawReply> {
  const response = await fetch(fx.url, { method, headers, ...(body !== undefined && { body }) });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  let messages: JsonRpcMessage[] = [];
  if (type.startsWith('text/event-stream')) {
    messages = text
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => JSON.parse(line.slice('data:'.length)) as JsonRpcMessage);
  } else if (type.startsWith('application/json') && text.length > 0) {
    messages = [JSON.parse(text) as JsonRpcMessage];
  }
  return { status: response.status, headers: response.headers, text, messages };
}

function only(reply: RawReply): JsonRpcMessage {
  assert.equal(reply.messages.length, 1, reply.text);
  return reply.messages[0] as JsonRpcMessage;
}

function assertError(reply: RawReply, status: number, code: number, id: string | number | null) {
  assert.equal(reply.status, status, reply.text);
  assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
  const msg = only(reply);
  assert.equal(msg.error?.code, code, reply.text);
  assert.equal(msg.id, id);
  return msg.error as JsonRpcError;
}

function toolCall(id: number, name: string, args: Record<string, unknown>, meta = envelope()) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, _meta: meta },
  };
}

async function connectModernClient(
  options: {
    elicit?: (message: string) => Record<string, string | number | boolean | string[]>;
  } = {},
): Promise<Client> {
  const client = new Client(
    { name: 'warden-test-client', version: '0.0.0' },
    {
      capabilities: { elicitation: { form: {} } },
      versionNegotiation: { mode: 'auto' },
    },
  );
  client.setRequestHandler('elicitation/create', (request) => {
    const message = 'message' in request.params ? request.params.message : '';
    return { action: 'accept', content: (options.elicit ?? (() => ({ confirm: true })))(message) };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(fx.url)));
  return client;
}

// ------------------------------------------------------- real v2 SDK client

test('v2 client (versionNegotiation auto) negotiates 2026-07-28 via server/discover', async () => {
  const client = await connectModernClient();
  try {
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), V);
    const discover = client.getDiscoverResult();
    assert.deepEqual(discover?.supportedVersions, [V]);
    assert.ok(discover?.capabilities.tools);
    assert.deepEqual(client.getServerVersion(), FIXTURE_SERVER_INFO);
    assert.equal(client.getInstructions(), 'Fixture server for Warden tests.');
  } finally {
    await client.close();
  }
});

test('v2 client: tools/list, tools/call echo/add, resources/read, prompts/get', async () => {
  const client = await connectModernClient();
  try {
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      ['echo', 'add', 'confirm_action', 'count_with_progress', 'regional_lookup'],
    );
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'hello' }]);
    const add = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    assert.deepEqual(add.structuredContent, { sum: 5 });
    const resource = await client.readResource({ uri: FIXTURE_RESOURCE_URI });
    assert.deepEqual(resource.contents, [
      { uri: FIXTURE_RESOURCE_URI, mimeType: 'text/plain', text: FIXTURE_RESOURCE_TEXT },
    ]);
    const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
    assert.deepEqual(prompt.messages, [
      { role: 'user', content: { type: 'text', text: 'Please greet Ada.' } },
    ]);
    // The SEP-2243 x-mcp-header tool: the client mirrors `region` into Mcp-Param-Region.
    const lookup = await client.callTool({
      name: 'regional_lookup',
      arguments: { region: 'eu-west-1', key: 'k' },
    });
    assert.deepEqual(lookup.content, [{ type: 'text', text: 'k@eu-west-1' }]);
    const forwarded = fx.received.findLast((r) => r.headers['mcp-name'] === 'regional_lookup');
    assert.equal(forwarded?.headers['mcp-param-region'], 'eu-west-1');
  } finally {
    await client.close();
  }
});

test('v2 client sends the SEP-2243 headers and the _meta envelope on every POST, and no GET/DELETE', async () => {
  const start = fx.received.length;
  const client = await connectModernClient();
  await client.callTool({ name: 'echo', arguments: { text: 'x' } });
  await client.close();
  const seen = fx.received.slice(start);
  assert.deepEqual(
    seen.map((r) => r.method),
    ['POST', 'POST'],
  );
  const [probe, call] = seen;
  assert.equal(probe?.headers['mcp-method'], 'server/discover');
  assert.equal(probe?.headers['mcp-protocol-version'], V);
  assert.equal(probe?.headers['mcp-name'], undefined);
  assert.match(String((probe?.body as JsonRpcMessage).id), /^server-discover-probe-/);
  assert.equal(call?.headers['mcp-method'], 'tools/call');
  assert.equal(call?.headers['mcp-name'], 'echo');
  assert.equal(call?.headers['mcp-session-id'], undefined);
  const meta = (call?.body as JsonRpcMessage).params?.['_meta'] as Record<string, unknown>;
  assert.equal(meta[PV_KEY], V);
  assert.deepEqual(meta[CAPS_KEY], { elicitation: { form: {} } });
  assert.deepEqual(meta[INFO_KEY], { name: 'warden-test-client', version: '0.0.0' });
});

test('v2 client: MRTR elicitation round trip is answered by the client-side elicitation handler', async () => {
  const prompts: string[] = [];
  const client = await connectModernClient({
    elicit: (message) => {
      prompts.push(message);
      return { confirm: true };
    },
  });
  const start = fx.received.length;
  try {
    const result = await client.callTool({
      name: 'confirm_action',
      arguments: { action: 'deploy' },
    });
    assert.deepEqual(result.content, [
      { type: 'text', text: 'confirmed: deploy (state confirm:deploy)' },
    ]);
    assert.deepEqual(prompts, ['Confirm action: deploy?']);
    // Two independent POSTs: the original call and the retry with a NEW id
    // carrying inputResponses + the byte-exact requestState echo.
    const calls = fx.received.slice(start).map((r) => r.body as JsonRpcMessage);
    assert.equal(calls.length, 2);
    const [first, retry] = calls;
    assert.notEqual(first?.id, retry?.id);
    assert.equal(first?.params?.['inputResponses'], undefined);
    assert.deepEqual(retry?.params?.['inputResponses'], {
      confirm: { action: 'accept', content: { confirm: true } },
    });
    assert.equal(retry?.params?.['requestState'], 'confirm:deploy');
  } finally {
    await client.close();
  }
});

test('v2 client: progress notifications arrive on the request-scoped SSE stream', async () => {
  const client = await connectModernClient();
  try {
    const progress: { progress: number; total?: number }[] = [];
    const result = await client.callTool(
      { name: 'count_with_progress', arguments: { steps: 3 } },
      {
        onprogress: (p) =>
          progress.push({ progress: p.progress, ...(p.total !== undefined && { total: p.total }) }),
      },
    );
    assert.deepEqual(result.content, [{ type: 'text', text: 'counted to 3' }]);
    assert.deepEqual(progress, [
      { progress: 1, total: 3 },
      { progress: 2, total: 3 },
      { progress: 3, total: 3 },
    ]);
  } finally {
    await client.close();
  }
});

test('interop: a v2 client WITHOUT versionNegotiation speaks legacy 2025-11-25 (initialize) to the same server', async () => {
  const client = new Client({ name: 'default-client', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(fx.url)));
  try {
    assert.equal(client.getProtocolEra(), 'legacy');
    assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25');
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'legacy' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'legacy' }]);
  } finally {
    await client.close();
  }
});

test('interop: an SDK 1.x client is served by the stateless legacy fallback (no session id, no elicitation)', async () => {
  const client = new V1Client({ name: 'v1-client', version: '0.0.0' });
  await client.connect(new V1StreamableHTTPClientTransport(new URL(fx.url)));
  try {
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'v1' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'v1' }]);
    // Per-request legacy serving cannot send server->client requests, so the
    // MRTR tool fails in-band on a 2025-era connection.
    const confirm = await client.callTool({ name: 'confirm_action', arguments: { action: 'x' } });
    assert.equal(confirm.isError, true);
  } finally {
    await client.close();
  }
});

// -------------------------------------------------------------- raw wire

test('wire: server/discover result shape', async () => {
  const reply = await post(
    { jsonrpc: '2.0', id: 'd1', method: 'server/discover', params: { _meta: envelope() } },
    modernHeaders('server/discover'),
  );
  assert.equal(reply.status, 200);
  assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
  const msg = only(reply);
  assert.equal(msg.id, 'd1');
  const result = msg.result as Record<string, unknown>;
  assert.equal(result['resultType'], 'complete');
  assert.deepEqual(result['supportedVersions'], [V]);
  assert.equal(result['ttlMs'], 0);
  assert.equal(result['cacheScope'], 'private');
  assert.equal(result['serverInfo'], undefined, 'serverInfo lives in _meta, not the body');
  assert.deepEqual(
    (result['_meta'] as Record<string, unknown>)[SERVER_INFO_KEY],
    FIXTURE_SERVER_INFO,
  );
  assert.deepEqual(result['capabilities'], {
    logging: {},
    prompts: { listChanged: true },
    resources: { listChanged: true },
    tools: { listChanged: true },
  });
});

test('wire: every 2026 result carries resultType; cacheable lists carry ttlMs/cacheScope', async () => {
  const list = only(
    await post(
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } },
      modernHeaders('tools/list'),
    ),
  );
  assert.equal(list.result?.['resultType'], 'complete');
  assert.equal(list.result?.['ttlMs'], 0);
  assert.equal(list.result?.['cacheScope'], 'private');
  const call = only(
    await post(
      toolCall(2, 'echo', { text: 'a' }),
      modernHeaders('tools/call', { 'mcp-name': 'echo' }),
    ),
  );
  assert.equal(call.result?.['resultType'], 'complete');
  assert.deepEqual(call.result?.['content'], [{ type: 'text', text: 'a' }]);
});

test('wire: Mcp-Method header that mismatches the body -> HTTP 400, JSON-RPC -32020 (HeaderMismatch)', async () => {
  const reply = await post(
    { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: envelope() } },
    modernHeaders('tools/call'),
  );
  const error = assertError(reply, 400, -32020, 7);
  assert.deepEqual((error.data as { mismatch: { header: string } }).mismatch.header, 'tools/call');
});

test('wire: missing/mismatched standard headers -> HTTP 400, -32020, id echoed', async () => {
  const listBody = { jsonrpc: '2.0', id: 11, method: 'tools/list', params: { _meta: envelope() } };
  // MCP-Protocol-Version absent (checked first), Mcp-Method absent.
  assertError(
    await post(listBody, modernHeaders('tools/list', { 'mcp-protocol-version': null })),
    400,
    -32020,
    11,
  );
  assertError(
    await post(listBody, modernHeaders('tools/list', { 'mcp-method': null })),
    400,
    -32020,
    11,
  );
  // MCP-Protocol-Version present but disagreeing with the envelope.
  assertError(
    await post(listBody, modernHeaders('tools/list', { 'mcp-protocol-version': '2025-11-25' })),
    400,
    -32020,
    11,
  );
  // Mcp-Name: required for tools/call (params.name), prompts/get (params.name), resources/read (params.uri).
  const echo = toolCall(12, 'echo', { text: 'x' });
  assertError(await post(echo, modernHeaders('tools/call')), 400, -32020, 12);
  assertError(
    await post(echo, modernHeaders('tools/call', { 'mcp-name': 'other' })),
    400,
    -32020,
    12,
  );
  const read = {
    jsonrpc: '2.0',
    id: 13,
    method: 'resources/read',
    params: { uri: FIXTURE_RESOURCE_URI, _meta: envelope() },
  };
  assertError(await post(read, modernHeaders('resources/read')), 400, -32020, 13);
  const ok = await post(
    read,
    modernHeaders('resources/read', { 'mcp-name': FIXTURE_RESOURCE_URI }),
  );
  assert.equal(ok.status, 200);
  // Base64 sentinel form of Mcp-Name is accepted (and decoded before comparison).
  const sentinel = `=?base64?${Buffer.from('echo').toString('base64')}?=`;
  assert.equal(
    (await post(echo, modernHeaders('tools/call', { 'mcp-name': sentinel }))).status,
    200,
  );
  // Mcp-Param-{Name} from x-mcp-header: missing or disagreeing -> -32020.
  const lookup = toolCall(14, 'regional_lookup', { region: 'eu', key: 'k' });
  const lookupHeaders = modernHeaders('tools/call', { 'mcp-name': 'regional_lookup' });
  assertError(await post(lookup, lookupHeaders), 400, -32020, 14);
  assertError(await post(lookup, { ...lookupHeaders, 'mcp-param-region': 'us' }), 400, -32020, 14);
  assert.equal((await post(lookup, { ...lookupHeaders, 'mcp-param-region': 'eu' })).status, 200);
});

test('wire: version and envelope errors (-32022 unsupported version, -32602 envelope)', async () => {
  const unsupported = await post(
    {
      jsonrpc: '2.0',
      id: 21,
      method: 'tools/list',
      params: { _meta: { ...envelope(), [PV_KEY]: '2099-01-01' } },
    },
    modernHeaders('tools/list', { 'mcp-protocol-version': '2099-01-01' }),
  );
  const e1 = assertError(unsupported, 400, -32022, 21);
  assert.deepEqual(e1.data, { supported: [V], requested: '2099-01-01' });
  // Modern header but no _meta envelope at all.
  const noEnvelope = await post(
    { jsonrpc: '2.0', id: 22, method: 'tools/list', params: {} },
    modernHeaders('tools/list'),
  );
  assert.deepEqual(assertError(noEnvelope, 400, -32602, 22).data, {
    envelope: { missing: ['_meta'] },
  });
  // Envelope claim present but clientCapabilities (required) missing.
  const noCaps = await post(
    { jsonrpc: '2.0', id: 23, method: 'tools/list', params: { _meta: { [PV_KEY]: V } } },
    modernHeaders('tools/list'),
  );
  assert.deepEqual(assertError(noCaps, 400, -32602, 23).data, {
    envelope: { key: CAPS_KEY, problem: 'missing' },
  });
});

test('wire: methods absent from 2026-07-28 (ping, logging/setLevel, enveloped initialize, unknown) -> HTTP 404, -32601', async () => {
  for (const [id, method] of [
    [31, 'ping'],
    [32, 'logging/setLevel'],
    [33, 'no/such/method'],
    [34, 'initialize'],
  ] as const) {
    const reply = await post(
      { jsonrpc: '2.0', id, method, params: { _meta: envelope() } },
      modernHeaders(method),
    );
    assertError(reply, 404, -32601, id);
  }
  // In-band (handler) errors stay HTTP 200, e.g. an unknown tool name.
  const unknownTool = await post(
    toolCall(35, 'nope', {}),
    modernHeaders('tools/call', { 'mcp-name': 'nope' }),
  );
  assertError(unknownTool, 200, -32602, 35);
});

test('wire: GET and DELETE -> 405 with Allow: POST', async () => {
  for (const method of ['GET', 'DELETE']) {
    const reply = await send(method, { accept: 'text/event-stream', 'mcp-protocol-version': V });
    assert.equal(reply.status, 405, method);
    assert.equal(reply.headers.get('allow'), 'POST');
    assert.deepEqual(only(reply), {
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Method not allowed.' },
      id: null,
    });
  }
});

test('wire: other transport-level rejections (415, 400 parse error, 400 modern batch, 202 notification)', async () => {
  const list = { jsonrpc: '2.0', id: 41, method: 'tools/list', params: { _meta: envelope() } };
  const badType = await send(
    'POST',
    modernHeaders('tools/list', { 'content-type': 'text/plain' }),
    JSON.stringify(list),
  );
  assertError(badType, 415, -32000, null);
  assertError(await send('POST', modernHeaders('tools/list'), '{not json'), 400, -32700, null);
  assertError(await post([list], modernHeaders('tools/list')), 400, -32600, null);
  const notification = await post(
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } },
    modernHeaders('notifications/cancelled'),
  );
  assert.equal(notification.status, 202);
  assert.equal(notification.text, '');
  // The modern path does not enforce Accept (a JSON reply is still produced).
  const noAccept = await post(list, modernHeaders('tools/list', { accept: null }));
  assert.equal(noAccept.status, 200);
});

test('wire: MRTR shapes - input_required result, retry with inputResponses/requestState, -32021 without capability', async () => {
  const caps = { elicitation: { form: {} } };
  const headers = modernHeaders('tools/call', { 'mcp-name': 'confirm_action' });
  const first = only(
    await post(toolCall(51, 'confirm_action', { action: 'wipe' }, envelope(caps)), headers),
  );
  assert.equal(first.id, 51);
  assert.deepEqual(first.result, {
    resultType: 'input_required',
    inputRequests: {
      confirm: {
        method: 'elicitation/create',
        params: {
          message: 'Confirm action: wipe?',
          requestedSchema: {
            type: 'object',
            properties: { confirm: { type: 'boolean' } },
            required: ['confirm'],
            $schema: 'https://json-schema.org/draft/2020-12/schema',
          },
          mode: 'form',
        },
      },
    },
    requestState: 'confirm:wipe',
    _meta: { [SERVER_INFO_KEY]: FIXTURE_SERVER_INFO },
  });
  const retryBody = toolCall(52, 'confirm_action', { action: 'wipe' }, envelope(caps));
  Object.assign(retryBody.params, {
    inputResponses: { confirm: { action: 'accept', content: { confirm: false } } },
    requestState: 'confirm:wipe',
  });
  const retry = only(await post(retryBody, headers));
  assert.equal(retry.id, 52);
  assert.equal(retry.result?.['resultType'], 'complete');
  assert.deepEqual(retry.result?.['content'], [{ type: 'text', text: 'declined: wipe' }]);
  // Without elicitation in clientCapabilities the server may not embed the request.
  const noCaps = await post(toolCall(53, 'confirm_action', { action: 'wipe' }), headers);
  const error = assertError(noCaps, 400, -32021, 53);
  assert.deepEqual(error.data, { requiredCapabilities: { elicitation: { form: {} } } });
});

test('wire: progress/logging notifications ride a request-scoped SSE stream ending with the result', async () => {
  const headers = modernHeaders('tools/call', { 'mcp-name': 'count_with_progress' });
  const withToken = await post(
    toolCall(
      61,
      'count_with_progress',
      { steps: 2 },
      envelope({}, { progressToken: 'tok', [LOG_KEY]: 'info' }),
    ),
    headers,
  );
  assert.equal(withToken.status, 200);
  assert.equal(withToken.headers.get('content-type'), 'text/event-stream');
  assert.equal(withToken.headers.get('x-accel-buffering'), 'no');
  assert.match(withToken.text, /^event: message\ndata: /);
  assert.deepEqual(
    withToken.messages.map((m) => m.method ?? `result:${String(m.id)}`),
    ['notifications/message', 'notifications/progress', 'notifications/progress', 'result:61'],
  );
  assert.deepEqual(withToken.messages[0]?.params, {
    level: 'info',
    data: 'counting to 2',
    logger: 'fixture',
  });
  assert.deepEqual(withToken.messages[1]?.params, {
    progressToken: 'tok',
    progress: 1,
    total: 2,
    message: 'step 1',
  });
  // No progressToken and no logLevel: nothing to stream -> plain JSON.
  const plain = await post(toolCall(62, 'count_with_progress', { steps: 2 }), headers);
  assert.match(plain.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(only(plain).result?.['resultType'], 'complete');
});

test('wire: legacy traffic - initialize is served statelessly; modern header on initialize is -32020', async () => {
  const init = {
    jsonrpc: '2.0',
    id: 71,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'legacy', version: '0' },
    },
  };
  const legacyHeaders = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  const reply = await post(init, legacyHeaders);
  assert.equal(reply.status, 200);
  assert.equal(reply.headers.get('mcp-session-id'), null);
  const result = only(reply).result as Record<string, unknown>;
  assert.equal(result['protocolVersion'], '2025-11-25');
  assert.equal(result['resultType'], undefined);
  // A client asking initialize for 2026-07-28 is counter-offered the newest legacy version.
  const counter = only(
    await post({ ...init, params: { ...init.params, protocolVersion: V } }, legacyHeaders),
  );
  assert.equal(counter.result?.['protocolVersion'], '2025-11-25');
  // initialize is never a 2026 method: with a modern version header it is a header/body mismatch.
  assertError(await post(init, { ...legacyHeaders, 'mcp-protocol-version': V }), 400, -32020, 71);
});

test('wire: modern-only endpoint (legacy: reject) answers initialize with -32022 listing supported versions', async () => {
  const strict = await startV2HttpServer({ legacy: 'reject' });
  try {
    const response = await fetch(strict.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 81,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'l', version: '0' },
        },
      }),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as JsonRpcMessage;
    assert.equal(body.id, 81);
    assert.equal(body.error?.code, -32022);
    assert.deepEqual(body.error?.data, { supported: [V], requested: '2025-06-18' });
  } finally {
    await strict.close();
  }
});
