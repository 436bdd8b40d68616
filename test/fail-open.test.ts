// Fail-open is an explicit per-tool opt-in for non-sensitive tools, and never silent: when the
// audit log cannot take a decision record, only such a tool's call proceeds, its record is kept and
// written late (marked), and every other call is refused. Denials never fail open.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCallRecorder } from '../src/audit/call-recorder.js';
import { createArgumentRedactor } from '../src/audit/redaction.js';
import { parseConfig } from '../src/config/load.js';
import type { AuditEntry, AuditRecord } from '../src/domain/audit-record.js';
import { ConfigError, WardenError } from '../src/domain/errors.js';
import type { Identity } from '../src/domain/identity.js';
import { classifyMcpCall } from '../src/domain/mcp-call.js';

const identity: Identity = {
  user: 'ada',
  delegation: [],
  agent: 'research-bot',
  roles: ['research'],
  environment: 'test',
  tenant: undefined,
  declaredModel: undefined,
  credential: { kind: 'mtls', subject: 'x', fingerprint: 'y', expiresAt: 0 },
};
const facts = {
  requestId: 'r-1',
  traceparent: undefined,
  identity,
  upstream: 'research',
  call: classifyMcpCall({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'search_docs', arguments: { query: 'leave policy' } },
  }),
};
const allow = { effect: 'allow' as const, reasons: ['grant'], policies: ['g'] };

/** An audit chain that refuses while `down` is true. */
function flakyChain() {
  const stored: AuditEntry[] = [];
  const chain = {
    down: true,
    stored,
    record(entry: AuditEntry): Promise<AuditRecord> {
      if (chain.down) return Promise.reject(new Error('database is locked'));
      stored.push(entry);
      return Promise.resolve({ ...entry, stream: 's', seq: stored.length, prevHash: '', hash: '' });
    },
  };
  return chain;
}

function recorderOn(chain: ReturnType<typeof flakyChain>, spoolLimit = 10) {
  const alerts: string[] = [];
  const recorder = createCallRecorder({
    chain,
    redactor: createArgumentRedactor({ hashKey: randomBytes(32) }),
    excerptBytes: 0,
    spoolLimit,
    onFailure: (_error, entry) => alerts.push(entry.event),
  });
  return { recorder, alerts };
}

test('a sensitive tool fails closed when the log is down: the call is refused', async () => {
  const chain = flakyChain();
  const { recorder, alerts } = recorderOn(chain);
  await assert.rejects(recorder.recordDecision(facts, allow), (error: unknown) => {
    return error instanceof WardenError && error.code === 'WARDEN_AUDIT_UNAVAILABLE';
  });
  assert.deepEqual(alerts, ['call.allowed'], 'the operator is alerted');
  await recorder.close();
});

test('a fail-open tool proceeds, and its decision record is written late, marked, not lost', async () => {
  const chain = flakyChain();
  const { recorder, alerts } = recorderOn(chain);
  const outcome = await recorder.recordDecision(facts, allow, { failOpen: true });
  outcome.answered({ jsonrpc: '2.0', id: 1, result: { content: [] } });
  assert.equal(alerts.length >= 1, true, 'the fail-open is alerted');
  chain.down = false;
  const deadline = Date.now() + 5000;
  while (chain.stored.length < 2 && Date.now() < deadline) await sleep(50);
  assert.deepEqual(
    chain.stored.map((entry) => entry.event),
    ['call.allowed', 'call.result'],
  );
  assert.match(String(chain.stored[0]?.details?.['failOpen']), /recorded late/);
  await recorder.close();
});

test('a denial never fails open, and a full spool fails closed', async () => {
  const chain = flakyChain();
  const { recorder } = recorderOn(chain, 1);
  const deny = { effect: 'deny' as const, reasons: ['no grant'], policies: [] };
  await assert.rejects(recorder.recordDecision(facts, deny, { failOpen: true }));
  await recorder.recordDecision(facts, allow, { failOpen: true });
  await assert.rejects(recorder.recordDecision(facts, allow, { failOpen: true }), /fail closed/);
  await recorder.close();
});

test('on_failure: open is refused at load for a tool not marked non-sensitive', () => {
  const base = {
    auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
    agents: { a: { roles: [] } },
  };
  assert.throws(
    () =>
      parseConfig(
        {
          ...base,
          upstreams: {
            research: {
              url: 'http://127.0.0.1:9/mcp',
              tools: { search_docs: { on_failure: 'open' } },
            },
          },
        },
        'test',
      ),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.issues.some((issue) => /tools\.search_docs\.on_failure/.test(issue)),
  );
  const config = parseConfig(
    {
      ...base,
      upstreams: {
        research: {
          url: 'http://127.0.0.1:9/mcp',
          tools: { search_docs: { sensitive: false, on_failure: 'open' } },
        },
      },
    },
    'test',
  );
  const research = config.upstreams.get('research');
  assert.equal(research?.tools.get('search_docs')?.onFailure, 'open');
});
