/**
 * What an approver sees and who a CLI decision is recorded as (issue 12, point 3), from the
 * built `warden` command: `approvals list` shows who asked, the tool and its key arguments
 * (`approvals.summaries`, else the first few, cut and made inert for the terminal); a decision
 * made with `--as` records the OS user and host that claimed it; `approvals.cli_decisions: false`
 * turns the CLI's decisions off while an authenticated approver (the admin API) still decides.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createApprovalService } from '../src/approvals/approval-service.js';
import { ApprovalError } from '../src/approvals/errors.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/domain/errors.js';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest } from '../src/store/types.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const NOW = Date.now();

let dir: string;
let storeUrl: string;
let config: string;
let cliOff: string;

function request(id: string, fields: Partial<ApprovalRequest>): ApprovalRequest {
  return {
    id,
    requestId: `req-${id}`,
    status: 'pending',
    createdAt: NOW,
    expiresAt: NOW + 3_600_000,
    decidedAt: undefined,
    consumedAt: undefined,
    user: 'bob@example.com',
    agent: 'finance-bot',
    roles: ['finance_executor'],
    model: undefined,
    upstream: 'payments',
    tool: 'issue_payment',
    arguments: '{}',
    argumentsHash: `hash-${id}`,
    toolDefinitionHash: 'tooldef-1',
    policyVersion: 'policy-v1',
    grants: ['grant-1'],
    scopes: [],
    approverRoles: ['finance_approver'],
    approvalsRequired: 1,
    votes: [],
    ...fields,
  };
}

/** A payment, whose configured summary names three of its five arguments. */
const PAYMENT = request('ap-pay', {
  arguments: JSON.stringify({
    amount: 950,
    currency: 'EUR',
    memo: 'invoice 1174',
    recipient: { iban: 'DE89370400440532013000' },
    vendor: 'ACME GmbH',
  }),
});

/** A tool with no summary configured: its first arguments, cut, one with terminal escapes. */
const UPDATE = request('ap-crm', {
  upstream: 'crm',
  tool: 'update_record',
  user: 'grace@example.com',
  agent: 'ops-bot',
  arguments: JSON.stringify({
    customer_id: 'CUS-1001\u001b[2J\u202e',
    fields: { email: 'a-very-long-address-for-a-customer@example.com' },
    notes: 'x'.repeat(200),
    reason: 'moved',
    tier: 'pro',
  }),
});

/** The same request, decided in the file whose CLI decisions are off. */
const HELD = request('ap-held', { arguments: JSON.stringify({ amount: 10 }) });

function configText(extraApprovals: string[]): string {
  return [
    'environment: production',
    `store: ${storeUrl}`,
    `audit: { hash_key_file: ${join(dir, 'hash.key')} }`,
    'auth: { resource: "https://warden.example.com/mcp", issuers: [{ builtin: {} }] }',
    'agents:',
    '  finance-bot: { roles: [finance_executor] }',
    '  ops-bot: { roles: [operations] }',
    'roles: { finance_executor: { grants: [] }, operations: { grants: [] } }',
    'upstreams:',
    '  payments: { url: "http://127.0.0.1:9/mcp" }',
    '  crm: { url: "http://127.0.0.1:9/mcp" }',
    'approvals:',
    '  approvers:',
    '    carol@example.com: { roles: [finance_approver] }',
    ...extraApprovals,
    '',
  ].join('\n');
}

before(async () => {
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  dir = mkdtempSync(join(tmpdir(), 'warden-approvals-edges-'));
  storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  config = join(dir, 'warden.yaml');
  cliOff = join(dir, 'cli-off.yaml');
  writeFileSync(
    config,
    configText(['  summaries:', '    payments.issue_payment: [amount, currency, vendor]']),
  );
  writeFileSync(cliOff, configText(['  cli_decisions: false']));
  const store = await openStore(storeUrl);
  try {
    for (const held of [PAYMENT, UPDATE, HELD]) await store.approvals.create(held);
  } finally {
    await store.close();
  }
});

