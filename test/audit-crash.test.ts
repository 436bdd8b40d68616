/**
 * The ordering guarantee under a crash: `warden serve` (a real process, SQLite file store) takes a
 * bounded concurrent load of tool calls and is killed with SIGKILL in the middle of it, at the
 * moment the upstream receives a call. Whatever was in flight, every call the upstream saw must
 * have its decision record in the store (it is committed before forwarding), and the chain must
 * still verify; a restarted gateway continues the same chain.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  readStreamRecords,
  repositoryVerifyInput,
  snapshotStreams,
} from '../src/audit/read-stream.js';
import { verifyAuditLog, type VerifyReport } from '../src/audit/verify.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import pg from 'pg';
import { openStore } from '../src/store/open-store.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const STREAM = 'crash-gw';
const CALLS = 300;
const CONCURRENCY = 8;
/** The gateway dies when the upstream receives this tool call: about halfway through the load. */
const KILL_AT = 150;
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-11-25',
};

const dir = mkdtempSync(join(tmpdir(), 'warden-audit-crash-'));
const dbPath = join(dir, 'warden.db');
const configPath = join(dir, 'warden.yaml');
let upstream: ScriptedUpstream;
const children: ChildProcessWithoutNullStreams[] = [];

interface Gateway {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** Starts `warden serve` from the built package and waits for the URL it listens on. */
async function startServe(): Promise<Gateway> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath], {
    cwd: dir,
    stdio: 'pipe',
  });
  children.push(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  for (let waited = 0; waited < 20_000; waited += 50) {
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1];
    if (url) return { child, url, exited, output: () => output };
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`warden serve did not start:\n${output}`);
}

async function post(
  url: string,
  body: Record<string, unknown>,
  headers: Record<string, string>,
): Promise<Response> {
  return fetch(`${url}/mcp/counter`, {
    method: 'POST',
    headers: { ...HEADERS, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', ...body }),
    signal: AbortSignal.timeout(10_000),
  });
}

async function openSession(url: string, auth: Record<string, string>): Promise<string> {
  const init = await post(
    url,
    {
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'crash-test', version: '1' },
      },
    },
    auth,
  );
  await init.text();
  assert.equal(init.status, 200);
  return init.headers.get('mcp-session-id') ?? '';
}

/** Every record of the stream, in seq order, and the verification of the whole store. */
async function readStore(
  storeUrl: string,
): Promise<{ records: AuditRecord[]; report: VerifyReport }> {
  const store = await openStore(storeUrl);
  try {
    const records: AuditRecord[] = [];
    for await (const record of readStreamRecords(store.audit, STREAM)) records.push(record);
    const key = await store.audit.signingKey();
    assert.ok(key, 'the gateway created the audit key');
    const report = await verifyAuditLog({
      streams: repositoryVerifyInput(store.audit, await snapshotStreams(store.audit)),
      publicKeyPem: key.publicKeyPem,
    });
    return { records, report };
  } finally {
    await store.close();
  }
}

/** The unique argument of a tools/call message, as the test sent it. */
function callTag(args: unknown): string | undefined {
  const tag = (args as { tag?: unknown } | undefined)?.tag;
  return typeof tag === 'string' ? tag : undefined;
}

let token = '';
const POSTGRES = process.env['WARDEN_TEST_POSTGRES_URL'] ?? 'postgres://root@127.0.0.1:5432/test';
const PG_SCHEMA = `warden_crash_${randomBytes(4).toString('hex')}`;

before(async () => {
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  upstream = await startScriptedUpstream();
});

