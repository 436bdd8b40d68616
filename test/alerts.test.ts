/**
 * Alerts a team can route: rules on what the audit log records (and on circuit breakers and the
 * audit log's own failures), delivered to a real webhook receiver on 127.0.0.1, HMAC-signed,
 * retried, deduplicated, and each delivery recorded as `alert.sent` / `alert.failed`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import Database from 'better-sqlite3';
import { parseConfig } from '../src/config/load.js';
import type { AuditEntry, AuditRecord } from '../src/domain/audit-record.js';
import { ConfigError } from '../src/domain/errors.js';
import { setUpAlerts } from '../src/gateway/alerts/set-up-alerts.js';
import { setUpAuditLog, type GatewayAuditLog } from '../src/gateway/audit-log.js';
import { createLogger } from '../src/gateway/logger.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import {
  createAuditedSetup,
  freshSource,
  sendFrom,
  startAuditedGateway,
  type AuditedGateway,
  type AuditedSetup,
} from './support/audit-reader.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { MCP_POST_HEADERS, openSession, postMcp } from './support/raw-http.js';
import {
  sendJson,
  startScriptedUpstream,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';

const SECRET_ENV = 'WARDEN_TEST_ALERTS_HMAC';
const SECRET = 'alerts-hmac-3c1d9e';
/** How long a test waits for a delivery that should come: room for a loaded 2-core machine. */
const WAIT_MS = 15_000;

interface Delivery {
  readonly path: string;
  readonly body: string;
  readonly json: Record<string, unknown>;
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
}

/** A webhook receiver: records every POST; `failNext[path]` answers that many 500s first. */
interface Receiver {
  readonly url: string;
  readonly deliveries: Delivery[];
  readonly failNext: Map<string, number>;
  /** Paths that always answer 500. */
  readonly dead: Set<string>;
  /** Waits (bounded) until `count` accepted deliveries satisfy `match`. */
  waitFor(match: (delivery: Delivery) => boolean, count?: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const accepted = new Set<Delivery>();
  const failNext = new Map<string, number>();
  const dead = new Set<string>();
  const server: Server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = request.url ?? '/';
      const delivery: Delivery = {
        path,
        body,
        json: JSON.parse(body) as Record<string, unknown>,
        timestamp: header(request, 'x-warden-timestamp'),
        signature: header(request, 'x-warden-signature'),
      };
      deliveries.push(delivery);
      const failures = failNext.get(path) ?? 0;
      if (dead.has(path) || failures > 0) {
        failNext.set(path, failures - 1);
        response.writeHead(500).end();
        return;
      }
      accepted.add(delivery);
      response.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    deliveries,
    failNext,
    dead,
    async waitFor(match, count = 1) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const found = deliveries.filter((delivery) => accepted.has(delivery) && match(delivery));
        if (found.length >= count || Date.now() > deadline) return found;
        await sleep(20);
      }
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** What a receiver does: recompute the HMAC over "<timestamp>.<body>", compare in constant time. */
function hasValidSignature(delivery: Delivery, secret = SECRET): boolean {
  if (delivery.timestamp === undefined || delivery.signature === undefined) return false;
  const expected = Buffer.from(
    `sha256=${createHmac('sha256', secret).update(`${delivery.timestamp}.${delivery.body}`).digest('hex')}`,
  );
  const given = Buffer.from(delivery.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The rest of a valid config for tests that start no listener: alerts are what they vary. */
const OFFLINE_GATEWAY = {
  auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
  upstreams: { bank: { url: 'http://127.0.0.1:1/mcp' } },
  agents: { 'viewer-bot': { roles: ['viewer'] } },
  roles: { viewer: {} },
};

const ofRule = (rule: string) => (delivery: Delivery) => delivery.json['rule'] === rule;

/** Waits (bounded) until the read records satisfy `done`. */
async function waitForRecords(
  read: () => Promise<AuditRecord[]>,
  done: (records: AuditRecord[]) => boolean,
): Promise<AuditRecord[]> {
  const deadline = Date.now() + WAIT_MS;
  let records = await read();
  while (!done(records) && Date.now() < deadline) {
    await sleep(20);
    records = await read();
  }
  return records;
}

function bankServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' });
  const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });
  server.registerTool('balance', { description: 'Reads the balance.' }, () => text('42 EUR'));
  server.registerTool('wipe', { description: 'Deletes every account.' }, () => text('wiped'));
  return server;
}

