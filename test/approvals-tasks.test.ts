/**
 * `task` delivery (approvals.delivery: auto or task) with an unmodified SDK 1.x client using its
 * own task API (client.experimental.tasks) at default options. A task-augmented payment that
 * needs approval is answered at once with a task; the client polls; once a person approves, the
 * payment reaches the upstream exactly once and tasks/result returns it. No request is ever held
 * open: every request here carries a timeout shorter than the wait for the person, and none
 * fires. Cancelling withdraws the approval; a refusal fails the task; another identity cannot
 * read it. (SDK 2.x's client offers no task API: it sends no params.task, and gets `retry`,
 * tested in approvals-delivery.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';

const PAYER = { agent: 'pay-bot', user: 'alan@example.com' };
/** Every request's own timeout: shorter than the person takes to approve (WAIT_MS). */
const REQUEST_TIMEOUT_MS = 3000;
const WAIT_MS = REQUEST_TIMEOUT_MS + 1000;
const TASK = { ttl: 600_000 };

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  server.registerTool(
    'pay',
    { description: 'Pays a vendor.', inputSchema: { vendor: z.string(), amount: z.number() } },
    async ({ vendor, amount }) => ({
      content: [{ type: 'text', text: `paid ${amount} to ${vendor}` }],
    }),
  );
  server.registerTool(
    'balance',
    { description: 'Tells the balance.', inputSchema: { account: z.string() } },
    async ({ account }) => ({ content: [{ type: 'text', text: `${account}: 1200 EUR` }] }),
  );
  return server;
}

async function connect(gateway: TestGateway, who = PAYER): Promise<Client> {
  const client = new Client({ name: 'stock-v1', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gateway.endpoint('bank')), {
      requestInit: { headers: await gateway.authHeaders(who) },
    }),
  );
  return client;
}

