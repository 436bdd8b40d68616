/**
 * Any replica serves any session: three gateways on one PostgreSQL schema behind a round-robin
 * balancer with no affinity. An unmodified SDK 1.x client at default options opens a session on
 * one replica and every later request lands on another, relayed to the owner over the signed
 * internal hop; a replica that stops takes its sessions with it (the spec's 404, at once); a
 * client cannot forge a hop.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { findFreePort } from './support/processes.js';
import { startRoundRobinBalancer, type Balancer } from './support/round-robin-balancer.js';
import { createSharedSchema, POSTGRES_URL, uniqueName } from './support/store-databases.js';

function echoServer(): McpServer {
  const server = new McpServer({ name: 'echo', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Says it back.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }),
  );
  return server;
}

describe('sessions through any replica (PostgreSQL, three replicas, round robin)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-replicas-'));
  const schema = uniqueName('replicas').toLowerCase();
  let upstream: McpHttpUpstream;
  let legacy: Awaited<ReturnType<typeof startConformanceHttpServer>>;
  let balancer: Balancer;
  const replicas: TestGateway[] = [];
  const stopped = new Set<TestGateway>();
  let store: Store;

  before(async () => {
    const storeUrl = await createSharedSchema(schema);
    upstream = await startMcpHttpUpstream(echoServer);
    legacy = await startConformanceHttpServer();
    const backends: string[] = [];
    balancer = await startRoundRobinBalancer(backends);
    for (const name of ['r1', 'r2', 'r3']) {
      const port = await findFreePort();
      replicas.push(
        await startTestGateway({
          log: { level: 'warn' },
          // The balancer's address is the one clients name.
          listen: { host: '127.0.0.1', port, allowed_hosts: [new URL(balancer.url).host] },
          store: storeUrl,
          audit: { stream: `replica-${name}`, hash_key_file: join(dir, 'hash.key') },
          cluster: { advertise_url: `http://127.0.0.1:${port}`, heartbeat: '200ms' },
          upstreams: { echo: { url: upstream.url }, legacy: { url: legacy.url } },
        }),
      );
    }
    backends.push(...replicas.map((replica) => replica.url));
    store = await openStore(POSTGRES_URL, { schema });
  });
  after(async () => {
    await balancer?.close();
    for (const replica of replicas) await replica.close().catch(() => undefined);
    await upstream?.close();
    await legacy?.close();
    await store?.close();
  });

  async function connectThroughBalancer(): Promise<{
    client: Client;
    transport: StreamableHTTPClientTransport;
  }> {
    // Any replica still running issues the token (the stopped one's store is closed).
    const token = await replicas.find((replica) => !stopped.has(replica))!.token();
    const transport = new StreamableHTTPClientTransport(new URL(`${balancer.url}/mcp/echo`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: 'replica-test', version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  }

  test('an SDK 1.x client at defaults keeps one session while its requests land on every replica', async () => {
    const before = balancer.routed.length;
    const initializesBefore = upstream.received.filter((m) => m.method === 'initialize').length;
    const { client, transport } = await connectThroughBalancer();
    try {
      const listed = await client.listTools();
      assert.deepEqual(
        listed.tools.map((tool) => tool.name),
        ['echo'],
      );
      for (let i = 0; i < 6; i += 1) {
        const result = await client.callTool({ name: 'echo', arguments: { text: `hi ${i}` } });
        assert.deepEqual(result.content, [{ type: 'text', text: `echo: hi ${i}` }]);
      }
      const used = new Set(balancer.routed.slice(before));
      assert.equal(used.size, 3, 'the balancer spread the requests over all three replicas');
      assert.equal(
        upstream.received.filter((m) => m.method === 'initialize').length - initializesBefore,
        1,
        'one session upstream: no replica opened a second one',
      );
      const record = await store.sessions.find(transport.sessionId ?? '');
      assert.ok(record, 'the session is published in the store');
    } finally {
      await client.close();
    }
  });

  test('an SDK 2.x client (2026-07-28) completes multi round-trip sampling whose retry lands on another replica', async () => {
    const token = await replicas[0]!.token();
    const client = new ClientV2(
      { name: 'replica-test-v2', version: '1.0.0' },
      { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    client.setRequestHandler('sampling/createMessage', () => ({
      role: 'assistant',
      model: 'test-model',
      content: { type: 'text', text: 'sampled across replicas' },
    }));
    await client.connect(
      new TransportV2(new URL(`${balancer.url}/mcp/legacy`), {
        authProvider: { token: () => Promise.resolve(token) },
      }),
    );
    try {
      // Listed (and its tools trusted on first use) through one replica, called through others.
      await client.listTools();
      for (let i = 0; i < 3; i += 1) {
        const routedBefore = balancer.routed.length;
        const sampled = await client.callTool({
          name: 'test_sampling',
          arguments: { prompt: `hello ${i}` },
        });
        const content = sampled.content as Array<{ text?: string }>;
        assert.equal(content[0]?.text, 'LLM response: sampled across replicas');
        const [first, retry] = balancer.routed.slice(routedBefore);
        assert.notEqual(first, retry, 'the retry reached another replica than the parked call');
      }
    } finally {
      await client.close();
    }
  });

  test('a client cannot forge a hop: refused with WARDEN_HOP_REFUSED', async () => {
    const token = await replicas[1]!.token();
    const response = await fetch(`${replicas[1]!.url}/mcp/echo`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': 'made-up',
        'warden-hop-from': 'replica-r1',
        'warden-hop-to': 'replica-r2',
        'warden-hop-at': String(Date.now()),
        'warden-hop-source': '10.9.8.7',
        'warden-hop-signature': 'A'.repeat(43),
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(response.status, 403);
    const body = (await response.json()) as { error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'WARDEN_HOP_REFUSED');
  });

  test("a stopped replica's sessions end: the client is told 404 at once, and a new session works", async () => {
    const { client, transport } = await connectThroughBalancer();
    const sessionId = transport.sessionId ?? '';
    const owner = (await store.sessions.find(sessionId))?.replica;
    assert.ok(owner !== undefined);
    const index = ['replica-r1', 'replica-r2', 'replica-r3'].indexOf(owner);
    await replicas[index]!.close();
    stopped.add(replicas[index]!);
    balancer.remove(index);
    const token = await replicas[(index + 1) % 3]!.token();
    const started = Date.now();
    const response = await fetch(`${balancer.url}/mcp/echo`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    assert.equal(response.status, 404);
    assert.ok(Date.now() - started < 5_000, 'no hang');
    await client.close().catch(() => undefined);
    const again = await connectThroughBalancer();
    const result = await again.client.callTool({ name: 'echo', arguments: { text: 'back' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'echo: back' }]);
    await again.client.close();
  });
});
