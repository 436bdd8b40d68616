/**
 * Investigating the audit log as an operator does after an incident: a real gateway records a
 * few calls in a SQLite file, then `warden audit query|show|tail|archive` run from the built
 * package against that file. Filters narrow, one call's story is told whole, a followed tail
 * sees new records, and archiving leaves both the rest of the log and the archive verifiable —
 * while a tampered archive, or a caller's escape sequences, are caught.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createAuditChain } from '../src/audit/audit-chain.js';
import { createCheckpointSigner } from '../src/audit/checkpoint.js';
import { hashRecord } from '../src/audit/record-hash.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { openStore } from '../src/store/open-store.js';
import {
  startScriptedUpstream,
  sendJson,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';
import {
  startTestGateway,
  TEST_RESOURCE,
  TESTER_ROLE,
  type TestGateway,
} from './support/gateway.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const STREAM = 'timeline-gw';
const dir = mkdtempSync(join(tmpdir(), 'warden-audit-timeline-'));
const dbPath = join(dir, 'warden.db');
const configPath = join(dir, 'warden.yaml');
const hashKeyFile = join(dir, 'audit-hash.key');
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-11-25',
};
/** A tool name carrying a terminal escape (clear screen) and a right-to-left override. */
const HOSTILE_TOOL = 'echo\u001b[2J\u202e';

let upstream: ScriptedUpstream;
/** Request ids (x-request-id) of the calls made in before(). */
const ids = { ada: '', bob: '', failed: '', hostile: '' };
const traceId = randomBytes(16).toString('hex');
/** A time between the first gateway's records and everything after. */
let midpoint = '';

function gatewayConfig(): Record<string, unknown> {
  return {
    store: `sqlite:${dbPath}`,
    log: { level: 'silent' },
    upstreams: { fixture: { url: upstream.url } },
    agents: { 'test-agent': { roles: ['tester'] }, 'report-bot': { roles: ['analyst', 'reader'] } },
    roles: {
      tester: TESTER_ROLE,
      analyst: { grants: [{ tool: 'fixture.quarterly_report' }, { tool: 'fixture.late_report' }] },
    },
    audit: { stream: STREAM, hash_key_file: hashKeyFile, checkpoint_every: 4 },
  };
}

async function rpc(
  gateway: TestGateway,
  body: Record<string, unknown>,
  headers: Record<string, string>,
): Promise<{ status: number; requestId: string; session: string }> {
  const response = await fetch(gateway.endpoint('fixture'), {
    method: 'POST',
    headers: { ...HEADERS, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', ...body }),
  });
  await response.text();
  return {
    status: response.status,
    requestId: response.headers.get('x-request-id') ?? '',
    session: response.headers.get('mcp-session-id') ?? '',
  };
}

/** Opens a session as the agent (and user) and returns a function calling one tool in it. */
async function connect(
  gateway: TestGateway,
  as: { agent?: string; user?: string },
): Promise<(name: string, args: unknown, extra?: Record<string, string>) => Promise<string>> {
  const auth = await gateway.authHeaders(as);
  const init = await rpc(
    gateway,
    {
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'timeline-test', version: '1' },
      },
    },
    auth,
  );
  assert.equal(init.status, 200);
  let id = 2;
  return async (name, args, extra = {}) => {
    const call = await rpc(
      gateway,
      { id: id++, method: 'tools/call', params: { name, arguments: args } },
      { ...auth, 'mcp-session-id': init.session, ...extra },
    );
    assert.equal(call.status, 200);
    assert.match(call.requestId, /^[0-9a-f-]{36}$/);
    return call.requestId;
  };
}

/** Waits (bounded) until every call's outcome record is committed: they are written after the reply. */
async function waitForRecords(count: (records: AuditRecord[]) => boolean): Promise<void> {
  const store = await openStore(`sqlite:${dbPath}`);
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (count(await store.audit.query({ limit: 10_000 }))) return;
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    throw new Error('the audit records did not arrive');
  } finally {
    await store.close();
  }
}

interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function audit(...args: string[]): Promise<CliResult> {
  return runCli(['audit', ...args, '--config', configPath]);
}

function jsonLines(text: string): AuditRecord[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as AuditRecord);
}

