/**
 * `warden audit` as the README shows it (issue 12, point 5), from the built command in a folder
 * holding `warden.yaml`: `show` takes the short request ids `tail` and `query` print (and names
 * the candidates when one is ambiguous), `export` without `--out` writes to stdout, and `query`
 * shows the newest records unless told `--oldest`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { recordOnce } from '../src/audit/record-once.js';
import type { AuditEntry, AuditRecord } from '../src/domain/audit-record.js';
import { openStore } from '../src/store/open-store.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const T0 = Date.parse('2026-03-02T10:00:00.000Z');

/** Its first 8 characters are no other id's. */
const UNIQUE = '3f2a9c1e-1111-4000-8000-000000000001';
/** Two ids that `tail` prints alike: 7b7b7b7b. */
const TWINS = ['7b7b7b7b-2222-4000-8000-000000000002', '7b7b7b7b-3333-4000-8000-000000000003'];
/** Six calls to one tool, a minute apart, oldest first. */
const REPORTS = [1, 2, 3, 4, 5, 6].map((n) => `c0ffee0${n}-4444-4000-8000-00000000000${n}`);

let dir: string;

function entry(requestId: string, minute: number, tool: string): AuditEntry {
  return {
    event: 'call.allowed',
    time: new Date(T0 + minute * 60_000).toISOString(),
    requestId,
    user: 'ada@example.com',
    agent: 'report-bot',
    roles: ['analyst'],
    upstream: 'fixture',
    method: 'tools/call',
    tool,
    decision: { effect: 'allow', reasons: ['analysts read reports'], policies: ['p-read'] },
  };
}

before(async () => {
  assert.ok(existsSync(CLI), 'dist/cli/main.js exists (run npm run build)');
  dir = mkdtempSync(join(tmpdir(), 'warden-audit-edges-'));
  const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  // warden.yaml, the default: the README's commands run here exactly as written.
  writeFileSync(
    join(dir, 'warden.yaml'),
    [
      `store: ${storeUrl}`,
      'auth: { resource: "https://warden.example.com/mcp", issuers: [{ builtin: {} }] }',
      'agents: { report-bot: { roles: [analyst] } }',
      'roles: { analyst: { grants: [{ tool: fixture.report }] } }',
      'upstreams: { fixture: { url: "http://127.0.0.1:9/mcp" } }',
      `audit: { hash_key_file: ${join(dir, 'hash.key')} }`,
      '',
    ].join('\n'),
  );
  const store = await openStore(storeUrl);
  try {
    await recordOnce(store.audit, entry(UNIQUE, 0, 'lookup'));
    for (const [index, id] of TWINS.entries()) {
      await recordOnce(store.audit, entry(id, index + 1, 'lookup'));
    }
    for (const [index, id] of REPORTS.entries()) {
      await recordOnce(store.audit, entry(id, 10 + index, 'report'));
    }
  } finally {
    await store.close();
  }
});

after(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function warden(...args: string[]): { status: number | null; out: string; err: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, out: result.stdout, err: result.stderr };
}

function jsonLines(text: string): AuditRecord[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as AuditRecord);
}

test('audit show takes the 8-character id that audit tail prints', () => {
  const tail = warden('audit', 'tail', '-n', '1');
  assert.equal(tail.status, 0, tail.err);
  const shortId = /\b(c0ffee06)\b/.exec(tail.out)?.[1];
  assert.equal(shortId, REPORTS[5]?.slice(0, 8), tail.out);
  const shown = warden('audit', 'show', shortId ?? '');
  assert.equal(shown.status, 0, shown.err);
  assert.ok(shown.out.includes(REPORTS[5] ?? '?'), shown.out);
  const unique = warden('audit', 'show', UNIQUE.slice(0, 8));
  assert.equal(unique.status, 0, unique.err);
  assert.ok(unique.out.includes(UNIQUE), unique.out);
});

test('an ambiguous short id is refused, naming every candidate; a longer one finds the call', () => {
  const ambiguous = warden('audit', 'show', '7b7b7b7b');
  assert.equal(ambiguous.status, 2, ambiguous.err);
  assert.equal(ambiguous.out, '');
  assert.match(ambiguous.err, /2 request ids start with 7b7b7b7b/);
  for (const id of TWINS) assert.ok(ambiguous.err.includes(id), ambiguous.err);
  assert.match(ambiguous.err, /give more of the id/);
  assert.doesNotMatch(ambiguous.err, /^\s+at /m, 'no stack trace');

  const longer = warden('audit', 'show', '7b7b7b7b-3333');
  assert.equal(longer.status, 0, longer.err);
  assert.ok(longer.out.includes(TWINS[1] ?? '?'));
  assert.ok(!longer.out.includes(TWINS[0] ?? '?'));

  const none = warden('audit', 'show', 'deadbeef');
  assert.equal(none.status, 1);
  assert.match(none.err, /no audit record has request id "deadbeef", nor one starting with it/);
});

test("the README's audit export example writes the export to stdout", () => {
  // README: `warden audit export --format jsonl|ocsf`, with no --out.
  const jsonl = warden('audit', 'export', '--format', 'jsonl');
  assert.equal(jsonl.status, 0, jsonl.err);
  assert.match(jsonl.err, /exported 9 records/);
  const exported = join(dir, 'stdout-export.jsonl');
  writeFileSync(exported, jsonl.out);
  const key = warden('audit', 'public-key');
  assert.equal(key.status, 0, key.err);
  writeFileSync(join(dir, 'audit.pub.pem'), key.out);
  const verified = warden('audit', 'verify', '--file', exported, '--public-key', 'audit.pub.pem');
  assert.equal(verified.status, 0, verified.out + verified.err);
  assert.match(verified.out, /audit log intact: 9 records/);

  const ocsf = warden('audit', 'export', '--format', 'ocsf');
  assert.equal(ocsf.status, 0, ocsf.err);
  const events = jsonLines(ocsf.out) as unknown as { class_uid: number }[];
  assert.ok(events.length >= 9 && events.every((event) => event.class_uid === 6003));
});

test('audit query shows the newest records by default, printed oldest first; --oldest the first', () => {
  const newest = warden('audit', 'query', '--tool', 'report', '--limit', '2', '--format', 'jsonl');
  assert.equal(newest.status, 0, newest.err);
  assert.deepEqual(
    jsonLines(newest.out).map((record) => record.requestId),
    REPORTS.slice(4),
  );
  assert.match(newest.err, /showing the newest 2 matching records/);

  const oldest = warden('audit', 'query', '--tool', 'report', '--limit', '2', '--oldest');
  assert.equal(oldest.status, 0, oldest.err);
  const shown = oldest.out.split('\n').filter((line) => /c0ffee0\d/.test(line));
  assert.deepEqual(
    shown.map((line) => /c0ffee0\d/.exec(line)?.[0]),
    REPORTS.slice(0, 2).map((id) => id.slice(0, 8)),
  );

  const all = warden('audit', 'query', '--format', 'jsonl');
  assert.equal(jsonLines(all.out).length, 9, 'under the limit, every record, oldest first');
  assert.equal(jsonLines(all.out)[0]?.requestId, UNIQUE);

  const help = warden('audit', 'query', '--help');
  assert.match(help.out, /newest/);
  assert.match(help.out, /--oldest/);
});
