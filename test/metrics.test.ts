/**
 * Prometheus metrics at /metrics, scraped over HTTP after real calls through a real gateway with
 * an unmodified MCP SDK client: the counters equal the calls made and the audit log's records;
 * a scraper without the secret is refused and recorded; a tool name an attacker chooses never
 * becomes a label; with a listener of their own, the main listener serves no metrics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { parseConfig } from '../src/config/load.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import type { Decision } from '../src/domain/decision.js';
import { ConfigError } from '../src/domain/errors.js';
import { createGatewayMetrics } from '../src/gateway/metrics/set-up-metrics.js';
import {
  freshSource,
  referenceOf,
  sendFrom,
  startAuditedGateway,
  type AuditedGateway,
} from './support/audit-reader.js';
import { startTestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { MCP_POST_HEADERS, sendRaw } from './support/raw-http.js';

const TOKEN_ENV = 'WARDEN_TEST_METRICS_TOKEN';
const METRICS_TOKEN = 'scrape-secret-7f3a9c';
const CALLER = { agent: 'teller-bot', user: 'alan@example.com' };
/** Allowed calls, denied calls: the counts the scrape must show exactly. */
const ALLOWED = 3;
const DENIED = 2;
/** A tool name chosen to break the text format if it ever became a label. */
const HOSTILE_TOOL = 'x"} 1\nwarden_forged_total 9';

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });
  server.registerTool('balance', { description: 'Reads the balance.' }, () => text('42 EUR'));
  server.registerTool(
    'pay',
    { description: 'Pays a vendor.', inputSchema: { vendor: z.string(), amount: z.number() } },
    ({ vendor, amount }) => text(`paid ${amount} to ${vendor}`),
  );
  server.registerTool('wipe', { description: 'Deletes every account.' }, () => text('wiped'));
  return server;
}

function bankPolicy(upstreamUrl: string): Record<string, unknown> {
  return {
    log: { level: 'silent' },
    upstreams: { bank: { url: upstreamUrl } },
    agents: {
      'teller-bot': { roles: ['teller'] },
      'approver-console': { roles: ['warden_approver'] },
    },
    roles: {
      teller: {
        grants: [
          { tool: 'bank.balance' },
          {
            tool: 'bank.pay',
            requires_approval: true,
            approvers: ['finance_approver'],
            approval_delivery: 'retry',
            approval_timeout: '10m',
          },
        ],
      },
    },
    approvals: { approvers: { 'carol@example.com': { roles: ['finance_approver'] } } },
  };
}

/** One sample of the text format: `name{label="value",…} number`. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Scrape {
  readonly text: string;
  readonly samples: readonly Sample[];
  /** Metric names declared with `# TYPE`. */
  readonly declared: ReadonlySet<string>;
}

function parseExposition(text: string): Scrape {
  const samples: Sample[] = [];
  const declared = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) \S+$/.exec(line);
    if (type?.[1] !== undefined) declared.add(type[1]);
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1] as string] = (label[2] as string).replace(/\\(.)/g, (_, c: string) =>
        c === 'n' ? '\n' : c,
      );
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return { text, samples, declared };
}

