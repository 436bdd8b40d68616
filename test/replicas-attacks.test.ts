/**
 * Attacks on the replica cluster from outside: a hostile client, or a hostile agent of the same
 * gateway, against three replicas on one PostgreSQL schema. Sessions held by one replica are
 * reached through another (the relay), hops between replicas are captured, replayed, altered
 * and forged (an insider's hop is built here from the key in the store), requestStates are
 * forged or stolen, and odd session ids are thrown at a replica that does not hold them. Each
 * test asserts the safe behaviour, and that the refusal is recorded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { signHop, type HopClaims } from '../src/gateway/cluster/hop-signature.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { startTestGateway, TEST_AGENT, TESTER_ROLE, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { findFreePort } from './support/processes.js';
import { createSharedSchema, POSTGRES_URL, uniqueName } from './support/store-databases.js';

const MALLORY = 'mallory-agent';
const SESSIONFUL = '2025-11-25';
const MODERN = '2026-07-28';

function echoServer(): McpServer {
  const server = new McpServer({ name: 'echo', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Says it back.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }),
  );
  return server;
}

interface Refusal {
  readonly status: number;
  readonly code: string | undefined;
  readonly requestId: string | undefined;
  readonly text: string;
}

describe('attacks on the replica cluster (PostgreSQL, three replicas)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-replica-attacks-'));
  const schema = uniqueName('replattack').toLowerCase();
  let storeUrl: string;
  let upstream: McpHttpUpstream;
  let legacy: Awaited<ReturnType<typeof startConformanceHttpServer>>;
  const replicas: TestGateway[] = [];
  const ids = ['replica-r1', 'replica-r2', 'replica-r3'];
  let store: Store;
  let hopKey: Buffer;
  const opened: Client[] = [];
  /** Anonymous refusals not recorded singly: each must be in its replica's summary. */
  const counted: { stream: string; code: string }[] = [];

  async function startReplica(name: string, port?: number): Promise<TestGateway> {
    port ??= await findFreePort();
    return startTestGateway({
      log: { level: 'warn' },
      listen: { host: '127.0.0.1', port, allowed_hosts: [`127.0.0.1:${port}`] },
      store: storeUrl,
      audit: { stream: `replica-${name}`, hash_key_file: join(dir, 'hash.key') },
      cluster: { advertise_url: `http://127.0.0.1:${port}`, heartbeat: '200ms' },
      agents: { [TEST_AGENT]: { roles: ['tester'] }, [MALLORY]: { roles: ['tester'] } },
      roles: { tester: TESTER_ROLE },
      upstreams: { echo: { url: upstream.url }, legacy: { url: legacy.url } },
    });
  }

  before(async () => {
    storeUrl = await createSharedSchema(schema);
    upstream = await startMcpHttpUpstream(echoServer);
    legacy = await startConformanceHttpServer();
    for (const name of ['r1', 'r2', 'r3']) replicas.push(await startReplica(name));
    store = await openStore(POSTGRES_URL, { schema });
    // An insider's view: the hop key every replica reads from the shared store.
    hopKey = Buffer.from(
      await store.sharedSecrets.getOrCreate('hop-key-v1', 'unused'),
      'base64url',
    );
  });
  after(async () => {
    for (const client of opened) await client.close().catch(() => undefined);
    for (const replica of replicas) await replica.close().catch(() => undefined);
    await upstream?.close();
    await legacy?.close();
    await store?.close();
  });

  /** A session of `agent` opened directly on replica `index` (its home). */
  async function openSession(index: number, agent = TEST_AGENT): Promise<string> {
    const replica = replicas[index]!;
    const token = await replica.token({ agent });
    const transport = new StreamableHTTPClientTransport(new URL(replica.endpoint('echo')), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: 'victim', version: '1.0.0' });
    await client.connect(transport);
    opened.push(client);
    const id = transport.sessionId ?? '';
    assert.equal((await store.sessions.find(id))?.replica, ids[index], 'published as its home');
    return id;
  }

  function sessionHeaders(token: string, session?: string): Record<string, string> {
    return {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': SESSIONFUL,
      ...(session === undefined ? {} : { 'mcp-session-id': session }),
    };
  }

  const toolsList = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const echoCall = (text: string) =>
    JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'echo', arguments: { text } },
    });

  async function refusalOf(response: Response): Promise<Refusal> {
    const text = await response.text();
    let code: string | undefined;
    let reference: string | undefined;
    try {
      const body = JSON.parse(text) as { error?: { data?: { code?: string; reference?: string } } };
      code = body.error?.data?.code;
      reference = body.error?.data?.reference;
    } catch {
      // An SSE or empty body: no JSON-RPC error to read.
    }
    return {
      status: response.status,
      code,
      requestId: response.headers.get('x-request-id') ?? reference,
      text,
    };
  }

  /** The audit records of one exchange, waiting (bounded) for the refusal record's batch. */
  async function recordsOf(requestId: string | undefined, tries = 40): Promise<AuditRecord[]> {
    assert.ok(requestId, 'the refusal names its request id');
    for (let attempt = 0; attempt < tries; attempt += 1) {
      const records = await store.audit.query({ requestId });
      if (records.length > 0) return records;
      await sleep(100);
    }
    return [];
  }

  /**
   * Asserts the refusal is in the audit log. A refusal before authentication (a forged hop) has
   * no caller yet: those are aggregated per source (refusal-records.ts), the first in a window in
   * full and the rest as a count when the window ends, so for those a record of the same code on
   * the replica's stream stands in (the count is checked in the last test).
   */
  async function assertRecorded(
    refusal: Refusal,
    options: { stream?: string; anonymous?: boolean } = {},
  ): Promise<AuditRecord[]> {
    const { stream, anonymous = false } = options;
    const records = await recordsOf(refusal.requestId, anonymous ? 5 : 40);
    if (records.length === 0 && anonymous) {
      // Counted in its source's summary, checked once the replicas stop (the last test).
      counted.push({ stream: stream ?? '', code: refusal.code ?? '' });
      return records;
    }
    assert.ok(records.length > 0, `the refusal ${refusal.requestId} left an audit record`);
    if (stream !== undefined) {
      assert.ok(
        records.every((record) => record.stream === stream),
        `recorded on ${stream}, not relayed: ${records.map((r) => r.stream).join(', ')}`,
      );
    }
    return records;
  }

  /**
   * A hop as an insider would sign it. `to` names the replica; a hop is addressed to its running
   * instance, read from the store as the relaying replica reads it.
   */
  async function hopClaims(
    overrides: Partial<HopClaims> & Pick<HopClaims, 'to' | 'session'>,
  ): Promise<HopClaims> {
    const { replicas: running } = await store.replicas.list();
    const target = running.find((replica) => replica.id === overrides.to);
    return {
      kind: 'session',
      from: 'replica-r1',
      at: Date.now(),
      method: 'POST',
      url: '/mcp/echo',
      source: '10.9.8.7',
      certificate: undefined,
      ...overrides,
      to: target?.instance ?? overrides.to,
    };
  }

  // --- another agent with a learned session id ---------------------------------------------

  test("another agent using a learned session id through a non-owner replica is told 404, never served the owner's session", async () => {
    const session = await openSession(0);
    const mallory = await replicas[1]!.token({ agent: MALLORY });
    const before = upstream.received.length;
    for (const body of [toolsList, echoCall('stolen')]) {
      const response = await fetch(replicas[1]!.endpoint('echo'), {
        method: 'POST',
        headers: sessionHeaders(mallory, session),
        body,
      });
      const refusal = await refusalOf(response);
      assert.equal(refusal.status, 404, refusal.text);
      assert.equal(refusal.code, 'WARDEN_SESSION_NOT_FOUND');
      assert.doesNotMatch(refusal.text, /echo: stolen|"tools"/);
      await assertRecorded(refusal);
    }
    assert.equal(upstream.received.length, before, 'nothing reached the upstream');
  });

  test('another agent cannot end or listen on a learned session through a non-owner replica', async () => {
    const session = await openSession(0);
    const mallory = await replicas[2]!.token({ agent: MALLORY });
    for (const method of ['DELETE', 'GET']) {
      const response = await fetch(replicas[2]!.endpoint('echo'), {
        method,
        headers: { ...sessionHeaders(mallory, session), accept: 'text/event-stream' },
      });
      const refusal = await refusalOf(response);
      assert.equal(refusal.status, 404, `${method}: ${refusal.text}`);
      await assertRecorded(refusal);
    }
    // The owner's session still works, through yet another replica.
    const owner = await replicas[1]!.token();
    const response = await fetch(replicas[1]!.endpoint('echo'), {
      method: 'POST',
      headers: sessionHeaders(owner, session),
      body: echoCall('still mine'),
    });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /echo: still mine/);
  });

  test('a session id used on another upstream through a non-owner replica is not found', async () => {
    const session = await openSession(0);
    const token = await replicas[1]!.token();
    const response = await fetch(replicas[1]!.endpoint('legacy'), {
      method: 'POST',
      headers: sessionHeaders(token, session),
      body: toolsList,
    });
    const refusal = await refusalOf(response);
    assert.equal(refusal.status, 404, refusal.text);
    await assertRecorded(refusal);
  });

  test('an unauthenticated request naming a real session is refused by the replica it reaches, not relayed', async () => {
    const session = await openSession(0);
    const response = await fetch(replicas[1]!.endpoint('echo'), {
      method: 'POST',
      headers: { ...sessionHeaders('not-a-token', session) },
      body: toolsList,
    });
    const refusal = await refusalOf(response);
    assert.equal(refusal.status, 401, refusal.text);
    await assertRecorded(refusal, { stream: 'replica-r2', anonymous: true });
  });

  test("a foreign session's 404 through a non-owner replica tells no more than an unknown id's", async () => {
    const session = await openSession(0);
    const mallory = await replicas[1]!.token({ agent: MALLORY });
    const ask = async (id: string) => {
      const response = await fetch(replicas[1]!.endpoint('echo'), {
        method: 'POST',
        headers: sessionHeaders(mallory, id),
        body: toolsList,
      });
      const body = (await response.json()) as {
        error: { message: string; data: { code: string } };
      };
      const names = [...response.headers.keys()].filter((n) => !['date'].includes(n)).sort();
      return {
        status: response.status,
        code: body.error.data.code,
        message: body.error.message,
        names,
      };
    };
    const foreign = await ask(session);
    const unknown = await ask(`${session.slice(0, -4)}0000`);
    assert.deepEqual(foreign, unknown, 'a relayed refusal looks like a local one');
  });

  test('a request target in absolute or authority form cannot steer the relay to another host (SSRF)', async () => {
    const { createServer, request } = await import('node:http');
    const hits: string[] = [];
    const evil = createServer((incoming, answer) => {
      hits.push(`${incoming.method} ${incoming.url}`);
      answer.writeHead(200, { 'content-type': 'application/json' }).end('{"evil":true}');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilHost = `127.0.0.1:${(evil.address() as { port: number }).port}`;
    try {
      const session = await openSession(0);
      const token = await replicas[1]!.token();
      const replicaUrl = new URL(replicas[1]!.url);
      for (const target of [
        `http://${evilHost}/mcp/echo`,
        `//${evilHost}/mcp/echo`,
        `/\\${evilHost}/mcp/echo`,
        `/mcp/echo/..//${evilHost}/x`,
      ]) {
        const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const outgoing = request(
            {
              host: replicaUrl.hostname,
              port: replicaUrl.port,
              method: 'POST',
              path: target,
              headers: { ...sessionHeaders(token, session), host: replicaUrl.host },
            },
            (response) => {
              let text = '';
              response.setEncoding('utf8');
              response.on('data', (chunk: string) => (text += chunk));
              response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
            },
          );
          outgoing.on('error', reject);
          outgoing.end(toolsList);
        });
        assert.doesNotMatch(answer.text, /evil/, target);
        assert.ok(answer.status >= 400 && answer.status < 500, `${target}: ${answer.status}`);
      }
      assert.deepEqual(hits, [], 'nothing reached the foreign host');
    } finally {
      await new Promise((resolve) => evil.close(resolve));
    }
  });

  // --- hop headers from a client --------------------------------------------------------------

  test('a client spoofing its source address or a client certificate with hop headers is refused and recorded', async () => {
    const session = await openSession(1);
    const token = await replicas[1]!.token();
    const spoofs: Record<string, string>[] = [
      { 'warden-hop-source': '10.0.0.1' },
      { 'warden-hop-certificate': 'MIIBkTCB+wIJAK' },
      {
        'warden-hop-from': 'replica-r1',
        'warden-hop-to': 'replica-r2',
        'warden-hop-at': String(Date.now()),
        'warden-hop-source': '10.0.0.1',
        'warden-hop-session': session,
        'warden-hop-signature': '',
      },
    ];
    for (const spoof of spoofs) {
      const response = await fetch(replicas[1]!.endpoint('echo'), {
        method: 'POST',
        headers: { ...sessionHeaders(token, session), ...spoof },
        body: toolsList,
      });
      const refusal = await refusalOf(response);
      assert.equal(refusal.status, 403, refusal.text);
      assert.equal(refusal.code, 'WARDEN_HOP_REFUSED');
      const records = await assertRecorded(refusal, { stream: 'replica-r2', anonymous: true });
      assert.doesNotMatch(
        JSON.stringify(records),
        /10\.0\.0\.1/,
        'the spoofed source was not taken',
      );
    }
  });

  test('hop headers on a non-MCP route (the token endpoint, public documents) are refused too', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/token']) {
      const response = await fetch(`${replicas[0]!.url}${path}`, {
        method: path === '/token' ? 'POST' : 'GET',
        headers: { 'warden-hop-source': '10.0.0.1' },
      });
      const refusal = await refusalOf(response);
      assert.equal(refusal.status, 403, `${path}: ${refusal.text}`);
      await assertRecorded(refusal, { stream: 'replica-r1', anonymous: true });
    }
  });

  test('a foreign Host (DNS rebinding) with a bad hop signature is refused, never served', async () => {
    const session = await openSession(2);
    const token = await replicas[2]!.token();
    const { request } = await import('node:http');
    // fetch sets Host itself; node:http lets the attacker name any Host.
    const answer = await new Promise<{ status: number; text: string; id: string | undefined }>(
      (resolve, reject) => {
        const outgoing = request(
          replicas[2]!.endpoint('echo'),
          {
            method: 'POST',
            headers: {
              ...sessionHeaders(token, session),
              host: 'evil.example:80',
              origin: 'http://evil.example',
              'warden-hop-from': 'replica-r1',
              'warden-hop-to': 'replica-r3',
              'warden-hop-at': String(Date.now()),
              'warden-hop-source': '127.0.0.1',
              'warden-hop-session': session,
              'warden-hop-signature': 'A'.repeat(43),
            },
          },
          (response) => {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (text += chunk));
            response.on('end', () =>
              resolve({
                status: response.statusCode ?? 0,
                text,
                id: response.headers['x-request-id'] as string | undefined,
              }),
            );
          },
        );
        outgoing.on('error', reject);
        outgoing.end(toolsList);
      },
    );
    assert.equal(answer.status, 403, answer.text);
    assert.doesNotMatch(answer.text, /"tools"/);
    const records = await recordsOf(answer.id);
    assert.ok(records.length > 0, 'the refusal was recorded');
  });

  // --- an insider's genuine hop, captured and reused -----------------------------------------

  test('a captured genuine hop is accepted once; replayed, it is refused and recorded', async () => {
    const session = await openSession(1);
    const token = await replicas[1]!.token();
    const hop = signHop(hopKey, await hopClaims({ to: 'replica-r2', session }));
    const send = () =>
      fetch(replicas[1]!.endpoint('echo'), {
        method: 'POST',
        headers: { ...sessionHeaders(token, session), ...hop },
        body: toolsList,
      });
    const first = await send();
    assert.equal(first.status, 200, 'a genuine hop is taken');
    await first.text();
    const replay = await refusalOf(await send());
    assert.equal(replay.status, 403, replay.text);
    assert.equal(replay.code, 'WARDEN_HOP_REFUSED');
    await assertRecorded(replay, { stream: 'replica-r2', anonymous: true });
  });

  test('a genuine hop reused on another method, path or session, or sent to another replica, is refused', async () => {
    const session = await openSession(1);
    const other = await openSession(1);
    const token = await replicas[1]!.token();
    const attempts: {
      name: string;
      replica: number;
      path: string;
      method: string;
      session: string;
    }[] = [
      { name: 'another method', replica: 1, path: 'echo', method: 'DELETE', session },
      { name: 'another path', replica: 1, path: 'legacy', method: 'POST', session },
      { name: 'another session', replica: 1, path: 'echo', method: 'POST', session: other },
      { name: 'another replica', replica: 2, path: 'echo', method: 'POST', session },
    ];
    for (const attempt of attempts) {
      // Each attempt alters a fresh, unused hop: what failed is the binding, not replay.
      const hop = signHop(hopKey, await hopClaims({ to: 'replica-r2', session }));
      const response = await fetch(replicas[attempt.replica]!.endpoint(attempt.path), {
        method: attempt.method,
        headers: { ...sessionHeaders(token, attempt.session), ...hop },
        ...(attempt.method === 'POST' ? { body: toolsList } : {}),
      });
      const refusal = await refusalOf(response);
      assert.equal(refusal.status, 403, `${attempt.name}: ${refusal.text}`);
      assert.equal(refusal.code, 'WARDEN_HOP_REFUSED', attempt.name);
      await assertRecorded(refusal, { anonymous: true });
    }
  });

  test('a genuine hop older or newer than 30 s is refused', async () => {
    const session = await openSession(1);
    const token = await replicas[1]!.token();
    for (const skew of [-31_000, 31_000]) {
      const hop = signHop(
        hopKey,
        await hopClaims({ to: 'replica-r2', session, at: Date.now() + skew }),
      );
      const refusal = await refusalOf(
        await fetch(replicas[1]!.endpoint('echo'), {
          method: 'POST',
          headers: { ...sessionHeaders(token, session), ...hop },
          body: toolsList,
        }),
      );
      assert.equal(refusal.status, 403, `skew ${skew}: ${refusal.text}`);
      assert.equal(refusal.code, 'WARDEN_HOP_REFUSED');
      await assertRecorded(refusal, { anonymous: true });
    }
  });

  test('a genuine hop for a session cannot be reused on a request that drops the session header', async () => {
    // The hop binds the session; a request naming none (an initialize) must not inherit the
    // hop's source address or certificate.
    const session = await openSession(1);
    const token = await replicas[1]!.token();
    const hop = signHop(hopKey, await hopClaims({ to: 'replica-r2', session }));
    const initialize = JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: SESSIONFUL,
        capabilities: {},
        clientInfo: { name: 'mitm', version: '1' },
      },
    });
    const refusal = await refusalOf(
      await fetch(replicas[1]!.endpoint('echo'), {
        method: 'POST',
        headers: { ...sessionHeaders(token), ...hop },
        body: initialize,
      }),
    );
    assert.equal(refusal.status, 403, refusal.text);
    assert.equal(refusal.code, 'WARDEN_HOP_REFUSED');
  });

  test('a genuine hop replayed after its replica restarted (within 30 s) is still refused', async () => {
    const first = await startReplica('r5');
    const port = Number(new URL(first.url).port);
    const token = await first.token();
    // Any session id: the hop check comes before the session lookup.
    const hop = signHop(hopKey, await hopClaims({ to: 'replica-r5', session: 'some-session' }));
    const send = (replica: TestGateway) =>
      fetch(replica.endpoint('echo'), {
        method: 'POST',
        headers: { ...sessionHeaders(token, 'some-session'), ...hop },
        body: toolsList,
      });
    const used = await send(first);
    assert.notEqual(used.status, 403, 'the hop was taken the first time');
    await used.text();
    await first.close();
    const again = await startReplica('r5', port);
    try {
      const replay = await refusalOf(await send(again));
      assert.equal(replay.status, 403, `replayed after a restart: ${replay.status} ${replay.text}`);
      assert.equal(replay.code, 'WARDEN_HOP_REFUSED');
    } finally {
      await again.close();
    }
  });

  // --- requestState -----------------------------------------------------------------------------

  function postModern(
    replica: TestGateway,
    token: string,
    params: Record<string, unknown>,
  ): Promise<Response> {
    return fetch(replica.endpoint('legacy'), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': MODERN,
        'mcp-method': 'tools/call',
        'mcp-name': 'test_sampling',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: {
          name: 'test_sampling',
          arguments: { prompt: 'x' },
          ...params,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': MODERN,
            'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
            'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
          },
        },
      }),
    });
  }

  async function lastMessage(response: Response): Promise<Record<string, unknown>> {
    const body = await response.text();
    if (response.headers.get('content-type')?.startsWith('application/json')) {
      return JSON.parse(body) as Record<string, unknown>;
    }
    const data = body
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice(6))
      .filter((line) => line.trim() !== '');
    return JSON.parse(data[data.length - 1] ?? 'null') as Record<string, unknown>;
  }

  async function parkOn(index: number): Promise<{ state: string; key: string }> {
    const token = await replicas[index]!.token();
    // Listed (and trusted on first use) before it is called.
    const listed = await fetch(replicas[index]!.endpoint('legacy'), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': MODERN,
        'mcp-method': 'tools/list',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
        params: {
          _meta: {
            'io.modelcontextprotocol/protocolVersion': MODERN,
            'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
            'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
          },
        },
      }),
    });
    assert.equal(listed.status, 200, await listed.text());
    const parked = (await lastMessage(await postModern(replicas[index]!, token, {}))) as {
      result?: { resultType?: string; requestState?: string; inputRequests?: object };
    };
    assert.equal(parked.result?.resultType, 'input_required', JSON.stringify(parked));
    const state = parked.result?.requestState ?? '';
    assert.match(state, new RegExp(`^wst2\\.${ids[index]}\\.`), 'the state names its home');
    return { state, key: Object.keys(parked.result?.inputRequests ?? {})[0] ?? '' };
  }

  const answer = (key: string, text: string) => ({
    [key]: { role: 'assistant', model: 'm', content: { type: 'text', text } },
  });

  test('a forged or tampered requestState naming another replica is refused where it lands, not relayed', async () => {
    const { state, key } = await parkOn(0);
    const token = await replicas[1]!.token();
    const parts = state.split('.');
    const forgeries = [
      // A made-up state naming r1.
      `wst2.replica-r1.${parts[2]}.AAAAAAAAAAAAAAAAAAAAAAAA.${'A'.repeat(43)}`,
      // The genuine state re-pointed at r3, its MAC kept.
      ['wst2', 'replica-r3', ...parts.slice(2)].join('.'),
      // The genuine state with its handle altered.
      ['wst2', parts[1], parts[2], `${parts[3]}x`, parts[4]].join('.'),
    ];
    for (const forged of forgeries) {
      const refusal = await refusalOf(
        await postModern(replicas[1]!, token, {
          requestState: forged,
          inputResponses: answer(key, 'forged'),
        }),
      );
      assert.equal(refusal.status, 400, refusal.text);
      assert.equal(refusal.code, 'WARDEN_INVALID_REQUEST_STATE');
      await assertRecorded(refusal, { stream: 'replica-r2' });
    }
  });

  test("another agent's genuine requestState, retried through another replica, is refused; its owner still completes", async () => {
    const { state, key } = await parkOn(0);
    const mallory = await replicas[1]!.token({ agent: MALLORY });
    const retry = { requestState: state, inputResponses: answer(key, 'mine') };
    const stolen = await refusalOf(await postModern(replicas[1]!, mallory, retry));
    assert.notEqual(stolen.status, 200, stolen.text);
    assert.doesNotMatch(stolen.text, /LLM response/);
    assert.equal(stolen.code, 'WARDEN_INVALID_REQUEST_STATE');
    await assertRecorded(stolen);
    const owner = await replicas[2]!.token();
    const completed = (await lastMessage(await postModern(replicas[2]!, owner, retry))) as {
      result?: { content?: Array<{ text?: string }> };
    };
    assert.equal(completed.result?.content?.[0]?.text, 'LLM response: mine');
  });

  test('a retry sent with a session header of a third replica is not relayed twice', async () => {
    // The session (r2) makes r1 relay to r2; the requestState (r3) must not make r2 relay again
    // on a hop whose source would then be r1's address.
    const session = await openSession(1);
    const { state, key } = await parkOn(2);
    const token = await replicas[0]!.token();
    const response = await fetch(replicas[0]!.endpoint('legacy'), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': MODERN,
        'mcp-method': 'tools/call',
        'mcp-name': 'test_sampling',
        'mcp-session-id': session,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: {
          name: 'test_sampling',
          arguments: { prompt: 'x' },
          requestState: state,
          inputResponses: answer(key, 'twice'),
          _meta: {
            'io.modelcontextprotocol/protocolVersion': MODERN,
            'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
            'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
          },
        },
      }),
    });
    const refusal = await refusalOf(response);
    assert.ok(refusal.status < 500, refusal.text);
    assert.notEqual(refusal.code, 'WARDEN_HOP_REFUSED', 'no second hop was attempted');
  });

  // --- odd session ids, dead homes ------------------------------------------------------------

  test('long and odd session ids on a non-owner replica are answered 4xx, never 500 or a crash', async () => {
    const token = await replicas[1]!.token();
    const odd = [
      'x'.repeat(8_000),
      "' OR 1=1 --",
      '../../../etc/passwd',
      '%00%0d%0a',
      'sess\u00e9\u00ff',
      ' ',
      '\\x00',
      'a,b',
    ];
    const answers = await Promise.all(
      odd.map(async (id) =>
        refusalOf(
          await fetch(replicas[1]!.endpoint('echo'), {
            method: 'POST',
            headers: sessionHeaders(token, id),
            body: toolsList,
          }),
        ),
      ),
    );
    for (const [i, refusal] of answers.entries()) {
      assert.ok(
        refusal.status >= 400 && refusal.status < 500,
        `${odd[i]!.slice(0, 20)}: ${refusal.status} ${refusal.text}`,
      );
      await assertRecorded(refusal);
    }
    // The replica still serves.
    const health = await fetch(`${replicas[1]!.url}/healthz`);
    assert.equal(health.status, 200);
  });

  test("a stopped replica's session is answered 404 at once through the others, twice", async () => {
    const extra = await startReplica('r4');
    replicas.push(extra);
    ids.push('replica-r4');
    const session = await openSession(3);
    await extra.close();
    const token = await replicas[0]!.token();
    for (const via of [0, 1, 0]) {
      const refusal = await refusalOf(
        await fetch(replicas[via]!.endpoint('echo'), {
          method: 'POST',
          headers: sessionHeaders(token, session),
          body: toolsList,
        }),
      );
      assert.equal(refusal.status, 404, refusal.text);
      assert.equal(refusal.code, 'WARDEN_SESSION_NOT_FOUND');
      await assertRecorded(refusal);
    }
    assert.equal(await store.sessions.find(session), undefined, 'the session was forgotten');
  });

  test('anonymous refusals beyond the first in a window are counted in a summary record when the replicas stop', async () => {
    assert.ok(counted.length > 0, 'some refusals were aggregated');
    for (const replica of replicas.slice(0, 3)) await replica.close();
    const summaries = (await store.audit.query({ newest: true, limit: 5000 })).filter((record) =>
      JSON.stringify(record).includes('"repeated"'),
    );
    for (const { stream, code } of counted) {
      assert.ok(
        summaries.some(
          (record) =>
            (stream === '' || record.stream === stream) && JSON.stringify(record).includes(code),
        ),
        `a summary on ${stream || 'some replica'} counts ${code}`,
      );
    }
  });
});
