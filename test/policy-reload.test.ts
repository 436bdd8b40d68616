// Policy reload: a config whose policy compiles replaces the running policy at once; one that
// does not compile is refused and the running policy stays in force (nothing half-applied).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { startTestGateway, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import { answerIn, openSession, postMcp } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

let upstream: ScriptedUpstream;
let gateway: TestGateway;
const dir = mkdtempSync(join(tmpdir(), 'warden-reload-'));
// The reader holds a grant on the upstream (a caller with none may not even open a session
// there), but not for echo.
const NOT_ECHO = [{ tool: 'fixture.status' }];

function rawConfig(roles: Record<string, unknown>, files: string[] = []): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    store: 'sqlite::memory:',
    auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
    agents: { 'test-agent': { roles: ['reader'] } },
    upstreams: { fixture: { url: upstream.url } },
    roles,
    policy: { files },
  };
}

before(async () => {
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    log: { level: 'silent' },
    upstreams: { fixture: { url: upstream.url } },
    agents: { 'test-agent': { roles: ['reader'] } },
    roles: { reader: { grants: NOT_ECHO } },
  });
});

after(async () => {
  await gateway.close();
  await upstream.close();
});

async function callEcho(): Promise<{ error?: { data?: { code?: string } }; result?: unknown }> {
  const headers = await gateway.authHeaders();
  const sessionId = await openSession(gateway.endpoint('fixture'), headers);
  const reply = await postMcp(
    gateway.endpoint('fixture'),
    { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: {} } },
    { sessionId, headers },
  );
  return answerIn(reply, 7) as never;
}

test('a reload that grants a tool puts it in force on the next call', async () => {
  assert.equal((await callEcho()).error?.data?.code, 'WARDEN_POLICY_DENIED');
  const outcome = await gateway.reloadPolicy(
    parseConfig(rawConfig({ reader: { grants: [{ tool: 'fixture.echo' }] } }), 'reload'),
  );
  assert.equal(outcome.ok, true);
  assert.ok((await callEcho()).result, 'the reloaded grant allows the call');
});

test('a reload with a broken Cedar file is refused and the running policy stays', async () => {
  const broken = join(dir, 'broken.cedar');
  writeFileSync(broken, 'forbid (principal, action, resource) when { context.now > };\n');
  const outcome = await gateway.reloadPolicy(
    parseConfig(rawConfig({ reader: { grants: NOT_ECHO } }, [broken]), 'reload'),
  );
  assert.equal(outcome.ok, false);
  assert.ok(!outcome.ok && outcome.problems.some((problem) => problem.includes('broken.cedar:1')));
  // Still the policy of the last good reload: echo is granted, and the broken file's rules are not.
  assert.ok((await callEcho()).result);
});

test('a reload that would revoke a grant takes effect as soon as it is accepted', async () => {
  const outcome = await gateway.reloadPolicy(
    parseConfig(rawConfig({ reader: { grants: NOT_ECHO } }), 'reload'),
  );
  assert.equal(outcome.ok, true);
  assert.equal((await callEcho()).error?.data?.code, 'WARDEN_POLICY_DENIED');
});
