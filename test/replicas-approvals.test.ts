/**
 * Approvals outlive the replica that took them. A call held open (`hold`) dies with its replica:
 * when that replica is killed, a live one notices its silence and withdraws the request (recorded,
 * never left pending, never approvable); a replica restarted under the same name withdraws what
 * its previous life left held. A `retry` approval lives in the store and is released by any
 * replica (test/replicas-processes.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest, Store } from '../src/store/types.js';
import { startTestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import {
  findFreePort,
  startProcess,
  waitForPort,
  type RunningProcess,
} from './support/processes.js';
import {
  createSharedSchema,
  POSTGRES_URL,
  schemaStoreUrl,
  uniqueName,
} from './support/store-databases.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const SECRET = 'held-approval-secret-0123456789';

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  server.registerTool(
    'wire',
    { description: 'Wires money.', inputSchema: { to: z.string(), amount: z.number() } },
    async ({ to, amount }) => ({ content: [{ type: 'text', text: `wired ${amount} to ${to}` }] }),
  );
  return server;
}

describe('held approvals and the replica holding them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-held-'));
  const config = join(dir, 'warden.yaml');
  const schema = uniqueName('held').toLowerCase();
  let upstream: McpHttpUpstream;
  let store: Store;
  const processes: RunningProcess[] = [];

  before(async () => {
    await createSharedSchema(schema);
    upstream = await startMcpHttpUpstream(bankServer);
    writeFileSync(
      config,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 8080 },
        store: schemaStoreUrl(schema),
        log: { level: 'warn' },
        auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
        agents: { 'pay-bot': { roles: ['payer'], secret_hash: await hashClientSecret(SECRET) } },
        roles: {
          payer: {
            grants: [{ tool: 'bank.wire', requires_approval: true, approvers: ['finance'] }],
          },
        },
        approvals: {
          approvers: { 'carol@example.com': { roles: ['finance'] } },
          delivery: 'hold',
          poll_interval: '100ms',
        },
        upstreams: { bank: { url: upstream.url } },
        audit: { hash_key_file: join(dir, 'hash.key') },
        cluster: { heartbeat: '200ms', dead_after: '1500ms' },
      }),
    );
    store = await openStore(POSTGRES_URL, { schema });
  });
  after(async () => {
    await Promise.all(processes.map((running) => running.stop()));
    await upstream?.close();
    await store?.close();
  });

  async function serve(name: string): Promise<string> {
    const port = await findFreePort();
    const running = startProcess(
      process.execPath,
      [CLI, 'serve', '--config', config, '--port', String(port)],
      { WARDEN_AUDIT_STREAM: name },
    );
    processes.push(running);
    let output = '';
    running.child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    running.child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    await waitForPort(port, 30_000).catch((error: Error) => {
      throw new Error(`${error.message}; warden serve said:\n${output}`);
    });
    return `http://127.0.0.1:${port}`;
  }

  /** Holds a wire on the replica at `url`; resolves once its request is pending. */
  async function holdWire(url: string, amount: number): Promise<ApprovalRequest> {
    const response = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'pay-bot',
        client_secret: SECRET,
        resource: 'https://warden.test/mcp',
      }),
    });
    const { access_token: token } = (await response.json()) as { access_token: string };
    const client = new Client({ name: 'held', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp/bank`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    // Held until the replica dies under it: the client sees a failure, never a payment.
    void client
      .callTool({ name: 'wire', arguments: { to: 'acme', amount } })
      .catch(() => undefined);
    return waitFor(async () =>
      (await store.approvals.list({ status: 'pending' })).find(
        (request) => JSON.parse(request.arguments).amount === amount,
      ),
    );
  }

  async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      assert.ok(Date.now() < deadline, 'timed out waiting');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test("a killed replica's held request is withdrawn by a live one, recorded, and cannot be approved", async () => {
    const doomed = await serve('held-a');
    await serve('held-b');
    const held = await holdWire(doomed, 101);
    assert.equal(held.heldBy, 'held-a');
    processes[0]!.child.kill('SIGKILL');
    const withdrawn = await waitFor(async () => {
      const now = await store.approvals.get(held.id);
      return now?.status === 'withdrawn' ? now : undefined;
    });
    assert.equal(withdrawn.status, 'withdrawn');
    // The record follows the status change: wait for it too.
    const refusal = await waitFor(async () =>
      (await store.audit.query({ requestId: held.requestId, limit: 100 })).find(
        (record) => record.event === 'approval.refused',
      ),
    );
    assert.match(JSON.stringify(refusal), /replica_gone/);
    const approve = spawnSync(
      process.execPath,
      [CLI, 'approvals', 'approve', held.id, '--as', 'carol@example.com', '--config', config],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, WARDEN_AUDIT_STREAM: 'cli' } },
    );
    assert.notEqual(approve.status, 0, 'a withdrawn request cannot be approved');
    assert.match(approve.stderr, /withdrawn|not pending/);
    assert.equal((await store.approvals.get(held.id))?.status, 'withdrawn');
    assert.equal(upstream.callsTo('wire').length, 0, 'nothing was ever forwarded');
  });

  test('a replica restarted under the same name withdraws what its previous life held', async () => {
    // Alone on the store: no other replica is there to notice the death.
    await processes[1]!.stop();
    const first = await serve('held-c');
    const held = await holdWire(first, 202);
    processes.at(-1)!.child.kill('SIGKILL');
    await serve('held-c');
    const now = await waitFor(async () => {
      const request = await store.approvals.get(held.id);
      return request?.status === 'withdrawn' ? request : undefined;
    });
    assert.equal(now.status, 'withdrawn');
  });
});

describe('a stopping replica hands its held calls over', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-handover-'));
  const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  let upstream: McpHttpUpstream;
  after(async () => {
    await upstream?.close();
  });

  function gatewayConfig(stream: string): Record<string, unknown> {
    return {
      log: { level: 'warn' },
      store: storeUrl,
      limits: { shutdown_grace: '1s' },
      agents: {
        'pay-bot': { roles: ['payer'] },
        'approver-console': { roles: ['warden_approver'] },
      },
      roles: {
        payer: {
          grants: [{ tool: 'bank.wire', requires_approval: true, approvers: ['finance'] }],
        },
      },
      approvals: {
        approvers: { 'carol@example.com': { roles: ['finance'] } },
        delivery: 'hold',
        poll_interval: '50ms',
      },
      upstreams: { bank: { url: upstream.url } },
      audit: { stream, hash_key_file: join(dir, 'hash.key') },
    };
  }

  test('SIGTERM grace passes with a call held: the client gets the pending answer, the approval stays pending, another replica releases the retry once', async () => {
    upstream = await startMcpHttpUpstream(bankServer);
    const first = await startTestGateway(gatewayConfig('handover-a'));
    const client = new Client({ name: 'handover', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(first.endpoint('bank')), {
        requestInit: { headers: await first.authHeaders({ agent: 'pay-bot' }) },
      }),
    );
    const wire = { to: 'globex', amount: 303 };
    const answer = client.callTool({ name: 'wire', arguments: wire }, undefined, { timeout: 8000 });
    const store = await openStore(storeUrl);
    try {
      const pending = await (async () => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const found = (await store.approvals.list({ status: 'pending' }))[0];
          if (found) return found;
          assert.ok(Date.now() < deadline, 'the call was never held');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      assert.equal(pending.heldBy, 'handover-a');
      await first.close();
      const result = await answer.catch((error: Error) => {
        throw new Error(`${error.message}\n${JSON.stringify(first.logs.slice(-15), null, 1)}`);
      });
      assert.equal(result.isError, true);
      const meta = result._meta?.['warden/approval'] as { id?: string; status?: string };
      assert.deepEqual([meta?.id, meta?.status], [pending.id, 'pending']);
      const after = await store.approvals.get(pending.id);
      assert.equal(after?.status, 'pending', 'handed over, not withdrawn');
      assert.equal(after?.heldBy, undefined, 'held by no replica now');
      await client.close().catch(() => undefined);

      const second = await startTestGateway(gatewayConfig('handover-b'));
      try {
        const decided = await fetch(`${second.url}/admin/approvals/${pending.id}/approve`, {
          method: 'POST',
          headers: {
            ...(await second.authHeaders({ agent: 'approver-console', user: 'carol@example.com' })),
            'content-type': 'application/json',
          },
          body: JSON.stringify({ reason: 'ok' }),
        });
        assert.equal(decided.status, 200, await decided.text());
        const retry = new Client({ name: 'handover-retry', version: '1.0.0' });
        await retry.connect(
          new StreamableHTTPClientTransport(new URL(second.endpoint('bank')), {
            requestInit: { headers: await second.authHeaders({ agent: 'pay-bot' }) },
          }),
        );
        const released = await retry.callTool({ name: 'wire', arguments: wire });
        assert.notEqual(released.isError, true, JSON.stringify(released));
        assert.equal(upstream.callsTo('wire').length, 1, 'forwarded exactly once');
        await retry.close();
      } finally {
        await second.close();
      }
    } finally {
      await store.close();
    }
  });
});
