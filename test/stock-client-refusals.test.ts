/**
 * Refusals as stock MCP clients read them: unmodified SDK 1.x and 2.x clients, default options,
 * against a real gateway and a real upstream. A refusal decided about an authenticated JSON-RPC
 * request is a JSON-RPC error with HTTP 200, so the SDK raises an MCP error whose data carries
 * the code, the reasons and the reference; authentication failures stay HTTP 401 with a
 * challenge. With `policy.denials: result`, a denied tools/call is a tool result with isError,
 * whose text says which constraint failed and what is allowed (unless the values are secret).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { ERROR_CATALOGUE } from '../src/domain/errors.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';

const POLICY = {
  agents: {
    'pay-bot': { roles: ['payer'] },
    'quiet-bot': { roles: ['quiet_payer'] },
  },
  lists: { secret_vendors: ['Initech'] },
  scopes: {
    known_vendor: { arg: 'vendor', in: ['acme', 'globex'] },
    small: { arg: 'amount', max: 100 },
    secret_vendor: { arg: 'vendor', in_list: 'secret_vendors' },
  },
  roles: {
    payer: { grants: [{ tool: 'bank.pay', scope: ['known_vendor', 'small'] }] },
    quiet_payer: { grants: [{ tool: 'bank.pay', scope: ['secret_vendor'] }] },
  },
  quotas: [{ name: 'three_a_minute', per: 'agent', tool: 'bank.pay', limit: 3, window: '1m' }],
};

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  server.registerTool(
    'pay',
    {
      description: 'Pays a vendor.',
      inputSchema: { vendor: z.string(), amount: z.number() },
    },
    async ({ vendor, amount }) => ({
      content: [{ type: 'text', text: `paid ${amount} to ${vendor}` }],
    }),
  );
  return server;
}

interface Caller {
  callTool(args: Record<string, unknown>): Promise<{ isError?: boolean; content?: unknown }>;
  close(): Promise<void>;
}

async function connectV1(gateway: TestGateway, agent: string): Promise<Caller> {
  const client = new Client({ name: 'stock-v1', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gateway.endpoint('bank')), {
      requestInit: { headers: await gateway.authHeaders({ agent }) },
    }),
  );
  return {
    callTool: async (args) =>
      (await client.callTool({ name: 'pay', arguments: args })) as { isError?: boolean },
    close: () => client.close(),
  };
}

async function connectV2(gateway: TestGateway, agent: string): Promise<Caller> {
  const client = new ClientV2({ name: 'stock-v2', version: '1.0.0' });
  await client.connect(
    new TransportV2(new URL(gateway.endpoint('bank')), {
      requestInit: { headers: await gateway.authHeaders({ agent }) },
    }),
  );
  return {
    callTool: async (args) =>
      (await client.callTool({ name: 'pay', arguments: args })) as { isError?: boolean },
    close: () => client.close(),
  };
}

/** The MCP error a call raised: code and data, whichever SDK raised it. */
async function refusalOf(
  call: Promise<unknown>,
): Promise<{ code: number; data: Record<string, unknown> }> {
  try {
    await call;
  } catch (error) {
    const raised = error as { code?: unknown; data?: unknown; constructor: { name: string } };
    assert.equal(typeof raised.code, 'number', `not an MCP error: ${String(error)}`);
    assert.ok(raised.data !== null && typeof raised.data === 'object', `no data: ${String(error)}`);
    return { code: raised.code as number, data: raised.data as Record<string, unknown> };
  }
  assert.fail('the call was not refused');
}

const clients = [
  ['SDK 1.x', connectV1],
  ['SDK 2.x', connectV2],
] as const;