/** Points the config at a store and gets the load's token from that store's built-in issuer. */
async function prepare(storeUrl: string): Promise<void> {
  writeFileSync(
    configPath,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      `store: ${JSON.stringify(storeUrl)}`,
      'auth: { resource: https://warden.crash.test/mcp, issuers: [{ builtin: {} }] }',
      'agents: { load-bot: { roles: [tester] } }',
      'roles: { tester: { trusted: true, grants: [{ tool: "*" }] } }',
      `upstreams: { counter: { url: ${JSON.stringify(upstream.url)} } }`,
      `audit: { stream: ${STREAM}, checkpoint_every: 40, hash_key_file: ${JSON.stringify(join(dir, 'audit-hash.key'))} }`,
      '',
    ].join('\n'),
  );
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      CLI,
      'token',
      'issue',
      '--config',
      configPath,
      '--agent',
      'load-bot',
      '--user',
      'ops@example.com',
    ],
    { cwd: dir, timeout: 15_000 },
  );
  token = stdout.trim();
}

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
  const client = new pg.Client({ connectionString: POSTGRES });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`);
  await client.end();
});

for (const [backend, storeUrl] of [
  ['SQLite', `sqlite:${dbPath}`],
  ['PostgreSQL', `${POSTGRES}?schema=${PG_SCHEMA}`],
] as const)
  test(
    `SIGKILL in the middle of a load loses no decision record and breaks no link (${backend})`,
    { timeout: 60_000 },
    async (t) => {
      await prepare(storeUrl);
      const gateway = await startServe();
      const auth = { authorization: `Bearer ${token}` };
      const session = await openSession(gateway.url, auth);

      // The upstream counts the tool calls it receives and pulls the plug at the KILL_AT-th.
      const seen: { tag: string; traceparent: string }[] = [];
      upstream.intercept = (message, request) => {
        if (message?.method !== 'tools/call') return false;
        seen.push({
          tag: callTag(message.params?.['arguments']) ?? '(none)',
          traceparent: String(request.headers['traceparent']),
        });
        if (seen.length === KILL_AT) gateway.child.kill('SIGKILL');
        return false;
      };

      const answered = new Map<string, string>(); // tag → x-request-id
      const traceOf = new Map<string, string>(); // tag → trace id sent
      let next = 0;
      let failures = 0;
      const worker = async (): Promise<void> => {
        while (next < CALLS) {
          const index = next++;
          const tag = `call-${String(index).padStart(4, '0')}`;
          const traceId = randomBytes(16).toString('hex');
          traceOf.set(tag, traceId);
          try {
            const response = await post(
              gateway.url,
              { id: index + 1, method: 'tools/call', params: { name: 'echo', arguments: { tag } } },
              {
                ...auth,
                'mcp-session-id': session,
                traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
              },
            );
            const text = await response.text();
            // Refusals (the log unavailable as the gateway dies) are answered in band: no result.
            if (response.status === 200 && text.includes('"result"'))
              answered.set(tag, response.headers.get('x-request-id') ?? '');
          } catch {
            failures++; // the gateway is gone: this worker stops
            return;
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const exit = await gateway.exited;
      upstream.intercept = undefined;
      assert.equal(exit.signal, 'SIGKILL', 'the gateway was killed, not stopped');
      assert.ok(seen.length >= KILL_AT, `the upstream saw ${seen.length} calls`);
      assert.ok(failures > 0, 'the kill interrupted calls in flight');

      const { records, report } = await readStore(storeUrl);
      const decisions = new Map(
        records
          .filter((record) => record.event === 'call.allowed' && record.method === 'tools/call')
          .map((record) => [callTag(record.arguments) ?? '', record]),
      );
      const results = new Set(
        records
          .filter((record) => record.event === 'call.result')
          .map((record) => record.requestId ?? ''),
      );

      // Every call the upstream saw was decided, durably, before it was forwarded.
      const undecided = seen.filter(({ tag }) => !decisions.has(tag)).map(({ tag }) => tag);
      assert.deepEqual(undecided, [], 'calls the upstream saw without a decision record');
      for (const { tag, traceparent } of seen) {
        const decision = decisions.get(tag);
        assert.equal(decision?.traceId, traceOf.get(tag), `${tag}: the same trace`);
        assert.ok(traceparent.includes(decision?.traceId ?? '-'), `${tag}: trace passed upstream`);
      }
      for (const [tag, requestId] of answered) {
        assert.equal(decisions.get(tag)?.requestId, requestId, `${tag}: answered, so decided`);
      }

      // The chain is intact; only a tail after the last checkpoint may be unsealed.
      const stream = report.streams.find((candidate) => candidate.stream === STREAM);
      assert.ok(report.ok, JSON.stringify(report.streams));
      assert.equal(stream?.headSeq, records.at(-1)?.seq);
      assert.ok((stream?.lastCheckpointSeq ?? 0) > 0, 'checkpoints were signed under load');

      const answeredWithoutResult = [...answered.values()].filter((id) => !results.has(id)).length;
      t.diagnostic(
        `upstream saw ${seen.length} calls, client got ${answered.size} answers, ${decisions.size} decisions stored; ` +
          `${answeredWithoutResult} answered call(s) lost their call.result record; ` +
          `${records.length} records, ${stream?.unsealedRecords ?? 0} after the last checkpoint (seq ${stream?.lastCheckpointSeq})`,
      );

      // A restart continues the same chain after the crash, and seals it at shutdown.
      const restarted = await startServe();
      assert.ok(await openSession(restarted.url, auth), 'the restarted gateway records calls');
      restarted.child.kill('SIGTERM');
      assert.equal((await restarted.exited).code, 0, restarted.output());
      const afterRestart = await readStore(storeUrl);
      assert.ok(afterRestart.report.ok, JSON.stringify(afterRestart.report.streams));
      const sealed = afterRestart.report.streams.find((candidate) => candidate.stream === STREAM);
      assert.ok((sealed?.headSeq ?? 0) > (stream?.headSeq ?? 0), 'the chain continued');
      assert.equal(sealed?.unsealedRecords, 0, 'the shutdown checkpoint seals the head');
    },
  );
