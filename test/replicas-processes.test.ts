/**
 * Three `warden serve` processes on one PostgreSQL schema behind a round-robin balancer with no
 * affinity, used by unmodified SDK clients at default options: sessions, calls, approvals
 * (retry delivery: asked on one replica, approved by the CLI, released on another), split bursts
 * that hit a rate and a budget exactly, and a replica killed with SIGKILL mid-load, after which
 * the audit log still verifies and every call a client saw succeed has its recorded decision.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import {
  findFreePort,
  startProcess,
  waitForPort,
  type RunningProcess,
} from './support/processes.js';
import { startRoundRobinBalancer, type Balancer } from './support/round-robin-balancer.js';
import {
  createSharedSchema,
  POSTGRES_URL,
  schemaStoreUrl,
  uniqueName,
} from './support/store-databases.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const SECRET = 'replica-test-secret-0123456789';
const RATE_LIMIT = 50;
const BUDGET = 5000;

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Says it back.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text: `echo: ${text}` }] }),
  );
  server.registerTool(
    'note',
    { description: 'Takes a note (no quota).', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text: `noted: ${text}` }] }),
  );
  server.registerTool(
    'pay',
    { description: 'Pays a vendor.', inputSchema: { vendor: z.string(), amount: z.number() } },
    async ({ vendor, amount }) => ({
      content: [{ type: 'text', text: `paid ${amount} to ${vendor}` }],
    }),
  );
  server.registerTool(
    'wire',
    { description: 'Wires money (approval).', inputSchema: { to: z.string(), amount: z.number() } },
    async ({ to, amount }) => ({ content: [{ type: 'text', text: `wired ${amount} to ${to}` }] }),
  );
  return server;
}

interface Replica {
  readonly name: string;
  readonly url: string;
  readonly process: RunningProcess;
}

describe('three warden serve replicas behind a round-robin balancer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-replica-procs-'));
  const config = join(dir, 'warden.yaml');
  const schema = uniqueName('replica_procs').toLowerCase();
  let upstream: McpHttpUpstream;
  let legacy: Awaited<ReturnType<typeof startConformanceHttpServer>>;
  let balancer: Balancer;
  const replicas: Replica[] = [];
  let store: Store;

  before(async () => {
    await createSharedSchema(schema);
    upstream = await startMcpHttpUpstream(bankServer);
    legacy = await startConformanceHttpServer();
    const backends: string[] = [];
    balancer = await startRoundRobinBalancer(backends);
    const storeUrl = schemaStoreUrl(schema);
    const secretHash = await hashClientSecret(SECRET);
    writeFileSync(
      config,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 8080, allowed_hosts: [new URL(balancer.url).host] },
        store: storeUrl,
        log: { level: 'warn' },
        auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
        agents: { 'pay-bot': { roles: ['payer'], secret_hash: secretHash } },
        roles: {
          payer: {
            grants: [
              { tool: 'bank.echo' },
              { tool: 'bank.note' },
              { tool: 'legacy.test_sampling' },
              { tool: 'bank.pay' },
              { tool: 'bank.wire', requires_approval: true, approvers: ['finance_approver'] },
            ],
          },
        },
        quotas: [
          { name: 'echo_rate', per: 'agent', tool: 'bank.echo', limit: RATE_LIMIT, window: '1h' },
          {
            name: 'daily_budget',
            per: 'agent',
            tool: 'bank.pay',
            sum: 'amount',
            limit: BUDGET,
            window: '1d',
          },
        ],
        approvals: {
          approvers: { 'carol@example.com': { roles: ['finance_approver'] } },
          delivery: 'retry',
        },
        upstreams: { bank: { url: upstream.url }, legacy: { url: legacy.url } },
        audit: { hash_key_file: join(dir, 'hash.key') },
        // Death is noticed by the balancer here (the victim is taken out); the store's judgement
        // keeps its default, which a loaded machine's delayed heartbeats must not trip.
        cluster: { heartbeat: '500ms' },
      }),
    );
    for (const name of ['r1', 'r2', 'r3']) {
      const port = await findFreePort();
      const url = `http://127.0.0.1:${port}`;
      const process = startProcess(
        globalThis.process.execPath,
        [CLI, 'serve', '--config', config, '--port', String(port)],
        { WARDEN_AUDIT_STREAM: `proc-${name}`, WARDEN_ADVERTISE_URL: url },
      );
      replicas.push({ name: `proc-${name}`, url, process });
      // One at a time: the first creates the signing key the others load.
      await waitForPort(port, 30_000);
      backends.push(url);
    }
    store = await openStore(POSTGRES_URL, { schema });
  });
  after(async () => {
    await balancer?.close();
    await Promise.all(replicas.map((replica) => replica.process.stop()));
    await upstream?.close();
    await legacy?.close();
    await store?.close();
  });

  async function token(): Promise<string> {
    const response = await fetch(`${balancer.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'pay-bot',
        client_secret: SECRET,
        resource: 'https://warden.test/mcp',
      }),
    });
    const body = (await response.json()) as { access_token?: string };
    assert.equal(response.status, 200, JSON.stringify(body));
    return body.access_token ?? '';
  }

  async function connect(): Promise<Client> {
    const bearer = await token();
    const client = new Client({ name: 'replica-procs', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${balancer.url}/mcp/bank`), {
        requestInit: { headers: { authorization: `Bearer ${bearer}` } },
      }),
    );
    return client;
  }

  /** Carol approves through the CLI, which opens the store itself (no replica involved). */
  function approveWithCli(id: string): void {
    const approved = spawnSync(
      process.execPath,
      [CLI, 'approvals', 'approve', id, '--as', 'carol@example.com', '--config', config],
      {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, WARDEN_AUDIT_STREAM: 'cli' },
      },
    );
    assert.equal(approved.status, 0, approved.stderr);
  }

  type CallResult = Awaited<ReturnType<Client['callTool']>>;
  const textOf = (result: CallResult) =>
    (result.content as Array<{ text?: string }> | undefined)?.[0]?.text ?? '';
  /** The JSON-RPC error code of a refused call, or 'ok'. */
  async function outcomeOf(call: Promise<CallResult>): Promise<number | 'ok'> {
    try {
      const result = await call;
      return result.isError === true ? -1 : 'ok';
    } catch (error) {
      return (error as { code?: number }).code ?? -2;
    }
  }

  test('a rate split over three replicas by four clients admits exactly its limit', async () => {
    const clients = await Promise.all([connect(), connect(), connect(), connect()]);
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 80 }, (_, i) =>
          outcomeOf(
            clients[i % clients.length]!.callTool({ name: 'echo', arguments: { text: `${i}` } }),
          ),
        ),
      );
      assert.equal(outcomes.filter((o) => o === 'ok').length, RATE_LIMIT);
      assert.deepEqual(
        outcomes.filter((o) => o !== 'ok' && o !== -32033),
        [],
        'every other call was refused for the rate',
      );
      assert.equal(new Set(balancer.routed).size, 3, 'all three replicas served');
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  test('a budget split over three replicas is never exceeded and never under-used by more than one call', async () => {
    const clients = await Promise.all([connect(), connect(), connect()]);
    try {
      const amounts = Array.from({ length: 45 }, (_, i) => 100 + ((i * 37) % 300));
      const outcomes = await Promise.all(
        amounts.map((amount, i) =>
          outcomeOf(
            clients[i % clients.length]!.callTool({
              name: 'pay',
              arguments: { vendor: 'acme', amount },
            }),
          ),
        ),
      );
      const paid = amounts.filter((_, i) => outcomes[i] === 'ok').reduce((a, b) => a + b, 0);
      const refused = amounts.filter((_, i) => outcomes[i] === -32033);
      assert.ok(paid <= BUDGET, `paid ${paid} of a ${BUDGET} budget`);
      assert.ok(refused.length > 0, 'demand exceeded the budget');
      assert.ok(paid > BUDGET - Math.max(...refused), `paid ${paid}: under-used`);
      assert.equal(
        upstream.callsTo('pay').length,
        outcomes.filter((o) => o === 'ok').length,
        'the upstream saw exactly the admitted payments',
      );
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  test('an approval asked on one replica, granted by the CLI, is released exactly once on another', async () => {
    const client = await connect();
    try {
      const wire = { to: 'globex', amount: 700 };
      const first = await client.callTool({ name: 'wire', arguments: wire });
      const meta = first._meta?.['warden/approval'] as { id?: string } | undefined;
      assert.ok(meta?.id, `pending answer expected: ${JSON.stringify(first)}`);
      approveWithCli(meta.id);
      const before = upstream.callsTo('wire').length;
      const released = await client.callTool({ name: 'wire', arguments: wire });
      assert.equal(textOf(released), 'wired 700 to globex');
      const again = await client.callTool({ name: 'wire', arguments: wire });
      assert.equal(again.isError, true, 'used once: the same call asks anew');
      assert.equal(upstream.callsTo('wire').length, before + 1, 'forwarded exactly once');
    } finally {
      await client.close();
    }
  });

  async function connectV2(path: string): Promise<ClientV2> {
    const bearer = await token();
    const client = new ClientV2(
      { name: 'replica-procs-v2', version: '1.0.0' },
      { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    client.setRequestHandler('sampling/createMessage', () => ({
      role: 'assistant',
      model: 'test-model',
      content: { type: 'text', text: 'sampled by a replica process' },
    }));
    await client.connect(
      new TransportV2(new URL(`${balancer.url}/mcp/${path}`), {
        authProvider: { token: () => Promise.resolve(bearer) },
      }),
    );
    return client;
  }

  test('an SDK 2.x client: multi round-trip sampling completes with its retry on another replica', async () => {
    const client = await connectV2('legacy');
    try {
      await client.listTools();
      for (let i = 0; i < 2; i += 1) {
        const before = balancer.routed.length;
        const sampled = await client.callTool({
          name: 'test_sampling',
          arguments: { prompt: `hello ${i}` },
        });
        const content = sampled.content as Array<{ text?: string }>;
        assert.equal(content[0]?.text, 'LLM response: sampled by a replica process');
        const [first, retry] = balancer.routed.slice(before);
        assert.notEqual(first, retry, 'the retry reached another replica than the parked call');
      }
    } finally {
      await client.close();
    }
  });

  test('an SDK 2.x client: an approval asked on one replica is released once on another', async () => {
    const client = await connectV2('bank');
    try {
      const wire = { to: 'initech', amount: 450 };
      const first = await client.callTool({ name: 'wire', arguments: wire });
      const meta = first._meta?.['warden/approval'] as { id?: string } | undefined;
      assert.ok(meta?.id, `pending answer expected: ${JSON.stringify(first)}`);
      approveWithCli(meta.id);
      const before = upstream.callsTo('wire').length;
      const released = await client.callTool({ name: 'wire', arguments: wire });
      const content = released.content as Array<{ text?: string }>;
      assert.equal(content[0]?.text, 'wired 450 to initech');
      assert.equal(upstream.callsTo('wire').length, before + 1, 'forwarded exactly once');
    } finally {
      await client.close();
    }
  });

  test('a replica killed mid-load: the log verifies and every call seen to succeed was recorded', async () => {
    const clients = await Promise.all([connect(), connect(), connect()]);
    const victim = replicas[2]!;
    const seen: string[] = [];
    const load = Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < 15; i += 1) {
          const text = `kill-${c}-${i}`;
          try {
            const result = await client.callTool({ name: 'note', arguments: { text } });
            if (result.isError !== true && textOf(result) === `noted: ${text}`) seen.push(text);
          } catch {
            // Its session died with the victim, or the rate is spent: not a success.
          }
        }
      }),
    );
    setTimeout(() => {
      victim.process.child.kill('SIGKILL');
      balancer.remove(2);
    }, 150);
    await load;
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    const verified = spawnSync(process.execPath, [CLI, 'audit', 'verify', '--config', config], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, WARDEN_AUDIT_STREAM: 'cli' },
    });
    assert.equal(verified.status, 0, `${verified.stdout}\n${verified.stderr}`);
    const records = await store.audit.query({ event: 'call.allowed', limit: 10_000 });
    const recorded = new Set(
      records.map((record) => JSON.stringify(record).match(/kill-\d+-\d+/)?.[0]),
    );
    assert.ok(seen.length >= 15, `most calls went through the two survivors: ${seen.length}`);
    for (const text of seen) assert.ok(recorded.has(text), `no recorded decision for ${text}`);
  });
});