async function decide(gateway: TestGateway, id: string, verdict: 'approve' | 'deny') {
  const token = await gateway.token({ agent: 'approver-console', user: 'carol@example.com' });
  const response = await fetch(`${gateway.url}/admin/approvals/${id}/${verdict}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'checked the invoice' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

type StreamMessage =
  ReturnType<Client['experimental']['tasks']['callToolStream']> extends AsyncGenerator<infer M>
    ? M
    : never;

/**
 * Calls a tool as a task through the SDK's own task API, with `onCreated` run when the task is
 * created; resolves with the task id and everything the stream yielded.
 */
async function runTask(
  client: Client,
  call: { name: string; arguments: Record<string, unknown> },
  onCreated: (taskId: string) => Promise<void> = async () => undefined,
): Promise<{ taskId: string; messages: StreamMessage[] }> {
  let taskId = '';
  const messages: StreamMessage[] = [];
  for await (const message of client.experimental.tasks.callToolStream(call, CallToolResultSchema, {
    task: TASK,
  })) {
    messages.push(message);
    if (message.type === 'taskCreated') {
      taskId = message.task.taskId;
      await onCreated(taskId);
    }
  }
  return { taskId, messages };
}

const statusesOf = (messages: readonly StreamMessage[]) =>
  messages.flatMap((message) => (message.type === 'taskStatus' ? [message.task.status] : []));

function wardenCodeOf(error: unknown): unknown {
  assert.ok(error instanceof McpError, `an McpError: ${String(error)}`);
  return (error.data as Record<string, unknown> | undefined)?.['code'];
}

describe('approvals.delivery: task (MCP tasks, 2025-11-25)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-tasks-'));
  const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  let upstream: McpHttpUpstream;
  let gateway: TestGateway;
  let store: Store;
  let amount = 700;
  const freshPayment = () => ({ vendor: 'acme', amount: (amount += 1) });

  before(async () => {
    upstream = await startMcpHttpUpstream(bankServer);
    gateway = await startTestGateway({
      log: { level: 'silent' },
      store: storeUrl,
      audit: { hash_key_file: join(dir, 'hash.key'), stream: 'tasks-gw' },
      upstreams: { bank: { url: upstream.url } },
      agents: {
        'pay-bot': { roles: ['payer'] },
        'other-bot': { roles: ['payer'] },
        'approver-console': { roles: ['warden_approver'] },
      },
      roles: {
        payer: {
          grants: [
            {
              tool: 'bank.pay',
              requires_approval: true,
              approvers: ['finance_approver'],
              approval_timeout: '10m',
            },
            { tool: 'bank.balance' },
          ],
        },
      },
      approvals: {
        approvers: { 'carol@example.com': { roles: ['finance_approver'] } },
        poll_interval: '50ms',
        // the default, auto: a task for a client that asks for one
      },
    });
    store = await openStore(storeUrl);
  });
  after(async () => {
    await gateway?.close();
    await store?.close();
    await upstream?.close();
  });

  test('initialize advertises task-augmented tools/call and tasks/cancel', async () => {
    const client = await connect(gateway);
    try {
      const tasks = client.getServerCapabilities()?.tasks as Record<string, unknown> | undefined;
      assert.ok(tasks, 'a tasks capability');
      assert.deepEqual(tasks['requests'], { tools: { call: {} } });
      assert.deepEqual(tasks['cancel'], {});
      assert.ok(client.getServerCapabilities()?.tools, "the upstream's own capabilities stay");
    } finally {
      await client.close();
    }
  });

  test('approved after longer than a request timeout: the payment goes exactly once, and tasks/result returns it', async () => {
    const client = await connect(gateway);
    try {
      const payment = freshPayment();
      const before = upstream.callsTo('pay').length;
      const stream = client.experimental.tasks.callToolStream(
        { name: 'pay', arguments: payment },
        CallToolResultSchema,
        { task: TASK, timeout: REQUEST_TIMEOUT_MS },
      );
      let taskId = '';
      let createdAt = 0;
      let approved = false;
      const statuses: string[] = [];
      let result: unknown;
      for await (const message of stream) {
        switch (message.type) {
          case 'taskCreated':
            taskId = message.task.taskId;
            createdAt = Date.now();
            assert.equal(message.task.status, 'working');
            break;
          case 'taskStatus': {
            statuses.push(message.task.status);
            if (message.task.status !== 'working') break;
            assert.match(message.task.statusMessage ?? '', /^waiting for approval /);
            assert.equal(upstream.callsTo('pay').length, before, 'nothing forwarded while pending');
            // The person approves only once the wait is longer than any request's timeout.
            if (!approved && Date.now() - createdAt > WAIT_MS) {
              const approval = (await store.approvals.list()).find(
                (request) => `warden-approval-${request.id}` === taskId,
              );
              assert.ok(approval, 'the task names its approval');
              assert.equal(approval.status, 'pending');
              assert.deepEqual(JSON.parse(approval.arguments), payment);
              const decided = await decide(gateway, approval.id, 'approve');
              assert.equal(decided.status, 200, JSON.stringify(decided.body));
              approved = true;
            }
            break;
          }
          case 'result':
            result = message.result;
            break;
          case 'error':
            assert.fail(`the task failed: ${String(message.error)}`);
        }
      }
      assert.ok(approved, 'approved while the client polled');
      assert.equal(statuses.at(-1), 'completed');
      assert.deepEqual((result as { content: unknown }).content, [
        { type: 'text', text: `paid ${payment.amount} to acme` },
      ]);
      const calls = upstream.callsTo('pay').slice(before);
      assert.equal(calls.length, 1, 'forwarded exactly once');
      assert.deepEqual(calls[0]?.params?.['arguments'], payment);
      assert.equal(calls[0]?.params?.['task'], undefined, "the gateway's task stays here");

      // Read again: the same kept result, and still one payment.
      const again = await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
      assert.deepEqual(again.content, (result as { content: unknown }).content);
      assert.equal((await client.experimental.tasks.getTask(taskId)).status, 'completed');
      assert.equal(upstream.callsTo('pay').length, before + 1);
      const used = await store.approvals.get(taskId.replace('warden-approval-', ''));
      assert.ok(used?.consumedAt !== undefined, 'the approval is used');

      // One story: asked for under the call's request id; the call made on a poll names both.
      const asked = await store.audit.query({ requestId: used.requestId });
      assert.deepEqual(asked.map((record) => record.event).sort(), [
        'approval.granted',
        'approval.requested',
      ]);
      const allowed = (await store.audit.query({ event: 'call.allowed' })).filter((record) =>
        record.decision?.reasons.some((reason) =>
          reason.includes(`approval ${used.id}, asked for in request ${used.requestId}`),
        ),
      );
      assert.equal(allowed.length, 1, 'one allowed call names the approval and its request');
      // The result is recorded once the reply is on its way: wait for it, within a bound.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const told = await store.audit.query({ requestId: allowed[0]?.requestId ?? '' });
        if (told.some((record) => record.event === 'call.result')) break;
        assert.ok(Date.now() < deadline, 'the call made on the poll has its result recorded');
        await sleep(25);
      }
    } finally {
      await client.close();
    }
  });

  test('tasks/cancel withdraws the approval: approving it afterwards forwards nothing', async () => {
    const client = await connect(gateway);
    try {
      const before = upstream.callsTo('pay').length;
      const { taskId, messages } = await runTask(
        client,
        { name: 'pay', arguments: freshPayment() },
        async (created) => {
          const cancelled = await client.experimental.tasks.cancelTask(created);
          assert.equal(cancelled.status, 'cancelled');
        },
      );
      assert.equal(messages.at(-1)?.type, 'error', 'the stream ends cancelled');
      assert.equal((await client.experimental.tasks.getTask(taskId)).status, 'cancelled');
      const id = taskId.replace('warden-approval-', '');
      assert.equal((await store.approvals.get(id))?.status, 'withdrawn');
      assert.notEqual((await decide(gateway, id, 'approve')).status, 200);
      // A poll is what would make the call: it still finds the task cancelled, and makes nothing.
      assert.equal((await client.experimental.tasks.getTask(taskId)).status, 'cancelled');
      assert.equal(upstream.callsTo('pay').length, before, 'nothing forwarded');
      await assert.rejects(
        client.experimental.tasks.cancelTask(taskId),
        (error) => wardenCodeOf(error) === 'WARDEN_TASK_INVALID',
        'a task that ended cannot be cancelled again',
      );
      const records = await store.audit.query({ event: 'approval.refused' });
      const withdrawn = records.find((record) => record.approval?.id === id);
      assert.deepEqual(withdrawn?.details, { withdrawn: true, by: 'client', via: 'tasks/cancel' });
    } finally {
      await client.close();
    }
  });

  test('a refused approval fails the task; tasks/result answers the refusal Warden would send', async () => {
    const client = await connect(gateway);
    try {
      const before = upstream.callsTo('pay').length;
      const { taskId, messages } = await runTask(
        client,
        { name: 'pay', arguments: freshPayment() },
        async (created) => {
          const id = created.replace('warden-approval-', '');
          assert.equal((await decide(gateway, id, 'deny')).status, 200);
        },
      );
      assert.equal(statusesOf(messages).at(-1), 'failed');
      await assert.rejects(
        client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema),
        (error) =>
          wardenCodeOf(error) === 'WARDEN_APPROVAL_REFUSED' &&
          (error as McpError).code === -32035 &&
          /checked the invoice/.test((error as McpError).message),
      );
      assert.equal(upstream.callsTo('pay').length, before);
    } finally {
      await client.close();
    }
  });

  test('a task-augmented call that needs no approval goes at once: a completed task, its result kept for the caller only', async () => {
    const client = await connect(gateway);
    const intruder = await connect(gateway, { agent: 'other-bot', user: 'alan@example.com' });
    try {
      const before = upstream.callsTo('balance').length;
      const { taskId, messages } = await runTask(client, {
        name: 'balance',
        arguments: { account: 'ops' },
      });
      const created = messages[0];
      assert.equal(created?.type, 'taskCreated');
      assert.equal(created.type === 'taskCreated' && created.task.status, 'completed');
      const result = messages.at(-1);
      assert.equal(result?.type, 'result');
      assert.deepEqual(result.type === 'result' && result.result.content, [
        { type: 'text', text: 'ops: 1200 EUR' },
      ]);
      const calls = upstream.callsTo('balance').slice(before);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.params?.['task'], undefined, 'params.task stays at the gateway');
      await assert.rejects(
        intruder.experimental.tasks.getTaskResult(taskId, CallToolResultSchema),
        (error) => wardenCodeOf(error) === 'WARDEN_TASK_INVALID',
      );
    } finally {
      await Promise.all([client.close(), intruder.close()]);
    }
  });

  test('a malformed params.task is refused before anything is decided or forwarded', async () => {
    const client = await connect(gateway);
    try {
      const before = upstream.callsTo('pay').length;
      await assert.rejects(
        client.request(
          {
            method: 'tools/call',
            params: { name: 'pay', arguments: freshPayment(), task: 'soon' },
          },
          CallToolResultSchema,
        ),
        (error) =>
          wardenCodeOf(error) === 'WARDEN_TASK_INVALID' && (error as McpError).code === -32602,
      );
      assert.equal(upstream.callsTo('pay').length, before);
    } finally {
      await client.close();
    }
  });

  test('another agent, or another user, cannot read, fetch or cancel the task: not found, and recorded', async () => {
    const owner = await connect(gateway);
    const otherAgent = await connect(gateway, { agent: 'other-bot', user: 'alan@example.com' });
    const otherUser = await connect(gateway, { agent: 'pay-bot', user: 'eve@example.com' });
    try {
      const stream = owner.experimental.tasks.callToolStream(
        { name: 'pay', arguments: freshPayment() },
        CallToolResultSchema,
        { task: TASK },
      );
      const first = await stream.next();
      assert.equal(first.value?.type, 'taskCreated');
      const taskId = first.value.type === 'taskCreated' ? first.value.task.taskId : '';
      await stream.return(undefined);
      for (const intruder of [otherAgent, otherUser]) {
        for (const attempt of [
          () => intruder.experimental.tasks.getTask(taskId),
          () => intruder.experimental.tasks.getTaskResult(taskId, CallToolResultSchema),
          () => intruder.experimental.tasks.cancelTask(taskId),
        ]) {
          await assert.rejects(attempt(), (error) => {
            assert.equal(wardenCodeOf(error), 'WARDEN_TASK_INVALID');
            assert.equal((error as McpError).code, -32602);
            assert.match((error as McpError).message, /no task of yours has this id/);
            return true;
          });
        }
      }
      assert.equal((await owner.experimental.tasks.getTask(taskId)).status, 'working');
      const id = taskId.replace('warden-approval-', '');
      assert.equal((await store.approvals.get(id))?.status, 'pending', 'not withdrawn by them');
      const refused = await store.audit.query({ event: 'request.refused' });
      assert.ok(
        refused.filter((record) => record.errorCode === 'WARDEN_TASK_INVALID').length >= 6,
        'each attempt is recorded',
      );
    } finally {
      await Promise.all([owner.close(), otherAgent.close(), otherUser.close()]);
    }
  });
});
