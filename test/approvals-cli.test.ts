/**
 * `warden approvals` as an operator runs it beside a gateway: a request held in the store is
 * listed and shown with its full arguments; only a configured approver who is not the requester
 * can decide it; the decision lands in the store and in the audit log under the call's request id.
 * Exit codes: 0 done, 1 refused by the approval rules, 2 a usage or configuration mistake.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStore } from '../src/store/open-store.js';
import type { ApprovalRequest } from '../src/store/types.js';

const APPROVALS_MODULE = fileURLToPath(new URL('../src/cli/approvals.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
// The script lives outside the repository, so it imports commander by its resolved location.
const COMMANDER = import.meta.resolve('commander');

let dir: string;
let config: string;
let script: string;
let storeUrl: string;

const REQUEST: ApprovalRequest = {
  id: 'ap-cli-1',
  requestId: 'req-cli-1',
  status: 'pending',
  createdAt: Date.now(),
  expiresAt: Date.now() + 3_600_000,
  decidedAt: undefined,
  consumedAt: undefined,
  user: 'bob@example.com',
  agent: 'finance-bot',
  roles: ['finance_executor'],
  model: 'model-x',
  upstream: 'payments',
  tool: 'issue_payment',
  arguments: '{"amount":950,"currency":"EUR","memo":"invoice \u202e1174","vendor":"ACME GmbH"}',
  argumentsHash: 'hash-of-args',
  toolDefinitionHash: 'tooldef-1',
  policyVersion: 'policy-v1',
  grants: ['grant-issue-payment'],
  scopes: ['max_amount_1000_eur'],
  approverRoles: ['finance_approver'],
  approvalsRequired: 1,
  votes: [],
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-approvals-cli-'));
  config = join(dir, 'warden.yaml');
  storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  writeFileSync(
    config,
    [
      'environment: production',
      `store: ${storeUrl}`,
      `audit: { hash_key_file: ${join(dir, 'hash.key')} }`,
      'auth: { resource: "https://warden.example.com/mcp", issuers: [{ builtin: {} }] }',
      'agents: { finance-bot: { roles: [finance_executor] } }',
      'roles: { finance_executor: {} }',
      'upstreams: { payments: { url: "http://127.0.0.1:9/mcp" } }',
      'approvals:',
      '  approvers:',
      '    carol@example.com: { roles: [finance_approver] }',
      '    bob@example.com: { roles: [finance_approver] }',
      '',
    ].join('\n'),
  );
  script = join(dir, 'warden.mts');
  writeFileSync(
    script,
    [
      `import { Command } from ${JSON.stringify(COMMANDER)};`,
      `import { registerApprovalsCommand } from ${JSON.stringify(APPROVALS_MODULE)};`,
      `const program = new Command().name('warden');`,
      `registerApprovalsCommand(program);`,
      `await program.parseAsync(process.argv);`,
    ].join('\n'),
  );
  const store = await openStore(storeUrl);
  try {
    await store.approvals.create(REQUEST);
  } finally {
    await store.close();
  }
});

after(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function approvals(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(
    process.execPath,
    ['--import', TSX, script, 'approvals', ...args, '--config', config],
    { cwd: dir, encoding: 'utf8', timeout: 60_000 },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('approvals list shows the pending request; --json has the full arguments', () => {
  const listed = approvals(['list', '--status', 'pending']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(
    listed.stdout,
    /ap-cli-1\s+pending\s.*finance-bot\s+bob@example\.com\s+payments\.issue_payment\s+0\/1/,
  );

  const json = approvals(['list', '--json']);
  assert.equal(json.status, 0, json.stderr);
  const view = JSON.parse(json.stdout.trim()) as { id: string; arguments: { amount: number } };
  assert.equal(view.id, 'ap-cli-1');
  assert.equal(view.arguments.amount, 950);

  const wrong = approvals(['list', '--status', 'approved']);
  assert.equal(wrong.status, 2);
});

test('approvals show prints every fact, with the arguments pretty-printed and control characters defused', () => {
  const shown = approvals(['show', 'ap-cli-1']);
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, /"vendor": "ACME GmbH"/);
  assert.match(shown.stdout, /"amount": 950/);
  assert.match(shown.stdout, /req-cli-1/);
  assert.match(shown.stdout, /finance_approver/);
  assert.doesNotMatch(shown.stdout, /\u202e/, 'no bidi override reaches the terminal');
  assert.match(shown.stdout, /invoice \\u202e1174/);
  const missing = approvals(['show', 'ap-nope']);
  assert.equal(missing.status, 1);
});

test('approve --as someone not in approvals.approvers: exit 2, naming the config key', () => {
  const result = approvals(['approve', 'ap-cli-1', '--as', 'mallory@example.com']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /approvals\.approvers/);
});

test('deny without a reason is a usage mistake: exit 2', () => {
  assert.equal(approvals(['deny', 'ap-cli-1', '--as', 'carol@example.com']).status, 2);
  assert.equal(
    approvals(['deny', 'ap-cli-1', '--as', 'carol@example.com', '--reason', '  ']).status,
    2,
  );
});

test('the requester approving their own call: exit 1, and nothing changes', async () => {
  const result = approvals(['approve', 'ap-cli-1', '--as', 'bob@example.com']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /cannot decide approval ap-cli-1/);
  const store = await openStore(storeUrl);
  try {
    assert.equal((await store.approvals.get('ap-cli-1'))?.status, 'pending');
  } finally {
    await store.close();
  }
});

test('a valid approval: exit 0, granted in the store, approval.granted in the audit log under the request id', async () => {
  const result = approvals(['approve', 'ap-cli-1', '--as', 'carol@example.com', '--reason', 'ok']);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /granted/);
  const store = await openStore(storeUrl);
  try {
    const stored = await store.approvals.get('ap-cli-1');
    assert.equal(stored?.status, 'granted');
    assert.deepEqual(
      stored?.votes.map((vote) => [vote.approver, vote.decision, vote.reason]),
      [['carol@example.com', 'approve', 'ok']],
    );
    const records = await store.audit.query({ requestId: 'req-cli-1' });
    assert.deepEqual(
      records.map((record) => record.event),
      ['approval.granted'],
    );
    assert.deepEqual(records[0]?.approval?.approvers, ['carol@example.com']);
    assert.equal(records[0]?.environment, 'production');
  } finally {
    await store.close();
  }
  const again = approvals(['deny', 'ap-cli-1', '--as', 'carol@example.com', '--reason', 'late']);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already granted/);
});