/** The sum of a metric's samples whose labels include `labels`. */
function total(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return scrape.samples
    .filter(
      (sample) =>
        sample.name === name &&
        Object.entries(labels).every(([label, value]) => sample.labels[label] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

async function scrape(url: string, bearer: string | undefined = METRICS_TOKEN): Promise<Scrape> {
  const reply = await sendRaw(`${url}/metrics`, {
    headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
  });
  assert.equal(reply.status, 200, reply.text);
  assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(reply.text);
}

function isToolCall(record: AuditRecord): boolean {
  return record.method === 'tools/call';
}

describe('/metrics on the main listener, behind a bearer secret', () => {
  let upstream: McpHttpUpstream;
  let audited: AuditedGateway;
  let client: Client;
  let afterCalls: Scrape;
  /** The id of the approval the held payment waits for. */
  let approvalId: string;

  before(async () => {
    process.env[TOKEN_ENV] = METRICS_TOKEN;
    upstream = await startMcpHttpUpstream(bankServer);
    audited = await startAuditedGateway('metrics', {
      ...bankPolicy(upstream.url),
      metrics: { enabled: true, token_env: TOKEN_ENV },
    });
    const { gateway, audit } = audited;
    client = new Client({ name: 'stock-v1', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gateway.endpoint('bank')), {
        requestInit: { headers: await gateway.authHeaders(CALLER) },
      }),
    );
    // The listing pins the upstream's tools: their names are the catalog's, so labels.
    await client.listTools();
    for (let index = 0; index < ALLOWED; index += 1) {
      const result = await client.callTool({ name: 'balance', arguments: {} });
      assert.notEqual(result.isError, true, JSON.stringify(result));
    }
    for (const name of ['wipe', HOSTILE_TOOL]) {
      await assert.rejects(client.callTool({ name, arguments: {} }), `${name} is refused`);
    }
    const pending = await client.callTool({
      name: 'pay',
      arguments: { vendor: 'acme', amount: 12 },
    });
    assert.equal(pending.isError, true, 'answered pending, delivered by retry');
    const held = (pending._meta as Record<string, { id?: string }> | undefined)?.[
      'warden/approval'
    ];
    approvalId = String(held?.id);
    const refused = await sendFrom(freshSource(), gateway.endpoint('bank'), {
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, authorization: 'Bearer not-a-token' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(refused.status, 401);
    // Outcomes and refusals are recorded a moment after the client has its answer.
    await audit.withEvent('auth.failed', 1);
    await audit.withEvent('call.result', ALLOWED);
    afterCalls = await scrape(gateway.url);
  });

  after(async () => {
    await client?.close();
    await audited?.close();
    await upstream?.close();
    delete process.env[TOKEN_ENV];
  });

  test('counts exactly the allowed, denied and held tool calls, as the audit log records them', async () => {
    const records = await audited.audit.all();
    const count = (event: string) =>
      records.filter((record) => record.event === event && isToolCall(record)).length;
    const calls = 'warden_tool_calls_total';
    assert.equal(total(afterCalls, calls, { effect: 'allow' }), ALLOWED);
    assert.equal(
      total(afterCalls, calls, { upstream: 'bank', tool: 'balance', effect: 'allow' }),
      ALLOWED,
    );
    assert.equal(total(afterCalls, calls, { effect: 'deny' }), DENIED);
    assert.equal(total(afterCalls, calls, { tool: 'wipe', effect: 'deny' }), 1);
    assert.equal(total(afterCalls, calls, { effect: 'approval' }), 1);
    assert.equal(total(afterCalls, calls, { tool: 'pay', effect: 'approval' }), 1);
    assert.equal(total(afterCalls, calls, { effect: 'allow' }), count('call.allowed'));
    assert.equal(total(afterCalls, calls, { effect: 'deny' }), count('call.denied'));
    // Only tool grants ask for approval: every request is a held tool call.
    assert.equal(
      total(afterCalls, calls, { effect: 'approval' }),
      records.filter((record) => record.event === 'approval.requested').length,
    );
    for (const event of ['call.allowed', 'call.denied', 'call.result', 'approval.requested']) {
      assert.equal(
        total(afterCalls, 'warden_audit_records_total', { event }),
        records.filter((record) => record.event === event).length,
        `warden_audit_records_total{event="${event}"} equals the log`,
      );
    }
  });

  test('times each decided tool call and each allowed call once', () => {
    assert.equal(
      total(afterCalls, 'warden_call_duration_seconds_count', { upstream: 'bank' }),
      ALLOWED,
    );
    assert.equal(
      total(afterCalls, 'warden_call_duration_seconds_count', { outcome: 'result' }),
      ALLOWED,
    );
    assert.equal(total(afterCalls, 'warden_decision_duration_seconds_count'), ALLOWED + DENIED + 1);
    assert.equal(
      total(afterCalls, 'warden_decision_duration_seconds_count', { effect: 'allow' }),
      ALLOWED,
    );
    const buckets = afterCalls.samples.filter(
      (sample) =>
        sample.name === 'warden_call_duration_seconds_bucket' && sample.labels['le'] === '+Inf',
    );
    assert.equal(
      buckets.reduce((sum, sample) => sum + sample.value, 0),
      ALLOWED,
    );
    assert.ok(total(afterCalls, 'warden_audit_append_duration_seconds_count') >= 1);
  });

  test('counts the refused authentication once, by its code, as the log has it', async () => {
    const failures = await audited.audit.withEvent('auth.failed', 1);
    assert.equal(failures.length, 1);
    assert.equal(total(afterCalls, 'warden_auth_failures_total'), 1);
    assert.equal(
      total(afterCalls, 'warden_auth_failures_total', {
        code: String(failures[0]?.errorCode),
      }),
      1,
    );
  });

  test('reads the pending approval, the open session and the closed circuit at scrape', () => {
    assert.equal(total(afterCalls, 'warden_approvals_pending'), 1);
    assert.equal(total(afterCalls, 'warden_sessions_open', { upstream: 'bank' }), 1);
    assert.equal(
      total(afterCalls, 'warden_upstream_circuit_state', { upstream: 'bank', state: 'closed' }),
      1,
    );
    assert.equal(
      total(afterCalls, 'warden_upstream_circuit_state', { upstream: 'bank', state: 'open' }),
      0,
    );
    assert.equal(total(afterCalls, 'warden_audit_queue_depth'), 0);
  });

  test('a tool name the caller chose never becomes a label', () => {
    const tools = new Set(
      afterCalls.samples
        .filter((sample) => sample.name === 'warden_tool_calls_total')
        .map((sample) => sample.labels['tool']),
    );
    assert.deepEqual([...tools].sort(), ['balance', 'other', 'pay', 'wipe']);
    assert.equal(
      total(afterCalls, 'warden_tool_calls_total', { tool: 'other', effect: 'deny' }),
      1,
    );
    assert.doesNotMatch(afterCalls.text, /warden_forged_total/);
  });

  test('refuses a scraper without the secret, or with a wrong one, and records each refusal', async () => {
    const { gateway, audit } = audited;
    for (const [authorization, reason] of [
      [undefined, 'metrics_token_missing'],
      [`Bearer ${METRICS_TOKEN}x`, 'metrics_token_wrong'],
      [`Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}`, 'metrics_token_missing'],
    ] as const) {
      const reply = await sendFrom(freshSource(), `${gateway.url}/metrics`, {
        headers: authorization === undefined ? {} : { authorization },
      });
      assert.equal(reply.status, 401);
      assert.doesNotMatch(reply.text, /warden_tool_calls_total/);
      assert.match(String(reply.headers['www-authenticate']), /^Bearer /);
      const [record] = await audit.recordsOf(referenceOf(reply));
      assert.equal(record?.event, 'auth.failed');
      assert.equal(record?.errorCode, 'WARDEN_UNAUTHENTICATED');
      assert.equal(record?.details?.['reason'], reason);
      assert.equal(record?.details?.['path'], '/metrics');
    }
    const later = await scrape(gateway.url);
    const refused = (reason: string) =>
      total(later, 'warden_auth_failures_total', { code: 'WARDEN_UNAUTHENTICATED', reason });
    assert.equal(refused('metrics_token_missing'), 2);
    assert.equal(refused('metrics_token_wrong'), 1);
  });

  test('an agent token does not open /metrics', async () => {
    const reply = await sendFrom(freshSource(), `${audited.gateway.url}/metrics`, {
      headers: await audited.gateway.authHeaders(CALLER),
    });
    assert.equal(reply.status, 401);
  });

  test('counts an approver granting the held call, and the request no longer pending', async () => {
    const { gateway, audit } = audited;
    const token = await gateway.token({ agent: 'approver-console', user: 'carol@example.com' });
    const decided = await fetch(`${gateway.url}/admin/approvals/${approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'checked the invoice' }),
    });
    assert.equal(decided.status, 200, await decided.text());
    const granted = await audit.withEvent('approval.granted', 1);
    const later = await scrape(gateway.url);
    assert.equal(total(later, 'warden_approvals_decided_total', { outcome: 'granted' }), 1);
    assert.equal(total(later, 'warden_approvals_decided_total'), granted.length);
    assert.equal(total(later, 'warden_approvals_pending'), 0);
    assert.equal(total(later, 'warden_approvals_expired_total'), 0);
  });

  test('every expression of the Grafana dashboard names a metric the gateway exposes', () => {
    const dashboard = JSON.parse(
      readFileSync(new URL('../deploy/grafana/warden-dashboard.json', import.meta.url), 'utf8'),
    ) as { panels?: { title?: string; targets?: { expr?: string }[] }[] };
    const exprs = (dashboard.panels ?? []).flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr ?? '' })),
    );
    assert.ok(exprs.length >= 8, 'the dashboard has panels with queries');
    for (const { panel, expr } of exprs) {
      const names = expr.match(/\bwarden_[a-z_]+/g) ?? [];
      assert.ok(names.length > 0, `${panel}: ${expr} names no Warden metric`);
      for (const name of names) {
        const base = name.replace(/_(bucket|count|sum)$/, '');
        assert.ok(
          afterCalls.declared.has(name) || afterCalls.declared.has(base),
          `${panel}: ${name} is not exposed`,
        );
      }
    }
  });
});

describe('/metrics on a listener of its own', () => {
  test('serves the metrics there only; the main listener has no /metrics', async () => {
    const upstream = await startMcpHttpUpstream(bankServer);
    const gateway = await startTestGateway({
      ...bankPolicy(upstream.url),
      log: { level: 'info' },
      metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
    });
    try {
      const line = gateway.logs.find((entry) => entry['msg'] === 'metrics listening');
      assert.ok(line, 'the metrics listener logs its port');
      const metricsUrl = `http://127.0.0.1:${String(line['port'])}`;
      assert.notEqual(Number(line['port']), gateway.port);
      const scraped = await scrape(metricsUrl, undefined);
      assert.ok(scraped.declared.has('warden_tool_calls_total'));
      const onMain = await sendRaw(`${gateway.url}/metrics`, {
        headers: await gateway.authHeaders(CALLER),
      });
      assert.equal(onMain.status, 404);
      // The metrics listener serves nothing else, and keeps the DNS rebinding guard.
      assert.equal(
        (await sendRaw(gateway.endpoint('bank').replace(gateway.url, metricsUrl))).status,
        404,
      );
      const rebound = await sendRaw(`${metricsUrl}/metrics`, {
        headers: { host: 'attacker.example' },
      });
      assert.equal(rebound.status, 403);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  test('metrics are off by default', async () => {
    const upstream = await startMcpHttpUpstream(bankServer);
    const gateway = await startTestGateway({ ...bankPolicy(upstream.url) });
    try {
      const reply = await sendRaw(`${gateway.url}/metrics`);
      assert.equal(reply.status, 404);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});

describe('metrics configuration', () => {
  const base = {
    upstreams: { bank: { url: 'http://127.0.0.1:9/mcp' } },
    auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
    agents: { bot: { roles: [] } },
  };

  test('refuses metrics on the main listener with neither a secret nor a listener of their own', () => {
    assert.throws(
      () => parseConfig({ ...base, metrics: { enabled: true } }, 'test'),
      (error: unknown) =>
        error instanceof ConfigError && error.issues.some((issue) => /token_env/.test(issue)),
    );
    assert.equal(parseConfig(base, 'test').metrics.enabled, false);
    const own = parseConfig({ ...base, metrics: { enabled: true, listen: {} } }, 'test');
    assert.deepEqual(own.metrics.listen, { host: '127.0.0.1', port: 9464 });
  });

  test('does not start when the secret’s environment variable is not set', async () => {
    const upstream = await startMcpHttpUpstream(bankServer);
    try {
      await assert.rejects(
        startTestGateway({
          ...bankPolicy(upstream.url),
          metrics: { enabled: true, token_env: 'WARDEN_TEST_METRICS_UNSET' },
        }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.issues.some((issue) => issue.includes('WARDEN_TEST_METRICS_UNSET')),
      );
    } finally {
      await upstream.close();
    }
  });
});

describe('counting audit records', () => {
  const record = (entry: Partial<AuditRecord> & Pick<AuditRecord, 'event'>): AuditRecord => ({
    time: '2026-12-02T12:00:00.000Z',
    stream: 's',
    seq: 1,
    prevHash: '0'.repeat(64),
    hash: '1'.repeat(64),
    ...entry,
  });
  const decision = (effect: 'allow' | 'deny', extra: Record<string, unknown> = {}) =>
    ({ effect, reasons: [], policies: [], ...extra }) as Decision;

  async function countOf(records: AuditRecord[]): Promise<Scrape> {
    const metrics = createGatewayMetrics(
      parseConfig(
        {
          upstreams: { bank: { url: 'http://127.0.0.1:9/mcp' } },
          auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
          agents: { bot: { roles: [] } },
          metrics: { enabled: true, listen: {} },
        },
        'test',
      ),
    );
    metrics.onAppended(
      [
        record({ event: 'tool.approved', upstream: 'bank', tool: 'pay' }),
        // Another upstream's catalog entry names no upstream of this config: not learnt.
        record({ event: 'tool.approved', upstream: 'elsewhere', tool: 'pay' }),
        ...records,
      ],
      3,
    );
    return parseExposition(await metrics.metrics.registry.metrics());
  }

  test('tells monitored, failed, expired, break-glass and summarised refusals apart', async () => {
    const call = { method: 'tools/call', upstream: 'bank', tool: 'pay' } as const;
    const counted = await countOf([
      record({ event: 'call.allowed', ...call, decision: decision('allow') }),
      record({
        event: 'call.allowed',
        ...call,
        decision: decision('allow', { monitored: { effect: 'deny', reasons: [] } }),
      }),
      record({
        event: 'call.denied',
        ...call,
        decision: decision('deny', { evaluationFailed: true }),
      }),
      record({ event: 'call.denied', ...call, upstream: 'elsewhere', decision: decision('deny') }),
      record({
        event: 'call.denied',
        ...call,
        decision: decision('deny'),
        errorCode: 'WARDEN_QUOTA_EXCEEDED',
      }),
      record({ event: 'approval.expired' }),
      record({ event: 'approval.granted', details: { final: false } }),
      record({ event: 'approval.granted', details: { final: true } }),
      record({ event: 'approval.refused' }),
      record({ event: 'breakglass.used' }),
      record({
        event: 'auth.failed',
        details: {
          source: '10.0.0.9',
          repeated: 5,
          codes: { WARDEN_INVALID_TOKEN: 4, 'bad"code': 1 },
        },
      }),
      record({ event: 'call.error', ...call, latencyMs: 12, errorCode: 'WARDEN_UPSTREAM_TIMEOUT' }),
    ]);
    const calls = (labels: Record<string, string>) =>
      total(counted, 'warden_tool_calls_total', labels);
    assert.equal(calls({ upstream: 'bank', tool: 'pay', effect: 'allow' }), 1);
    assert.equal(calls({ effect: 'monitor' }), 1);
    assert.equal(calls({ effect: 'error' }), 1);
    assert.equal(calls({ upstream: 'other', tool: 'other', effect: 'deny' }), 1);
    assert.equal(calls({ upstream: 'bank', tool: 'pay', effect: 'deny' }), 1);
    assert.equal(
      total(counted, 'warden_quota_refusals_total', { upstream: 'bank', tool: 'pay' }),
      1,
    );
    assert.equal(total(counted, 'warden_approvals_expired_total'), 1);
    assert.equal(total(counted, 'warden_approvals_decided_total', { outcome: 'granted' }), 1);
    assert.equal(total(counted, 'warden_approvals_decided_total', { outcome: 'refused' }), 1);
    assert.equal(total(counted, 'warden_breakglass_used_total'), 1);
    assert.equal(
      total(counted, 'warden_auth_failures_total', {
        code: 'WARDEN_INVALID_TOKEN',
        reason: 'repeated',
      }),
      4,
    );
    assert.equal(total(counted, 'warden_auth_failures_total', { code: 'other' }), 1);
    assert.equal(total(counted, 'warden_call_duration_seconds_count', { outcome: 'error' }), 1);
    assert.equal(total(counted, 'warden_audit_append_duration_seconds_count'), 1);
    assert.equal(total(counted, 'warden_audit_records_total'), 14);
  });
});