describe('alerts from a running gateway', () => {
  let receiver: Receiver;
  let bank: McpHttpUpstream;
  let shaky: ScriptedUpstream;
  let audited: AuditedGateway;
  let client: Client;

  before(async () => {
    process.env[SECRET_ENV] = SECRET;
    receiver = await startReceiver();
    bank = await startMcpHttpUpstream(bankServer);
    shaky = await startScriptedUpstream();
    audited = await startAuditedGateway('alerts', {
      log: { level: 'silent' },
      upstreams: {
        bank: { url: bank.url },
        shaky: { url: shaky.url, circuit_breaker: { failures: 2, open_for: '1h' } },
      },
      agents: { 'teller-bot': { roles: ['teller'] } },
      roles: { teller: { grants: [{ tool: 'bank.balance' }, { tool: 'shaky.echo' }] } },
      alerts: {
        webhooks: [
          { name: 'oncall', url: `${receiver.url}/oncall`, secret_env: SECRET_ENV },
          { name: 'chat', url: `${receiver.url}/chat`, format: 'slack', secret_env: SECRET_ENV },
          { name: 'dead', url: `${receiver.url}/dead`, secret_env: SECRET_ENV },
        ],
        rules: [
          { kind: 'denial_rate', threshold: 1, window: '10m', webhooks: ['oncall'] },
          { kind: 'auth_failure_burst', threshold: 0, webhooks: ['oncall', 'dead'] },
          { kind: 'breaker_open', webhooks: ['oncall', 'chat'] },
        ],
        retry: { attempts: 2, backoff: '5ms' },
      },
    });
    receiver.dead.add('/dead');
    client = new Client({ name: 'stock', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(audited.gateway.endpoint('bank')), {
        requestInit: { headers: await audited.gateway.authHeaders({ agent: 'teller-bot' }) },
      }),
    );
    await client.listTools();
  });

  after(async () => {
    await client?.close();
    await audited?.close();
    await shaky?.close();
    await bank?.close();
    await receiver?.close();
    delete process.env[SECRET_ENV];
  });

  test('an agent denied more than N calls in the window raises denial_rate, signed', async () => {
    for (let i = 0; i < 3; i++) {
      await assert.rejects(client.callTool({ name: 'wipe', arguments: {} }), 'wipe is refused');
    }
    const [alert] = await receiver.waitFor(ofRule('denial_rate'));
    assert.ok(alert, 'the denial_rate alert arrived');
    assert.equal(alert.path, '/oncall');
    assert.ok(hasValidSignature(alert), 'signed with the configured secret');
    assert.equal(hasValidSignature(alert, 'another-secret'), false);
    assert.equal(alert.json['type'], 'warden.alert');
    assert.equal(alert.json['key'], 'teller-bot');
    assert.equal(alert.json['test'], false);
    const sent = await audited.audit.withEvent('alert.sent', 1);
    const record = sent.find((entry) => entry.details?.['rule'] === 'denial_rate');
    assert.equal(record?.details?.['webhook'], 'oncall');
    assert.equal(record?.details?.['attempts'], 1);
  });

  test('a bad token raises auth_failure_burst for its source; the dead webhook is recorded as failed', async () => {
    const source = freshSource();
    const refused = await sendFrom(source, audited.gateway.endpoint('bank'), {
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, authorization: 'Bearer not-a-token' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(refused.status, 401);
    const [alert] = await receiver.waitFor(
      (delivery) => ofRule('auth_failure_burst')(delivery) && delivery.json['key'] === source,
    );
    assert.ok(alert, 'the auth_failure_burst alert arrived');
    assert.ok(hasValidSignature(alert));
    const failed = await audited.audit.withEvent('alert.failed', 1);
    const record = failed.find((entry) => entry.details?.['key'] === source);
    assert.equal(record?.details?.['webhook'], 'dead');
    assert.equal(record?.details?.['attempts'], 2, 'every configured attempt was made');
    assert.equal(record?.errorCode, 'WARDEN_ALERT_DELIVERY_FAILED');
    assert.equal(
      receiver.deliveries.filter((delivery) => delivery.path === '/dead').length,
      2,
      'the dead receiver was tried twice',
    );
    // The failing receiver does not touch the gateway: calls go on being served.
    const result = await client.callTool({ name: 'balance', arguments: {} });
    assert.notEqual(result.isError, true, JSON.stringify(result));
  });

  test('a circuit that opens raises breaker_open, in JSON and in Slack format', async () => {
    const endpoint = audited.gateway.endpoint('shaky');
    const auth = await audited.gateway.authHeaders({ agent: 'teller-bot' });
    const sessionId = await openSession(endpoint, auth);
    shaky.intercept = (message, _request, response) => {
      if (message?.method !== 'tools/list') return false;
      sendJson(response, 500, { error: 'exploded' });
      return true;
    };
    for (let i = 0; i < 2; i++) {
      await postMcp(
        endpoint,
        { jsonrpc: '2.0', id: 7, method: 'tools/list' },
        { sessionId, headers: auth },
      );
    }
    const [json] = await receiver.waitFor(
      (delivery) => delivery.path === '/oncall' && ofRule('breaker_open')(delivery),
    );
    assert.equal(json?.json['key'], 'shaky');
    assert.ok(json && hasValidSignature(json));
    const [slack] = await receiver.waitFor((delivery) => delivery.path === '/chat');
    assert.match(String(slack?.json['text']), /breaker_open.*circuit to upstream shaky opened/);
    assert.ok(slack && hasValidSignature(slack));
  });

  test('more denials within the dedup window send no second alert', async () => {
    const before = (await audited.audit.withEvent('call.denied', 3)).length;
    await assert.rejects(client.callTool({ name: 'wipe', arguments: {} }));
    await audited.audit.withEvent('call.denied', before + 1);
    // Closing waits for every delivery under way, so nothing can arrive after the count.
    await audited.gateway.close();
    assert.equal(receiver.deliveries.filter(ofRule('denial_rate')).length, 1);
    const records = await audited.audit.all();
    assert.equal(
      records.filter(
        (record) => record.event === 'alert.sent' && record.details?.['rule'] === 'denial_rate',
      ).length,
      1,
    );
  });
});

describe('alerts on audit records, through the gateway audit log', () => {
  let receiver: Receiver;
  let setup: AuditedSetup;
  let store: Store;
  let auditLog: GatewayAuditLog;
  let alerts: NonNullable<ReturnType<typeof setUpAlerts>>;
  let clock = Date.parse('2026-12-01T10:00:00Z');

  before(async () => {
    receiver = await startReceiver();
    setup = createAuditedSetup('alerts-log');
    const config = parseConfig(
      {
        ...setup.config,
        log: { level: 'silent' },
        ...OFFLINE_GATEWAY,
        alerts: {
          webhooks: [
            { name: 'oncall', url: `${receiver.url}/oncall`, secret_env: SECRET_ENV },
            { name: 'chat', url: `${receiver.url}/chat`, format: 'slack' },
          ],
          rules: [
            { kind: 'breakglass_used', dedup_window: '5m', webhooks: ['oncall'] },
            { kind: 'tool_definition_changed', webhooks: ['oncall', 'chat'] },
            { kind: 'approval_expired', webhooks: ['oncall'] },
            { kind: 'audit_unavailable', webhooks: ['oncall'] },
          ],
          retry: { attempts: 3, backoff: '1ms' },
        },
      },
      'test',
    );
    const logger = createLogger('silent');
    store = await openStore(setup.storeUrl);
    const made = setUpAlerts(config, logger, { env: { [SECRET_ENV]: SECRET }, now: () => clock });
    assert.ok(made);
    alerts = made;
    auditLog = await setUpAuditLog(config, store, logger, alerts.onAppended, (error, entry) =>
      alerts.auditUnavailable(error, entry),
    );
    alerts.recordWith(auditLog.note);
  });

  after(async () => {
    await alerts?.close();
    await store?.close().catch(() => undefined);
    await receiver?.close();
    setup?.cleanUp();
  });

  const record = (entry: Omit<AuditEntry, 'time'>) =>
    auditLog.record({ ...entry, time: new Date(clock).toISOString() } as AuditEntry);
  const sentRecords = async (rule: string) =>
    (
      await waitForRecords(
        () => store.audit.query({ event: 'alert.sent', limit: 1000 }),
        (records) => records.some((entry) => entry.details?.['rule'] === rule),
      )
    ).filter((entry) => entry.details?.['rule'] === rule);

  test('break-glass used: delivered signed, and recorded as alert.sent', async () => {
    await record({
      event: 'breakglass.used',
      agent: 'ops-bot',
      user: 'dana@example.com',
      upstream: 'bank',
      tool: 'wipe',
    });
    const [alert] = await receiver.waitFor(ofRule('breakglass_used'));
    assert.ok(alert && hasValidSignature(alert));
    assert.equal(alert.json['key'], 'ops-bot');
    assert.match(String(alert.json['summary']), /dana@example\.com/);
    const sent = await sentRecords('breakglass_used');
    assert.equal(sent.length, 1);
  });

  test('a second break-glass within the dedup window is not sent; after it, it is', async () => {
    await record({ event: 'breakglass.used', agent: 'ops-bot', upstream: 'bank', tool: 'wipe' });
    await alerts.sender.idle();
    assert.equal(receiver.deliveries.filter(ofRule('breakglass_used')).length, 1);
    clock += 5 * 60_000 + 1;
    await record({ event: 'breakglass.used', agent: 'ops-bot', upstream: 'bank', tool: 'wipe' });
    const delivered = await receiver.waitFor(ofRule('breakglass_used'), 2);
    assert.equal(delivered.length, 2);
  });

  test('a tool definition change goes to both routed webhooks; Slack text is escaped', async () => {
    await record({ event: 'tool.definition_changed', upstream: 'bank', tool: '<!channel>' });
    const [json] = await receiver.waitFor(
      (delivery) => delivery.path === '/oncall' && ofRule('tool_definition_changed')(delivery),
    );
    assert.equal(json?.json['key'], 'bank.<!channel>');
    const [slack] = await receiver.waitFor((delivery) => delivery.path === '/chat');
    assert.ok(slack);
    assert.doesNotMatch(String(slack.json['text']), /<!channel>/, 'no channel ping');
    assert.equal(slack.signature, undefined, 'a webhook without secret_env is not signed');
  });

  test('a receiver that fails twice gets the alert on the third attempt, recorded', async () => {
    receiver.failNext.set('/oncall', 2);
    await record({
      event: 'approval.expired',
      agent: 'teller-bot',
      upstream: 'bank',
      tool: 'pay',
      approval: { id: 'apr-1' },
    });
    const [alert] = await receiver.waitFor(ofRule('approval_expired'));
    assert.ok(alert && hasValidSignature(alert));
    assert.equal(alert.json['key'], 'apr-1');
    assert.equal(receiver.deliveries.filter(ofRule('approval_expired')).length, 3);
    const [sent] = await sentRecords('approval_expired');
    assert.equal(sent?.details?.['attempts'], 3);
  });

  test('the audit log failing raises audit_unavailable once, without a loop', async () => {
    await alerts.sender.idle();
    await store.close();
    await assert.rejects(record({ event: 'grant.changed', agent: 'teller-bot' }));
    const [alert] = await receiver.waitFor(ofRule('audit_unavailable'));
    assert.ok(alert && hasValidSignature(alert));
    // Its own alert.sent cannot be recorded either; that must not raise another alert.
    await alerts.sender.idle();
    assert.equal(receiver.deliveries.filter(ofRule('audit_unavailable')).length, 1);
  });
});

test('alerts: a counting rule without threshold, or a route to an unknown webhook, does not load', () => {
  const base = {
    store: 'sqlite::memory:',
    ...OFFLINE_GATEWAY,
  };
  assert.throws(
    () => parseConfig({ ...base, alerts: { rules: [{ kind: 'denial_rate' }] } }, 'test'),
    (error: unknown) => error instanceof ConfigError && /threshold/.test(error.issues.join()),
  );
  assert.throws(
    () =>
      parseConfig(
        { ...base, alerts: { rules: [{ kind: 'breakglass_used', webhooks: ['nobody'] }] } },
        'test',
      ),
    (error: unknown) => error instanceof ConfigError && /nobody/.test(error.issues.join()),
  );
});

describe('warden alerts test', () => {
  const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  let receiver: Receiver;
  let setup: AuditedSetup;
  let configFile: string;

  before(async () => {
    receiver = await startReceiver();
    receiver.dead.add('/dead');
    setup = createAuditedSetup('alerts-cli');
    configFile = join(setup.dir, 'warden.yaml');
    writeFileSync(
      configFile,
      JSON.stringify({
        ...setup.config,
        ...OFFLINE_GATEWAY,
        alerts: {
          webhooks: [
            { name: 'oncall', url: `${receiver.url}/oncall`, secret_env: SECRET_ENV },
            { name: 'dead', url: `${receiver.url}/dead` },
          ],
          rules: [
            { kind: 'breakglass_used', webhooks: ['oncall'] },
            { kind: 'breaker_open', webhooks: ['dead'] },
          ],
          retry: { attempts: 2, backoff: '1ms' },
        },
      }),
    );
  });

  after(async () => {
    await receiver?.close();
    setup?.cleanUp();
  });

  async function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
    assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, [SECRET_ENV]: SECRET },
      stdio: 'pipe',
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
    const code = await new Promise<number | null>((resolve) =>
      child.once('exit', (exitCode) => resolve(exitCode)),
    );
    clearTimeout(timer);
    return { code, output };
  }

  const testRule = (rule: string) =>
    runCli(['alerts', 'test', '--config', configFile, '--rule', rule]);

  test('sends a signed sample of one rule and prints that it was delivered', async () => {
    const { code, output } = await testRule('breakglass_used');
    assert.equal(code, 0, output);
    assert.match(output, /breakglass_used -> oncall: delivered \(1 attempt\)/);
    const [sample] = await receiver.waitFor(ofRule('breakglass_used'));
    assert.ok(sample && hasValidSignature(sample));
    assert.equal(sample.json['test'], true);
  });

  test('a webhook that refuses is reported, with exit 1', async () => {
    const { code, output } = await testRule('breaker_open');
    assert.equal(code, 1, output);
    assert.match(output, /breaker_open -> dead: FAILED after 2 attempts: .*HTTP 500/);
  });

  test('an unknown rule is a usage problem (exit 2)', async () => {
    const { code, output } = await testRule('nope');
    assert.equal(code, 2, output);
    assert.match(output, /no rule is named "nope"/);
  });
});