after(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function warden(
  args: string[],
  file = config,
): { status: number | null; out: string; err: string } {
  const result = spawnSync(process.execPath, [CLI, ...args, '--config', file], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, out: result.stdout, err: result.stderr };
}

function rowOf(listing: string, id: string): string {
  const row = listing.split('\n').find((line) => line.startsWith(id));
  assert.ok(row, `a row for ${id} in:\n${listing}`);
  return row;
}

test('approvals list shows the requester, the tool and the configured key arguments', () => {
  const listed = warden(['approvals', 'list']);
  assert.equal(listed.status, 0, listed.err);
  assert.match(listed.out, /^ID\s+STATUS\s.*\sAGENT\s+USER\s+TOOL\s+VOTES\s+ARGUMENTS$/m);
  const row = rowOf(listed.out, 'ap-pay');
  assert.match(
    row,
    /finance-bot\s+bob@example\.com\s+payments\.issue_payment\s+0\/1\s+amount=950 currency="EUR" vendor="ACME GmbH"$/,
  );
  assert.doesNotMatch(row, /memo|iban/, 'only the configured arguments');
});

test('without a summary, the first arguments are shown cut, and escapes are printed inert', () => {
  const listed = warden(['approvals', 'list']);
  assert.equal(listed.status, 0, listed.err);
  const row = rowOf(listed.out, 'ap-crm');
  assert.match(row, /ops-bot\s+grace@example\.com\s+crm\.update_record\s+0\/1\s+customer_id=/);
  assert.ok(!row.includes('\u001b') && !row.includes('\u202e'), 'no raw escape printed');
  assert.match(row, /customer_id="CUS-1001\\u001b\[2J\\u202e"/);
  assert.match(row, /fields=\{"email":"a-very-long-a… /, 'long values are cut');
  assert.match(row, /notes="x+…/);
  assert.match(row, /\(\+2 more\)$/, 'the rest is counted, not shown');
  assert.doesNotMatch(row, /reason=|tier=/);
});

test('a decision made with --as records the OS user and host that asserted it', async () => {
  const approved = warden(['approvals', 'approve', 'ap-pay', '--as', 'carol@example.com']);
  assert.equal(approved.status, 0, approved.err);
  const store = await openStore(storeUrl);
  try {
    const [record] = await store.audit.query({ requestId: 'req-ap-pay' });
    assert.equal(record?.event, 'approval.granted');
    assert.deepEqual(record?.approval?.approvers, ['carol@example.com']);
    assert.deepEqual(record?.details?.['assertedBy'], {
      osUser: userInfo().username,
      host: hostname(),
    });
  } finally {
    await store.close();
  }
});

test('approvals.cli_decisions: false refuses a CLI decision, naming the key; nothing changes but the record of the refusal', async () => {
  for (const args of [
    ['approve', 'ap-held', '--as', 'carol@example.com'],
    ['deny', 'ap-held', '--as', 'carol@example.com', '--reason', 'no'],
  ]) {
    const refused = warden(['approvals', ...args], cliOff);
    assert.equal(refused.status, 1, refused.err);
    assert.match(refused.err, /approvals\.cli_decisions: false/);
    assert.doesNotMatch(refused.err, /^\s+at /m, 'no stack trace');
  }
  const listed = warden(['approvals', 'list', '--status', 'pending'], cliOff);
  assert.match(rowOf(listed.out, 'ap-held'), /pending/);
  const store = await openStore(storeUrl);
  try {
    assert.equal((await store.approvals.get('ap-held'))?.status, 'pending');
    // Each refused attempt is told, under the held call's request id: who claimed, from where.
    const records = await store.audit.query({ requestId: 'req-ap-held' });
    assert.deepEqual(
      records.map((record) => [record.event, record.errorCode, record.details?.['verdict']]).sort(),
      [
        ['request.refused', 'APPROVAL_CLI_DECISIONS_OFF', 'approve'],
        ['request.refused', 'APPROVAL_CLI_DECISIONS_OFF', 'deny'],
      ],
    );
    for (const record of records) {
      assert.equal(record.details?.['approvalId'], 'ap-held');
      assert.equal(record.details?.['approver'], 'carol@example.com');
      assert.deepEqual(record.details?.['assertedBy'], {
        osUser: userInfo().username,
        host: hostname(),
      });
    }
  } finally {
    await store.close();
  }
});

test('with CLI decisions off, an authenticated approver (the admin API) still decides', async () => {
  const store = await openStore('sqlite::memory:');
  try {
    await store.approvals.create(request('ap-api', {}));
    await store.approvals.create(request('ap-cli', {}));
    const service = createApprovalService({
      store,
      config: { pollIntervalMs: 20, cliDecisions: false },
      now: Date.now,
      record: async () => undefined,
      notify: () => undefined,
    });
    const carol = { user: 'carol@example.com', roles: ['finance_approver'] };
    const asserted = { ...carol, assertedBy: { osUser: 'mallory', host: 'ops-box' } };
    await assert.rejects(
      service.decide('ap-cli', asserted, 'approve', ''),
      (error) => error instanceof ApprovalError && error.code === 'APPROVAL_CLI_DECISIONS_OFF',
    );
    assert.equal((await service.get('ap-cli'))?.status, 'pending');
    assert.equal((await service.decide('ap-api', carol, 'approve', '')).status, 'granted');
  } finally {
    await store.close();
  }
});

test('approvals.summaries is checked: unknown upstream, a bad path, a repeated or empty list', () => {
  const base = {
    auth: { resource: 'https://warden.example.com/mcp', issuers: [{ builtin: {} }] },
    agents: { bot: { roles: [] } },
    upstreams: { payments: { url: 'http://127.0.0.1:9/mcp' } },
  };
  const problems = (summaries: unknown): string[] => {
    try {
      parseConfig({ ...base, approvals: { summaries } }, 'test');
      return [];
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return [...error.issues];
    }
  };
  assert.deepEqual(problems({ 'payments.issue_payment': ['amount', 'recipient.iban'] }), []);
  assert.match(
    problems({ 'paymnts.issue_payment': ['amount'] }).join('\n'),
    /approvals\.summaries\.paymnts\.issue_payment: no upstream is named "paymnts"/,
  );
  assert.match(problems({ issue_payment: ['amount'] }).join('\n'), /upstream\.tool/);
  assert.match(
    problems({ 'payments.issue_payment': ['amount; rm'] }).join('\n'),
    /approvals\.summaries\.payments\.issue_payment\.0: .*an argument path/,
  );
  assert.match(
    problems({ 'payments.issue_payment': ['amount', 'amount'] }).join('\n'),
    /listed twice/,
  );
  assert.notDeepEqual(problems({ 'payments.issue_payment': [] }), []);
  assert.match(
    (() => {
      try {
        parseConfig({ ...base, approvals: { cli_decisions: 'no' } }, 'test');
        return '';
      } catch (error) {
        return String(error);
      }
    })(),
    /approvals\.cli_decisions/,
  );
});