describe('refusals stock clients can read (JSON-RPC errors, HTTP 200)', () => {
  let upstream: McpHttpUpstream;
  let gateway: TestGateway;

  before(async () => {
    upstream = await startMcpHttpUpstream(bankServer);
    gateway = await startTestGateway({
      log: { level: 'silent' },
      ...POLICY,
      upstreams: { bank: { url: upstream.url } },
    });
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  for (const [sdk, connect] of clients) {
    test(`${sdk}: a policy denial is an MCP error -32030 with the code, reasons and reference`, async () => {
      const caller = await connect(gateway, 'pay-bot');
      try {
        const before = upstream.callsTo('pay').length;
        const refused = await refusalOf(caller.callTool({ vendor: 'evil corp', amount: 5 }));
        assert.equal(refused.code, ERROR_CATALOGUE.WARDEN_POLICY_DENIED.rpcCode);
        assert.equal(refused.code, -32030);
        assert.equal(refused.data['code'], 'WARDEN_POLICY_DENIED');
        assert.equal(typeof refused.data['reference'], 'string');
        const reasons = refused.data['reasons'] as string[];
        assert.ok(
          Array.isArray(reasons) &&
            reasons.some((r) => /vendor must be one of acme, globex/.test(r)),
          String(reasons),
        );
        assert.equal(
          upstream.callsTo('pay').length,
          before,
          'the denied call reached the upstream',
        );
        // The session survives a refusal: the next, allowed call goes through.
        const paid = await caller.callTool({ vendor: 'acme', amount: 5 });
        assert.notEqual(paid.isError, true);
      } finally {
        await caller.close();
      }
    });

    test(`${sdk}: an input the tool's schema refuses is an MCP error -32602 with data.code`, async () => {
      const caller = await connect(gateway, 'pay-bot');
      try {
        const refused = await refusalOf(caller.callTool({ vendor: 'acme', amount: 'five' }));
        assert.equal(refused.code, ERROR_CATALOGUE.WARDEN_ARGUMENTS_INVALID.rpcCode);
        assert.equal(refused.data['code'], 'WARDEN_ARGUMENTS_INVALID');
      } finally {
        await caller.close();
      }
    });
  }

  test('SDK 1.x: a spent quota is an MCP error -32033 naming the quota', async () => {
    const gatewayWithQuota = gateway;
    const caller = await connectV1(gatewayWithQuota, 'pay-bot');
    try {
      // The earlier tests spent some of this agent's three calls a minute; spend the rest.
      let refused: { code: number; data: Record<string, unknown> } | undefined;
      for (let i = 0; i < 4 && refused === undefined; i += 1) {
        try {
          await caller.callTool({ vendor: 'globex', amount: 1 });
        } catch (error) {
          refused = {
            code: (error as McpError).code,
            data: (error as McpError).data as Record<string, unknown>,
          };
        }
      }
      assert.ok(refused, 'the quota never ran out');
      assert.equal(refused.code, -32033);
      assert.equal(refused.data['code'], 'WARDEN_QUOTA_EXCEEDED');
    } finally {
      await caller.close();
    }
  });

  test('an unauthenticated POST stays HTTP 401 with a WWW-Authenticate challenge', async () => {
    const reply = await fetch(gateway.endpoint('bank'), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(reply.status, 401);
    assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer /);
  });
});

describe('policy.denials: result answers a denied tools/call as a tool result a model can act on', () => {
  let upstream: McpHttpUpstream;
  let gateway: TestGateway;

  before(async () => {
    upstream = await startMcpHttpUpstream(bankServer);
    gateway = await startTestGateway({
      log: { level: 'silent' },
      ...POLICY,
      quotas: [],
      policy: { denials: 'result' },
      upstreams: { bank: { url: upstream.url } },
    });
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  for (const [sdk, connect] of clients) {
    test(`${sdk}: isError with the failed constraint and what is allowed`, async () => {
      const caller = await connect(gateway, 'pay-bot');
      try {
        const result = await caller.callTool({ vendor: 'evil corp', amount: 500 });
        assert.equal(result.isError, true);
        const text = JSON.stringify(result.content);
        assert.match(text, /vendor must be one of acme, globex/);
        assert.match(text, /amount must be a number of at most 100/);
        assert.match(text, /WARDEN_POLICY_DENIED/);
        assert.equal(upstream.callsTo('pay').length, 0, 'the denied call reached the upstream');
      } finally {
        await caller.close();
      }
    });
  }

  test('the values of a list are not told to the caller', async () => {
    const caller = await connectV1(gateway, 'quiet-bot');
    try {
      const result = await caller.callTool({ vendor: 'evil corp', amount: 1 });
      assert.equal(result.isError, true);
      const text = JSON.stringify(result.content);
      assert.match(text, /vendor must be on the list secret_vendors/);
      assert.doesNotMatch(text, /Initech/);
    } finally {
      await caller.close();
    }
  });
});
