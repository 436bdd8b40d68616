/**
 * Revision 2026-07-28 through Warden: relayed to a 2026-07-28 upstream, and bridged to the
 * sessionful revisions for upstreams that predate it (HTTP SDK 1.x servers and stdio servers),
 * including multi round-trip requests in place of server-to-client sampling and elicitation.
 * Attacks on the mirrored headers and on requestState are refused. Every request authenticates
 * with a token from the gateway's built-in issuer (the SDK client through its authProvider).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { FIXTURE_SERVER_INFO, startV2HttpServer, type V2HttpServer } from './fixtures/v2-server.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

const V = '2026-07-28';
const STDIO_FIXTURE = fileURLToPath(new URL('./fixtures/conformance-stdio.ts', import.meta.url));

let v2: V2HttpServer;
let legacyHttp: Awaited<ReturnType<typeof startConformanceHttpServer>>;
let gateway: TestGateway;
let token: string;
let auth: Record<string, string>;

before(async () => {
  v2 = await startV2HttpServer();
  legacyHttp = await startConformanceHttpServer();
  gateway = await startTestGateway({
    log: { level: 'warn' },
    upstreams: {
      modern: { url: v2.url },
      legacy_http: { url: legacyHttp.url },
      legacy_stdio: { command: [process.execPath, '--import', 'tsx', STDIO_FIXTURE] },
    },
  });
  token = await gateway.token();
  auth = { authorization: `Bearer ${token}` };
});

after(async () => {
  await gateway?.close();
  await legacyHttp?.close();
  await v2?.close();
});

function modernClient(pin: boolean): Client {
  const client = new Client(
    { name: 'stateless-test', version: '1.0.0' },
    {
      capabilities: { elicitation: { form: {} }, sampling: {} },
      versionNegotiation: pin ? { mode: { pin: V } } : { mode: 'auto' },
    },
  );
  client.setRequestHandler('elicitation/create', () => ({
    action: 'accept',
    content: { confirm: true, username: 'alice', email: 'alice@example.com' },
  }));
  client.setRequestHandler('sampling/createMessage', () => ({
    role: 'assistant',
    model: 'test-model',
    content: { type: 'text', text: 'sampled through the bridge' },
  }));
  return client;
}

async function withClient<T>(
  url: string,
  pin: boolean,
  run: (client: Client) => Promise<T>,
): Promise<T> {
  const client = modernClient(pin);
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      authProvider: { token: () => Promise.resolve(token) },
    }),
  );
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

function text(result: { content?: unknown }): string {
  const content = result.content as Array<{ type: string; text?: string }> | undefined;
  return content?.map((part) => part.text ?? '').join('') ?? '';
}

describe('relay to a 2026-07-28 upstream', () => {
  test('a modern client negotiates 2026-07-28 through Warden and calls tools', async () => {
    await withClient(gateway.endpoint('modern'), false, async (client) => {
      assert.equal(client.getNegotiatedProtocolVersion(), V);
      const tools = await client.listTools();
      assert.ok(tools.tools.some((tool) => tool.name === 'echo'));
      const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
      assert.equal(text(echo), 'hi');
    });
  });

  test('multi round-trip elicitation and progress pass through unchanged', async () => {
    await withClient(gateway.endpoint('modern'), true, async (client) => {
      const confirmed = await client.callTool({
        name: 'confirm_action',
        arguments: { action: 'deploy' },
      });
      assert.match(text(confirmed), /^confirmed: deploy/);
      const progress: number[] = [];
      const counted = await client.callTool(
        { name: 'count_with_progress', arguments: { steps: 3 } },
        { onprogress: (p) => progress.push(p.progress) },
      );
      assert.equal(text(counted), 'counted to 3');
      assert.deepEqual(progress, [1, 2, 3]);
    });
  });

  test('the mirrored headers reach the upstream, the client credential does not', async () => {
    const before = v2.received.length;
    // The client's valid Warden token rides in Authorization (postModern sends it).
    const response = await postModern(
      gateway.endpoint('modern'),
      'tools/call',
      { name: 'echo', arguments: { text: 'x' } },
      { cookie: 'session=abc' },
    );
    assert.equal(response.status, 200);
    const seen = v2.received
      .slice(before)
      .find((r) => (r.body as { method?: string } | undefined)?.method === 'tools/call');
    assert.ok(seen, 'the upstream saw the call');
    assert.equal(seen.headers['mcp-method'], 'tools/call');
    assert.equal(seen.headers['mcp-name'], 'echo');
    assert.equal(seen.headers['mcp-protocol-version'], V);
    assert.equal(seen.headers['authorization'], undefined);
    assert.equal(seen.headers['cookie'], undefined);
    const signature = token.split('.')[2] ?? token;
    assert.ok(!JSON.stringify(seen).includes(signature), 'the Warden token reached the upstream');
  });
});

for (const upstream of ['legacy_http', 'legacy_stdio']) {
  describe(`bridge to a sessionful upstream (${upstream})`, () => {
    test('discover describes the upstream as a 2026-07-28 server', async () => {
      await withClient(gateway.endpoint(upstream), true, async (client) => {
        assert.equal(client.getNegotiatedProtocolVersion(), V);
        const tools = await client.listTools();
        assert.ok(tools.tools.some((tool) => tool.name === 'test_simple_text'));
        const result = await client.callTool({ name: 'test_simple_text', arguments: {} });
        assert.match(text(result), /simple text/i);
      });
    });

    test('sampling and elicitation become multi round-trip requests', async () => {
      await withClient(gateway.endpoint(upstream), true, async (client) => {
        const sampled = await client.callTool({
          name: 'test_sampling',
          arguments: { prompt: 'hello' },
        });
        assert.equal(text(sampled), 'LLM response: sampled through the bridge');
        const elicited = await client.callTool({
          name: 'test_elicitation',
          arguments: { message: 'who are you?' },
        });
        assert.match(text(elicited), /alice/);
      });
    });

    test('progress notifications reach the client with its own token', async () => {
      await withClient(gateway.endpoint(upstream), true, async (client) => {
        const progress: number[] = [];
        await client.callTool(
          { name: 'test_tool_with_progress', arguments: {} },
          { onprogress: (p) => progress.push(p.progress) },
        );
        assert.deepEqual(progress, [0, 50, 100]);
      });
    });

    test('a legacy client still gets a session on the same endpoint', async () => {
      const response = await fetch(gateway.endpoint(upstream), {
        method: 'POST',
        headers: {
          ...auth,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-11-25',
            capabilities: {},
            clientInfo: { name: 'old', version: '1' },
          },
        }),
      });
      assert.equal(response.status, 200);
      assert.ok(response.headers.get('mcp-session-id'));
      await response.body?.cancel();
    });
  });
}

describe('attacks on the 2026-07-28 contract', () => {
  test('refuses an Mcp-Name header that names a different tool than the body (-32020)', async () => {
    const response = await postModern(
      gateway.endpoint('legacy_http'),
      'tools/call',
      { name: 'test_sampling', arguments: { prompt: 'x' } },
      { 'mcp-name': 'test_simple_text' },
    );
    assert.equal(response.status, 400);
    const body = (await response.json()) as {
      error: { code: number; data: { mismatch: unknown } };
    };
    assert.equal(body.error.code, -32020);
    assert.deepEqual(body.error.data.mismatch, {
      header: 'test_simple_text',
      body: 'test_sampling',
    });
  });

  test('refuses a request without Mcp-Method (-32020)', async () => {
    const response = await postModern(
      gateway.endpoint('modern'),
      'tools/list',
      {},
      { 'mcp-method': null },
    );
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: { code: number } }).error.code, -32020);
  });

  test('refuses an Mcp-Method header that disagrees with the body (-32020)', async () => {
    const response = await postModern(
      gateway.endpoint('modern'),
      'tools/list',
      {},
      { 'mcp-method': 'prompts/list' },
    );
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: { code: number } }).error.code, -32020);
  });

  for (const upstream of ['modern', 'legacy_http']) {
    test(`refuses an unsupported claimed revision, answering its id and listing what discover lists (-32022, ${upstream})`, async () => {
      const discover = (await readMessage(
        await postModern(gateway.endpoint(upstream), 'server/discover', {}),
      )) as { result: { supportedVersions: string[] } };
      const response = await postModern(
        gateway.endpoint(upstream),
        'server/discover',
        {},
        { 'mcp-protocol-version': '2099-01-01' },
        '2099-01-01',
      );
      assert.equal(response.status, 400);
      const body = (await response.json()) as {
        id: unknown;
        error: { code: number; data: { supported: string[]; requested: string } };
      };
      assert.equal(body.id, 7);
      assert.equal(body.error.code, -32022);
      assert.deepEqual(body.error.data.supported, discover.result.supportedVersions);
      assert.equal(body.error.data.requested, '2099-01-01');
    });
  }

  test('refuses a method 2026-07-28 does not have before policy, and never forwards it (404, -32601)', async () => {
    const before = v2.received.length;
    const removedOrUnknown = [
      'resources/subscribe',
      'resources/unsubscribe',
      'ping',
      'logging/setLevel',
      'initialize',
      'tools/delete_everything',
    ];
    for (const method of removedOrUnknown) {
      const response = await postModern(gateway.endpoint('modern'), method, {
        uri: 'fixture://readme',
      });
      assert.equal(response.status, 404, method);
      const body = (await response.json()) as {
        id: unknown;
        error: { code: number; data: { code: string } };
      };
      assert.equal(body.id, 7);
      assert.equal(body.error.code, -32601, method);
      assert.equal(body.error.data.code, 'WARDEN_METHOD_NOT_FOUND', method);
    }
    assert.equal(v2.received.length, before, 'nothing was forwarded');
  });

  test('refuses a 2026-07-28 header on a body without the envelope (-32602)', async () => {
    const response = await fetch(gateway.endpoint('modern'), {
      method: 'POST',
      headers: {
        ...auth,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': V,
        'mcp-method': 'tools/list',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: { code: number } }).error.code, -32602);
  });

  test('refuses a forged requestState', async () => {
    const response = await postModern(gateway.endpoint('legacy_http'), 'tools/call', {
      name: 'test_sampling',
      arguments: { prompt: 'x' },
      requestState:
        'wst2.local.k0.AAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      inputResponses: {
        'input-1': { role: 'assistant', model: 'm', content: { type: 'text', text: 'x' } },
      },
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { code: number; data: { code: string } } };
    assert.equal(body.error.data.code, 'WARDEN_INVALID_REQUEST_STATE');
  });

  test('refuses a genuine requestState replayed against another tool', async () => {
    const first = await postModern(
      gateway.endpoint('legacy_http'),
      'tools/call',
      {
        name: 'test_sampling',
        arguments: { prompt: 'x' },
      },
      {},
      V,
      { sampling: {} },
    );
    const parked = (await readMessage(first)) as {
      result: { resultType: string; requestState: string; inputRequests: Record<string, unknown> };
    };
    assert.equal(parked.result.resultType, 'input_required');
    const [key] = Object.keys(parked.result.inputRequests);
    const replay = await postModern(
      gateway.endpoint('legacy_http'),
      'tools/call',
      {
        name: 'test_elicitation',
        arguments: { message: 'x' },
        requestState: parked.result.requestState,
        inputResponses: { [key ?? '']: { action: 'accept', content: {} } },
      },
      {},
      V,
      { sampling: {} },
    );
    assert.equal(replay.status, 400);
    assert.equal(
      ((await replay.json()) as { error: { data: { code: string } } }).error.data.code,
      'WARDEN_INVALID_REQUEST_STATE',
    );
  });

  test('refuses a 2026-07-28 request without a token with 401, before the upstream sees it', async () => {
    const before = v2.received.length;
    const response = await postModern(
      gateway.endpoint('modern'),
      'tools/call',
      { name: 'echo', arguments: { text: 'x' } },
      { authorization: null },
    );
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer resource_metadata="/);
    const body = (await response.json()) as { error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'WARDEN_UNAUTHENTICATED');
    assert.equal(v2.received.length, before, 'nothing was forwarded');
  });

  test('refuses a genuine requestState replayed by another identity (a stolen parked call)', async () => {
    const parkedBy = await postModern(
      gateway.endpoint('legacy_http'),
      'tools/call',
      { name: 'test_sampling', arguments: { prompt: 'x' } },
      {},
      V,
      { sampling: {} },
    );
    const parked = (await readMessage(parkedBy)) as {
      result: { requestState: string; inputRequests: Record<string, unknown> };
    };
    const [key] = Object.keys(parked.result.inputRequests);
    const retry = {
      name: 'test_sampling',
      arguments: { prompt: 'x' },
      requestState: parked.result.requestState,
      inputResponses: {
        [key ?? '']: { role: 'assistant', model: 'm', content: { type: 'text', text: 'mine' } },
      },
    };
    const thief = await gateway.token({ user: 'mallory@example.com' });
    const stolen = await postModern(
      gateway.endpoint('legacy_http'),
      'tools/call',
      retry,
      { authorization: `Bearer ${thief}` },
      V,
      { sampling: {} },
    );
    assert.equal(stolen.status, 400);
    assert.equal(
      ((await stolen.json()) as { error: { data: { code: string } } }).error.data.code,
      'WARDEN_INVALID_REQUEST_STATE',
    );
    // The state was genuine: its owner completes the call with it.
    const own = await postModern(gateway.endpoint('legacy_http'), 'tools/call', retry, {}, V, {
      sampling: {},
    });
    const completed = (await readMessage(own)) as { result: { content?: unknown } };
    assert.equal(text(completed.result), 'LLM response: mine');
  });

  test('GET with the 2026-07-28 header is 405 with Allow: POST', async () => {
    const response = await fetch(gateway.endpoint('modern'), {
      headers: { ...auth, accept: 'text/event-stream', 'mcp-protocol-version': V },
    });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'POST');
    await response.body?.cancel();
  });

  test('discover through the relay reports the upstream server', async () => {
    const response = await postModern(gateway.endpoint('modern'), 'server/discover', {});
    const message = (await readMessage(response)) as {
      result: { _meta: Record<string, { name: string }> };
    };
    assert.equal(
      message.result._meta['io.modelcontextprotocol/serverInfo']?.name,
      FIXTURE_SERVER_INFO.name,
    );
  });
});

async function postModern(
  url: string,
  method: string,
  params: Record<string, unknown>,
  headerOverrides: Record<string, string | null> = {},
  version = V,
  capabilities: Record<string, unknown> = {},
): Promise<Response> {
  const name = params['name'] ?? params['uri'];
  const headers: Record<string, string | null> = {
    ...auth,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': version,
    'mcp-method': method,
    ...(typeof name === 'string' && { 'mcp-name': name }),
    ...headerOverrides,
  };
  const sent = Object.fromEntries(
    Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== null),
  );
  const body = {
    jsonrpc: '2.0',
    id: 7,
    method,
    params: {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': version,
        'io.modelcontextprotocol/clientCapabilities': capabilities,
        'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
      },
    },
  };
  return fetch(url, { method: 'POST', headers: sent, body: JSON.stringify(body) });
}

async function readMessage(response: Response): Promise<unknown> {
  const body = await response.text();
  if (response.headers.get('content-type')?.startsWith('application/json')) return JSON.parse(body);
  const data = body
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice(6))
    .filter((line) => line.trim() !== '');
  return JSON.parse(data[data.length - 1] ?? 'null');
}