before(async () => {
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  upstream = await startScriptedUpstream();
  upstream.tools = ['echo', 'explode', HOSTILE_TOOL, 'quarterly_report', 'late_report'];
  upstream.intercept = (message, _request, response) => {
    if (message?.method !== 'tools/call' || message.params?.['name'] !== 'explode') return false;
    sendJson(response, 200, {
      jsonrpc: '2.0',
      id: message.id,
      error: { code: -32050, message: 'the tool blew up' },
    });
    return true;
  };
  writeFileSync(
    configPath,
    [
      `store: ${JSON.stringify(`sqlite:${dbPath}`)}`,
      `auth: { resource: ${TEST_RESOURCE}, issuers: [{ builtin: {} }] }`,
      'agents: { test-agent: { roles: [tester] } }',
      'roles: { tester: { trusted: true, grants: [{ tool: "*" }] } }',
      `upstreams: { fixture: { url: ${JSON.stringify(upstream.url)} } }`,
      `audit: { stream: ${STREAM}, hash_key_file: ${JSON.stringify(hashKeyFile)} }`,
      '',
    ].join('\n'),
  );

  const gateway = await startTestGateway(gatewayConfig());
  try {
    const ada = await connect(gateway, { user: 'ada@example.com' });
    ids.ada = await ada(
      'echo',
      { text: 'hello ada', api_key: 'sk-live-0123456789abcdef0123456789' },
      {
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        'x-agent-model': 'claude-test-model',
      },
    );
    ids.failed = await ada('explode', { level: 9 });
    ids.hostile = await ada(HOSTILE_TOOL, {});
    const bob = await connect(gateway, { agent: 'report-bot', user: 'bob@example.com' });
    ids.bob = await bob('quarterly_report', { quarter: 'Q1' });
    const refused = await fetch(gateway.endpoint('fixture'), {
      method: 'POST',
      headers: { ...HEADERS, authorization: 'Bearer not.a.token' },
      body: '{}',
    });
    assert.equal(refused.status, 401);
    await refused.text();
    await waitForRecords(
      (records) =>
        records.filter((record) => ['call.result', 'call.error'].includes(record.event)).length >=
          6 && records.some((record) => record.event === 'auth.failed'),
    );
  } finally {
    await gateway.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  midpoint = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 20));
});

after(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('query --agent narrows to that agent: its decisions and results, nobody else', async () => {
  const { code, stdout, stderr } = await audit(
    'query',
    '--agent',
    'report-bot',
    '--format',
    'jsonl',
  );
  assert.equal(code, 0, stderr);
  const records = jsonLines(stdout);
  assert.ok(records.length >= 3, stdout);
  assert.ok(records.every((record) => record.agent === 'report-bot'));
  assert.ok(
    records.some((record) => record.requestId === ids.bob && record.event === 'call.result'),
  );
  assert.ok(!records.some((record) => record.requestId === ids.ada));
});

test('query --tool with --event finds the one decision on that tool', async () => {
  const { code, stdout } = await audit(
    'query',
    '--tool',
    'echo',
    '--event',
    'call.allowed',
    '--format',
    'jsonl',
  );
  assert.equal(code, 0);
  const records = jsonLines(stdout);
  assert.deepEqual(
    records.map((record) => [record.event, record.requestId, record.tool]),
    [['call.allowed', ids.ada, 'echo']],
  );
});

test('query --request gives the records of one call, in order; --role and --effect narrow too', async () => {
  const [byRequest, byRole, allowedForAda, failures] = (
    await Promise.all([
      audit('query', '--request', ids.ada, '--format', 'jsonl'),
      audit('query', '--role', 'analyst', '--format', 'jsonl'),
      audit(
        'query',
        '--effect',
        'allow',
        '--user',
        'ada@example.com',
        '--since',
        '1h',
        '--format',
        'jsonl',
      ),
      audit('query', '--event', 'auth.failed', '--format', 'jsonl'),
    ])
  ).map((run) => jsonLines(run.stdout)) as [
    AuditRecord[],
    AuditRecord[],
    AuditRecord[],
    AuditRecord[],
  ];
  assert.deepEqual(
    byRequest.map((record) => record.event),
    ['call.allowed', 'call.result'],
  );
  assert.ok(byRequest.every((record) => record.requestId === ids.ada));
  assert.ok(byRole.length > 0 && byRole.every((record) => record.agent === 'report-bot'));
  assert.ok(allowedForAda.length >= 4, 'initialize and three tool calls');
  assert.ok(
    allowedForAda.every(
      (record) => record.decision?.effect === 'allow' && record.user === 'ada@example.com',
    ),
  );
  assert.ok(failures.length >= 1);
  assert.ok(failures.every((record) => record.errorCode === 'WARDEN_INVALID_TOKEN'));
});

test('JSONL prints each record exactly as stored: every line still matches its own hash', async () => {
  const { stdout } = await audit('query', '--format', 'jsonl');
  const lines = stdout.split('\n').filter((line) => line !== '');
  assert.ok(lines.length >= 12);
  for (const line of lines) {
    const record = JSON.parse(line) as AuditRecord;
    assert.equal(hashRecord(record), record.hash, line);
  }
});

test('the table is a readable timeline: who, what, the decision, latency, error code', async () => {
  const [{ code, stdout }, none] = await Promise.all([
    audit('query', '--agent', 'test-agent', '--since', '1h'),
    audit('query', '--until', '2000-01-01'),
  ]);
  assert.equal(code, 0);
  const [header, ...rows] = stdout.trimEnd().split('\n');
  assert.match(
    header ?? '',
    /^TIME\s+EVENT\s+REQUEST\s+USER\s+AGENT\s+TOOL\s+DECISION\s+LATENCY\s+ERROR$/,
  );
  const decision = rows.find(
    (row) => row.includes('call.allowed') && row.includes(ids.ada.slice(0, 8)),
  );
  assert.match(decision ?? '', /ada@example\.com\s+test-agent\s+echo\s+allow/);
  const error = rows.find((row) => row.includes('call.error'));
  assert.match(error ?? '', /\d+ ms\s+-32050$/);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /no audit records match/);
});

