/**
 * The audit log through a real gateway: every call leaves its decision (before forwarding) and
 * its outcome, with who, which agent, which model, what arguments (secrets redacted), in one
 * trace; and when the log cannot record, the call is refused and never reaches the upstream.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import { openStore } from '../src/store/open-store.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

const POSTGRES = process.env['WARDEN_TEST_POSTGRES_URL'] ?? 'postgres://root@127.0.0.1:5432/test';
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

async function rpc(
  gateway: TestGateway,
  body: Record<string, unknown>,
  headers: Record<string, string>,
): Promise<{ status: number; text: string; session: string | null }> {
  const response = await fetch(gateway.endpoint('fixture'), {
    method: 'POST',
    headers: { ...HEADERS, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', ...body }),
  });
  return {
    status: response.status,
    text: await response.text(),
    session: response.headers.get('mcp-session-id'),
  };
}

async function openSession(gateway: TestGateway, auth: Record<string, string>): Promise<string> {
  const init = await rpc(
    gateway,
    {
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      },
    },
    auth,
  );
  assert.equal(init.status, 200, init.text);
  return init.session ?? '';
}

async function readRecords(
  storeUrl: string,
  requestFilter: (record: AuditRecord) => boolean,
): Promise<AuditRecord[]> {
  const store = await openStore(storeUrl);
  try {
    const records: AuditRecord[] = [];
    for (const stream of await store.audit.streams()) {
      records.push(...(await store.audit.readStream(stream, 1, 10_000)));
    }
    return records.filter(requestFilter);
  } finally {
    await store.close();
  }
}

describe('every call is told in the audit log', () => {
  const schema = `warden_audit_${randomBytes(4).toString('hex')}`;
  const storeUrl = `${POSTGRES}?schema=${schema}`;
  let upstream: ScriptedUpstream;
  let gateway: TestGateway;

  before(async () => {
    upstream = await startScriptedUpstream();
    gateway = await startTestGateway({
      store: storeUrl,
      log: { level: 'silent' },
      agents: {
        'test-agent': { roles: ['tester'] },
        'pay-bot': {
          roles: ['payments'],
          secret_hash: await hashClientSecret('pay-bot-secret-0123456789'),
        },
      },
      upstreams: { fixture: { url: upstream.url } },
    });
  });

  after(async () => {
    await gateway?.close();
    await upstream?.close();
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test('a tool call leaves call.allowed then call.result, sharing the request and trace ids', async () => {
    const auth = await gateway.authHeaders({ user: 'ada@example.com' });
    const session = await openSession(gateway, auth);
    const traceId = randomBytes(16).toString('hex');
    const call = await rpc(
      gateway,
      {
        id: 2,
        method: 'tools/call',
        params: {
          name: 'echo',
          arguments: { text: 'hi', api_key: 'sk-live-0123456789abcdef0123456789' },
        },
      },
      {
        ...auth,
        'mcp-session-id': session,
        'mcp-protocol-version': '2025-11-25',
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        'x-agent-model': 'claude-test-model',
      },
    );
    assert.equal(call.status, 200, call.text);
    const seenUpstream = upstream.received.find(
      (request) =>
        request.message && 'method' in request.message && request.message.method === 'tools/call',
    );
    assert.match(
      String(seenUpstream?.headers['traceparent']),
      new RegExp(`^00-${traceId}-`),
      'the trace continues upstream',
    );

    // The result record is written when the call ends; give it a moment (bounded).
    let records: AuditRecord[] = [];
    for (let attempt = 0; attempt < 50 && records.length < 2; attempt++) {
      records = await readRecords(storeUrl, (record) => record.traceId === traceId);
      if (records.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(
      records.map((record) => record.event),
      ['call.allowed', 'call.result'],
    );
    const [decision, result] = records as [AuditRecord, AuditRecord];
    assert.equal(decision.requestId, result.requestId);
    assert.equal(decision.user, 'ada@example.com');
    assert.equal(decision.agent, 'test-agent');
    assert.deepEqual(decision.roles, ['tester']);
    assert.equal(decision.model, 'claude-test-model');
    assert.equal(decision.tool, 'echo');
    assert.equal(decision.upstream, 'fixture');
    assert.equal(decision.decision?.effect, 'allow');
    assert.deepEqual(
      decision.arguments,
      { text: 'hi', api_key: '[redacted]' },
      'secrets never reach the log',
    );
    assert.match(decision.argumentsHash ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(result.result?.isError, false);
    assert.ok((result.result?.size ?? 0) > 0);
    assert.ok(result.seq > decision.seq);
  });

  test('a token issued at the token endpoint leaves a token.issued record', async () => {
    const response = await fetch(`${gateway.url}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('pay-bot:pay-bot-secret-0123456789').toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    assert.equal(response.status, 200, await response.clone().text());
    let records: AuditRecord[] = [];
    for (let attempt = 0; attempt < 50 && records.length === 0; attempt++) {
      records = await readRecords(storeUrl, (record) => record.event === 'token.issued');
      if (records.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(records[0]?.agent, 'pay-bot');
    assert.equal(records[0]?.details?.['method'], 'client_secret_basic');
  });

  test('a refused token leaves an auth.failed record', async () => {
    const response = await fetch(gateway.endpoint('fixture'), {
      method: 'POST',
      headers: { ...HEADERS, authorization: 'Bearer not.a.token' },
      body: '{}',
    });
    assert.equal(response.status, 401);
    let records: AuditRecord[] = [];
    for (let attempt = 0; attempt < 50 && records.length === 0; attempt++) {
      records = await readRecords(storeUrl, (record) => record.event === 'auth.failed');
      if (records.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(records[0]?.errorCode, 'WARDEN_INVALID_TOKEN');
  });

  test('when the audit log cannot record, the call is refused and never forwarded; it resumes by itself', async () => {
    const auth = await gateway.authHeaders();
    const session = await openSession(gateway, auth);
    const headers = { ...auth, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    const client = new pg.Client({ connectionString: POSTGRES });
    await client.connect();
    try {
      await client.query(`ALTER TABLE ${schema}.audit_records RENAME TO audit_records_away`);
      const before = upstream.received.length;
      const refused = await rpc(
        gateway,
        { id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'pay' } } },
        headers,
      );
      // Answered in band: a JSON-RPC error with HTTP 200 (see ANSWERED_IN_BAND).
      assert.equal(refused.status, 200, refused.text);
      assert.equal(
        (JSON.parse(refused.text) as { error: { data: { code: string } } }).error.data.code,
        'WARDEN_AUDIT_UNAVAILABLE',
      );
      assert.equal(upstream.received.length, before, 'nothing reached the upstream');
    } finally {
      await client.query(`ALTER TABLE ${schema}.audit_records_away RENAME TO audit_records`);
      await client.end();
    }
    const resumed = await rpc(
      gateway,
      { id: 4, method: 'tools/call', params: { name: 'echo', arguments: { text: 'again' } } },
      headers,
    );
    assert.equal(resumed.status, 200, resumed.text);
  });
});
