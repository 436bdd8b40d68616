/**
 * A call held for approval (`hold`), from a client that declared elicitation: the person is told
 * at once, by an elicitation request naming the approval, that the call waits for an approver.
 * The client's answer ends at the gateway (the upstream never sees it) and changes nothing: the
 * call goes when approved. `approvals.notify_elicitation: false` sends nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest, Store } from '../src/store/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';

const PAYER = { agent: 'pay-bot', user: 'alan@example.com' };

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  server.registerTool(
    'pay',
    { description: 'Pays a vendor.', inputSchema: { vendor: z.string(), amount: z.number() } },
    async ({ vendor, amount }) => ({
      content: [{ type: 'text', text: `paid ${amount} to ${vendor}` }],
    }),
  );
  return server;
}

describe('approvals.notify_elicitation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-notice-'));
  let upstream: McpHttpUpstream | undefined;
  const gateways: TestGateway[] = [];
  const stores: Store[] = [];
  after(async () => {
    for (const gateway of gateways) await gateway.close();
    for (const store of stores) await store.close();
    await upstream?.close();
  });

  async function start(notify: boolean): Promise<{ gateway: TestGateway; store: Store }> {
    upstream ??= await startMcpHttpUpstream(bankServer);
    const storeUrl = `sqlite:${join(dir, `notice-${String(notify)}.db`)}`;
    const gateway = await startTestGateway({
      log: { level: 'silent' },
      store: storeUrl,
      agents: {
        'pay-bot': { roles: ['payer'] },
        'approver-console': { roles: ['warden_approver'] },
      },
      roles: {
        payer: {
          grants: [{ tool: 'bank.pay', requires_approval: true, approvers: ['finance'] }],
        },
      },
      approvals: {
        approvers: { 'carol@example.com': { roles: ['finance'] } },
        delivery: 'hold',
        poll_interval: '50ms',
        notify_elicitation: notify,
      },
      upstreams: { bank: { url: upstream.url } },
      audit: { stream: `notice-${String(notify)}`, hash_key_file: join(dir, 'hash.key') },
    });
    gateways.push(gateway);
    const store = await openStore(storeUrl);
    stores.push(store);
    return { gateway, store };
  }

  async function eliciting(gateway: TestGateway, seen: string[]): Promise<Client> {
    const client = new Client(
      { name: 'eliciting', version: '1.0.0' },
      { capabilities: { elicitation: {} } },
    );
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      seen.push(String(request.params.message));
      return { action: 'accept', content: {} };
    });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gateway.endpoint('bank')), {
        requestInit: { headers: await gateway.authHeaders(PAYER) },
      }),
    );
    return client;
  }

  async function pendingIn(store: Store): Promise<ApprovalRequest> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const [request] = await store.approvals.list({ status: 'pending' });
      if (request) return request;
      assert.ok(Date.now() < deadline, 'the call was never held');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async function approve(gateway: TestGateway, id: string): Promise<void> {
    const token = await gateway.token({ agent: 'approver-console', user: 'carol@example.com' });
    const response = await fetch(`${gateway.url}/admin/approvals/${id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'ok' }),
    });
    assert.equal(response.status, 200, await response.text());
  }

  test('the person is told the call waits for approval; the answer stays at the gateway; the call goes once approved', async () => {
    const { gateway, store } = await start(true);
    const seen: string[] = [];
    const client = await eliciting(gateway, seen);
    try {
      const result = client.callTool({ name: 'pay', arguments: { vendor: 'acme', amount: 70 } });
      const pending = await pendingIn(store);
      const deadline = Date.now() + 10_000;
      while (seen.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.equal(seen.length, 1, 'one notice');
      assert.match(seen[0] ?? '', new RegExp(`waiting for approval ${pending.id} by a person`));
      await approve(gateway, pending.id);
      const paid = await result;
      assert.deepEqual(paid.content, [{ type: 'text', text: 'paid 70 to acme' }]);
      const leaked = (upstream?.received ?? []).filter((message) =>
        JSON.stringify(message).includes('warden-approval-notice-'),
      );
      assert.deepEqual(leaked, [], 'the upstream never saw the notice or its answer');
    } finally {
      await client.close();
    }
  });

  test('notify_elicitation: false sends no notice', async () => {
    const { gateway, store } = await start(false);
    const seen: string[] = [];
    const client = await eliciting(gateway, seen);
    try {
      const result = client.callTool({ name: 'pay', arguments: { vendor: 'acme', amount: 80 } });
      const pending = await pendingIn(store);
      await approve(gateway, pending.id);
      await result;
      assert.deepEqual(seen, []);
    } finally {
      await client.close();
    }
  });
});