test("a caller cannot reach the investigator's terminal: escape sequences are printed inert", async () => {
  const outputs = await Promise.all([
    audit('query', '--request', ids.hostile),
    audit('show', ids.hostile),
  ]);
  for (const { stdout } of outputs) {
    assert.ok(!stdout.includes('\u001b') && !stdout.includes('\u202e'), 'no raw escape printed');
    assert.match(stdout, /echo\\u001b\[2J\\u202e/);
  }
});

test('usage mistakes exit 2: an unknown event, a bad time, a bad limit or format', async () => {
  const mistakes = [
    ['query', '--event', 'call.sneaky'],
    ['query', '--since', 'yesterday'],
    ['query', '--since', '2026-01-01T10:00'],
    ['query', '--limit', '0'],
    ['query', '--format', 'xml'],
    ['tail', '--interval', '1ms'],
  ];
  const runs = await Promise.all(mistakes.map((args) => audit(...args)));
  runs.forEach(({ code, stderr }, index) =>
    assert.equal(code, 2, `${mistakes[index]?.join(' ')}: ${stderr}`),
  );
});

test('show tells the whole story of one call, in order', async () => {
  const { code, stdout, stderr } = await audit('show', ids.ada);
  assert.equal(code, 0, stderr);
  for (const expected of [
    `Request ${ids.ada}`,
    `trace id        ${traceId}`,
    'user            ada@example.com',
    'agent           test-agent',
    'roles           tester',
    'model           claude-test-model (declared by the client)',
    'upstream        fixture',
    'method          tools/call',
    'tool            echo',
    '{"api_key":"[redacted]","text":"hello ada"}',
    'arguments hash  ',
    'ALLOW, recorded before forwarding',
    'because: grant tester/tool/* allows it',
    'policies: tester/tool/*',
    'answered after ',
    'result hash ',
    'Outcome: answered successfully in ',
  ]) {
    assert.ok(stdout.includes(expected), `missing "${expected}" in:\n${stdout}`);
  }
  assert.ok(stdout.indexOf('call.allowed') < stdout.indexOf('call.result'), 'decision first');
  assert.doesNotMatch(stdout, /sk-live/, 'the secret never reaches the story');
});

test('show tells how a failed call ended; an unknown request id exits 1', async () => {
  const unknownId = '00000000-0000-4000-8000-000000000000';
  const [failed, unknown] = await Promise.all([
    audit('show', ids.failed),
    audit('show', unknownId),
  ]);
  assert.equal(failed.code, 0);
  assert.match(failed.stdout, /failed after \d+ ms: error code -32050/);
  assert.match(failed.stdout, /message: the tool blew up/);
  assert.match(failed.stdout, /Outcome: failed with -32050/);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stdout, '');
  assert.match(unknown.stderr, new RegExp(`no audit record has request id "${unknownId}"`));
});