describe('verification_failure: the gateway re-verifies the log in the store', () => {
  let receiver: Receiver;
  let setup: AuditedSetup;
  let store: Store;
  let auditLog: GatewayAuditLog;
  let alerts: NonNullable<ReturnType<typeof setUpAlerts>>;

  before(async () => {
    receiver = await startReceiver();
    setup = createAuditedSetup('alerts-verify');
    const config = parseConfig(
      {
        ...setup.config,
        audit: { ...setup.config.audit, verify_every: '100ms', checkpoint_every: 2 },
        log: { level: 'silent' },
        ...OFFLINE_GATEWAY,
        alerts: {
          webhooks: [{ name: 'oncall', url: `${receiver.url}/oncall`, secret_env: SECRET_ENV }],
          rules: [{ kind: 'verification_failure' }],
          retry: { attempts: 2, backoff: '1ms' },
        },
      },
      'test',
    );
    const logger = createLogger('silent');
    store = await openStore(setup.storeUrl);
    const made = setUpAlerts(config, logger, { env: { [SECRET_ENV]: SECRET } });
    assert.ok(made);
    alerts = made;
    auditLog = await setUpAuditLog(config, store, logger, alerts.onAppended);
    alerts.recordWith(auditLog.note);
  });

  after(async () => {
    await auditLog?.close().catch(() => undefined);
    await alerts?.close();
    await store?.close().catch(() => undefined);
    await receiver?.close();
    setup?.cleanUp();
  });

  test('an intact log raises nothing; a record rewritten in the database raises the alert', async () => {
    for (const tool of ['get_invoice', 'list_invoices', 'get_invoice']) {
      await auditLog.record({
        event: 'call.allowed',
        time: new Date().toISOString(),
        agent: 'viewer-bot',
        upstream: 'bank',
        tool,
      } as AuditEntry);
    }
    // Several verification rounds pass over the intact log first.
    await sleep(500);
    assert.equal(receiver.deliveries.filter(ofRule('verification_failure')).length, 0);

    const db = new Database(setup.storeUrl.slice('sqlite:'.length));
    try {
      const changed = db
        .prepare(
          `UPDATE audit_records SET record = replace(record, '"tool":"list_invoices"', '"tool":"wipe"') WHERE record LIKE '%list_invoices%'`,
        )
        .run().changes;
      assert.equal(changed, 1);
    } finally {
      db.close();
    }
    const [alert] = await receiver.waitFor(ofRule('verification_failure'));
    assert.ok(alert && hasValidSignature(alert));
    assert.equal(alert.json['key'], 'audit');
    const facts = alert.json['facts'] as Record<string, unknown>;
    assert.match(JSON.stringify(facts['problems']), /hash/i);
    const failed = await waitForRecords(
      () => store.audit.query({ event: 'audit.verification_failed', limit: 10 }),
      (records) => records.length > 0,
    );
    assert.ok(failed[0]?.details?.['problems']);
  });
});