test('show tells the story of a denial and of an approval, as the policy and approval stages record them', async () => {
  const store = await openStore(`sqlite:${dbPath}`);
  try {
    const key = await store.audit.signingKey();
    assert.ok(key);
    const chain = createAuditChain({
      repository: store.audit,
      stream: 'policy-sim',
      signer: createCheckpointSigner(key),
    });
    const time = () => new Date().toISOString();
    const call = {
      agent: 'report-bot',
      user: 'bob@example.com',
      roles: ['analyst'],
      upstream: 'fixture',
      method: 'tools/call',
      tool: 'wire_money',
    };
    await chain.record({
      ...call,
      event: 'call.denied',
      time: time(),
      requestId: 'denied-1',
      arguments: { amount: 50_000 },
      decision: {
        effect: 'deny',
        reasons: ['wire_money is not granted to analyst'],
        policies: ['finance-only'],
      },
    });
    const approval = { id: 'apr-7', argumentsHash: 'h-approved' };
    await chain.record({
      ...call,
      event: 'call.allowed',
      time: time(),
      requestId: 'approved-1',
      arguments: { amount: 1500 },
      argumentsHash: 'h-approved',
      decision: {
        effect: 'approval_required',
        reasons: ['payments above 1000 EUR need a finance approver'],
        policies: ['payment-approvals'],
      },
    });
    await chain.record({
      ...call,
      event: 'approval.requested',
      time: time(),
      requestId: 'approved-1',
      approval,
    });
    await chain.record({
      ...call,
      event: 'approval.granted',
      time: time(),
      requestId: 'approved-1',
      approval: { ...approval, approvers: ['carol@example.com'], decidedAt: time() },
    });
    await chain.record({
      ...call,
      event: 'call.result',
      time: time(),
      requestId: 'approved-1',
      latencyMs: 3200,
      result: { isError: false, size: 42, hash: 'r-hash' },
    });
    await chain.close();
  } finally {
    await store.close();
  }
  const [denied, approved] = await Promise.all([
    audit('show', 'denied-1'),
    audit('show', 'approved-1'),
  ]);
  assert.equal(denied.code, 0, denied.stderr);
  assert.match(denied.stdout, /call\.denied\s+DENY, not forwarded/);
  assert.match(denied.stdout, /because: wire_money is not granted to analyst/);
  assert.match(denied.stdout, /policies: finance-only/);
  assert.match(denied.stdout, /Outcome: denied; the call never reached the upstream/);
  assert.equal(approved.code, 0, approved.stderr);
  const steps = ['call.allowed', 'approval.requested', 'approval.granted', 'call.result'].map(
    (event) => approved.stdout.indexOf(`  ${event} `),
  );
  assert.deepEqual(
    [...steps].sort((a, b) => a - b),
    steps,
    'told in order',
  );
  assert.ok(steps.every((index) => index > 0));
  assert.match(approved.stdout, /APPROVAL REQUIRED, recorded before forwarding/);
  assert.match(approved.stdout, /approval requested \(approval apr-7\)/);
  assert.match(approved.stdout, /approved by carol@example\.com at \S+ \(approval apr-7\)/);
  assert.match(approved.stdout, /for arguments hash h-approved/);
  assert.match(approved.stdout, /Outcome: answered successfully in 3200 ms/);
});

test('tail prints the last records of the log', async () => {
  const [query, tail, table] = await Promise.all([
    audit('query', '--format', 'jsonl'),
    audit('tail', '-n', '3', '--format', 'jsonl'),
    audit('tail', '-n', '2'),
  ]);
  assert.equal(tail.code, 0);
  assert.deepEqual(
    jsonLines(tail.stdout).map((record) => record.seq),
    jsonLines(query.stdout)
      .slice(-3)
      .map((record) => record.seq),
  );
  assert.equal(table.stdout.trimEnd().split('\n').length, 3, 'a header and two rows');
});

test('tail --follow prints records as a running gateway appends them, until Ctrl-C', async () => {
  const child = spawn(
    process.execPath,
    [CLI, 'audit', 'tail', '-n', '0', '--follow', '--interval', '100ms', '--config', configPath],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const waitFor = async (pattern: RegExp): Promise<void> => {
    for (let waited = 0; !pattern.test(output); waited += 50) {
      if (waited > 15_000 || child.exitCode !== null) {
        throw new Error(`no ${pattern} in:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    await waitFor(/^TIME\s+EVENT/m);
    const gateway = await startTestGateway(gatewayConfig());
    try {
      const bob = await connect(gateway, { agent: 'report-bot', user: 'bob@example.com' });
      await bob('late_report', { quarter: 'Q2' });
      await waitFor(/call\.result .*report-bot\s+late_report/);
    } finally {
      await gateway.close();
    }
    assert.match(output, /config\.loaded/);
    assert.match(output, /call\.allowed .*bob@example\.com\s+report-bot\s+late_report\s+allow/);
    child.kill('SIGINT');
    assert.equal(await exited, 0, output);
  } finally {
    child.kill('SIGKILL');
  }
});

test('archive refuses (exit 2, nothing pruned) when the archive cannot be written or exists', async () => {
  const existing = join(dir, 'existing.jsonl');
  writeFileSync(existing, 'keep me\n');
  const [unwritable, taken] = await Promise.all([
    audit('archive', '--before', midpoint, '--out', join(dir, 'no-such-dir', 'archive.jsonl')),
    audit('archive', '--before', midpoint, '--out', existing),
  ]);
  assert.equal(unwritable.code, 2, unwritable.stderr);
  assert.match(unwritable.stderr, /cannot write the archive .*ENOENT; nothing was pruned/);
  assert.equal(taken.code, 2, taken.stderr);
  assert.match(taken.stderr, /exists already: an archive is never overwritten/);
  assert.equal(readFileSync(existing, 'utf8'), 'keep me\n');
  const records = jsonLines((await audit('query', '--format', 'jsonl')).stdout);
  assert.equal(records[0]?.seq, 1, 'nothing was pruned');
  assert.ok(!records.some((record) => record.event === 'audit.pruned'));
});

test('archive exports the old records, prunes them, and both the rest and the archive verify', async () => {
  mkdirSync(join(dir, 'archives'));
  const archive = join(dir, 'archives', 'first.jsonl');
  const run = await audit('archive', '--before', midpoint, '--out', archive);
  assert.equal(run.code, 0, run.stderr);
  const through = Number(
    new RegExp(`stream ${STREAM}: archived seq 1–(\\d+)`).exec(run.stdout)?.[1],
  );
  assert.doesNotMatch(run.stdout, /policy-sim/, 'a stream with no record old enough is left alone');
  assert.ok(through >= 12, run.stdout);

  // The store keeps a marker in place of the archived prefix, and the later records.
  const keyPath = join(dir, 'audit.pub.pem');
  const [queried, shown, verified, key] = await Promise.all([
    audit('query', '--format', 'jsonl'),
    audit('show', ids.ada),
    audit('verify'),
    audit('public-key'),
  ]);
  const remaining = jsonLines(queried.stdout).filter((record) => record.stream === STREAM);
  assert.equal(remaining.find((record) => record.event === 'audit.pruned')?.seq, through);
  assert.ok(remaining.every((record) => record.seq >= through));
  assert.ok(
    remaining.some((record) => record.tool === 'late_report'),
    'newer records stay',
  );
  assert.equal(shown.code, 1, 'the archived call is gone from the store');
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, new RegExp(`seq 1–${through} archived`));
  writeFileSync(keyPath, key.stdout);

  // The archive verifies offline with the public key alone; tampering with it shows.
  const text = readFileSync(archive, 'utf8');
  assert.ok(text.includes(ids.ada), 'the archive holds the old calls');
  const tampered = join(dir, 'tampered.jsonl');
  writeFileSync(tampered, text.replace('hello ada', 'hello eve'));
  const [offline, caught] = await Promise.all([
    runCli(['audit', 'verify', '--file', archive, '--public-key', keyPath]),
    runCli(['audit', 'verify', '--file', tampered, '--public-key', keyPath]),
  ]);
  assert.equal(offline.code, 0, offline.stdout + offline.stderr);
  assert.match(offline.stdout, new RegExp(`intact, ${through} records \\(seq 1–${through}\\)`));
  assert.equal(caught.code, 1, caught.stdout);
  assert.match(caught.stdout, /NOT INTACT at seq \d+: hash_mismatch/);

  // A second archive continues from the marker; it and the store still verify.
  const second = join(dir, 'archives', 'second.jsonl');
  const again = await audit('archive', '--before', new Date().toISOString(), '--out', second);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`stream ${STREAM}: archived seq ${through}–\\d+`));
  assert.match(again.stdout, /stream policy-sim: archived seq 1–5/);
  const none = join(dir, 'none.jsonl');
  const [rest, secondOffline, nothing] = await Promise.all([
    audit('verify'),
    runCli(['audit', 'verify', '--file', second, '--public-key', keyPath]),
    audit('archive', '--before', '2000-01-01', '--out', none),
  ]);
  assert.equal(rest.code, 0, rest.stdout);
  assert.equal(secondOffline.code, 0, secondOffline.stdout + secondOffline.stderr);
  assert.equal(nothing.code, 0);
  assert.match(nothing.stderr, /nothing to archive/);
  assert.ok(!existsSync(none));
});
