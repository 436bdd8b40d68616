/**
 * One policy version across replicas: with `policy_source: store`, replicas take their policy and
 * agents from the bundles `warden policy push` stores. A push reaches every replica (PostgreSQL:
 * NOTIFY; SQLite: a poll), a bundle that does not load is refused with the loader's words and
 * changes nothing, a bundle one replica cannot load leaves that replica's policy in force, and
 * replicas that disagree (policy version, configuration file) are reported by /readyz and by the
 * status operation behind `warden policy status`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/domain/errors.js';
import { openOperatorSession, type OperatorSession } from '../src/gateway/operator-session.js';
import { startTestGateway, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import { answerIn, openSession, postMcp } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import {
  createSharedSchema,
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI without blocking this process's event loop (the replicas run in it). */
function warden(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { encoding: 'utf8', timeout: 30_000 },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

function show(run: Run): string {
  return `exit ${run.status}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

/** Generous for a loaded 2-core machine; a replica applies a push within about a second. */
const APPLY_BOUND_MS = 10_000;
const AGENT = 'test-agent';
/** The reader may use the upstream (status) but not echo, until a bundle grants it. */
const WITHOUT_ECHO = { reader: { grants: [{ tool: 'fixture.status' }] } };
const WITH_ECHO = { reader: { grants: [{ tool: 'fixture.status' }, { tool: 'fixture.echo' }] } };

let upstream: ScriptedUpstream;
const dir = mkdtempSync(join(tmpdir(), 'warden-policy-push-'));

before(async () => {
  upstream = await startScriptedUpstream();
  upstream.tools = ['echo', 'status'];
});
after(async () => {
  await upstream?.close();
});

/** A replica's warden.yaml as an object; `extra` stands for a differently written file. */
function replicaConfig(
  store: string,
  stream: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    log: { level: 'warn' },
    listen: { host: '127.0.0.1', port: 0 },
    store,
    auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
    audit: { stream, hash_key_file: join(dir, 'hash.key') },
    cluster: { heartbeat: '200ms' },
    upstreams: { fixture: { url: upstream.url } },
    agents: { [AGENT]: { roles: ['reader'] } },
    roles: WITHOUT_ECHO,
    policy_source: 'store',
    ...extra,
  };
}

function bundleText(roles: Record<string, unknown>): string {
  return stringify({ agents: { [AGENT]: { roles: ['reader'] } }, roles });
}

async function callEcho(gateway: TestGateway): Promise<'allowed' | string> {
  const headers = await gateway.authHeaders();
  const sessionId = await openSession(gateway.endpoint('fixture'), headers);
  const reply = await postMcp(
    gateway.endpoint('fixture'),
    { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: {} } },
    { sessionId, headers },
  );
  const answer = answerIn(reply, 7);
  if (answer.result !== undefined) return 'allowed';
  return String(answer.error?.data?.code ?? JSON.stringify(answer));
}

interface ReadyCluster {
  readonly replica: string;
  readonly replicas: readonly { id: string; alive: boolean; policyVersion: string }[];
  readonly problems: readonly string[];
}

async function readyCluster(gateway: TestGateway): Promise<ReadyCluster> {
  const response = await fetch(`${gateway.url}/readyz`);
  const body = (await response.json()) as { cluster: ReadyCluster };
  return body.cluster;
}

/** Polls `probe` until it holds; fails naming `what` when it has not within the bound. */
async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + APPLY_BOUND_MS;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) assert.fail(`not within ${APPLY_BOUND_MS} ms: ${what}`);
    await sleep(100);
  }
}

async function runsVersion(gateway: TestGateway, version: string): Promise<boolean> {
  const cluster = await readyCluster(gateway);
  return cluster.replicas.find((r) => r.id === cluster.replica)?.policyVersion === version;
}

async function operatorSession(raw: Record<string, unknown>): Promise<OperatorSession> {
  return openOperatorSession(parseConfig(raw, 'operator.yaml'));
}

describe('policy bundles on PostgreSQL (two replicas, one schema)', () => {
  const schema = uniqueName('policy_push').toLowerCase();
  let storeUrl: string;
  let r1: TestGateway;
  let r2: TestGateway;
  let operator: OperatorSession;
  let pushedVersion: string;

  before(async () => {
    storeUrl = await createSharedSchema(schema);
    r1 = await startTestGateway(replicaConfig(storeUrl, 'pg-r1'));
    r2 = await startTestGateway(replicaConfig(storeUrl, 'pg-r2'));
    operator = await operatorSession(replicaConfig(storeUrl, 'operator'));
  });
  after(async () => {
    await operator?.close();
    await r1?.close();
    await r2?.close();
  });

  test('with nothing pushed, each replica runs its file and says so', async () => {
    assert.equal(await callEcho(r1), 'WARDEN_POLICY_DENIED');
    assert.equal(await callEcho(r2), 'WARDEN_POLICY_DENIED');
    assert.ok(
      r1.logs.some((line) => /no policy bundle has been pushed yet/.test(String(line['msg']))),
      'the replica logs that it runs its own file',
    );
  });

  test('a pushed bundle is applied by both replicas, and a call denied before is allowed', async () => {
    const pushed = await operator.policy.pushPolicyBundle({
      text: bundleText(WITH_ECHO),
      file: 'bundle.yaml',
      by: 'tester@host',
    });
    assert.equal(pushed.created, true);
    assert.equal(pushed.bundle.id, 1);
    pushedVersion = pushed.bundle.policyVersion;
    // The version the CLI computed is the very string each replica reports: it is derived from
    // the compiled policy alone.
    await waitFor('both replicas report the pushed version', async () =>
      (await Promise.all([runsVersion(r1, pushedVersion), runsVersion(r2, pushedVersion)])).every(
        Boolean,
      ),
    );
    assert.equal(await callEcho(r1), 'allowed');
    assert.equal(await callEcho(r2), 'allowed');
    const records = await operator.audit.query({ event: 'policy.pushed' });
    assert.equal(records.length, 1);
    assert.equal(records[0]?.details?.['version'], pushedVersion);
    assert.equal(records[0]?.details?.['by'], 'tester@host');
  });

  test('the same content pushed again is a no-op that says so', async () => {
    // Other layout, same sections: the content hash is of what they say.
    const again = await operator.policy.pushPolicyBundle({
      text: `# re-pushed\n${bundleText(WITH_ECHO)}`,
      file: 'bundle.yaml',
      by: 'tester@host',
    });
    assert.equal(again.created, false);
    assert.equal(again.bundle.id, 1);
    assert.equal((await operator.audit.query({ event: 'policy.pushed' })).length, 1);
  });

  test('a bundle granting a tool of an unknown upstream is refused with the loader message, and nothing changes', async () => {
    await assert.rejects(
      operator.policy.pushPolicyBundle({
        text: bundleText({ reader: { grants: [{ tool: 'ghost.delete_everything' }] } }),
        file: 'evil.yaml',
        by: 'tester@host',
      }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.file === 'evil.yaml' &&
        error.issues.some((issue) => /ghost/.test(issue) && /upstream/.test(issue)),
    );
    await assert.rejects(
      operator.policy.pushPolicyBundle({
        text: 'agents: {}\nroles: [not, a, mapping]\n',
        file: 'broken.yaml',
        by: 'tester@host',
      }),
      ConfigError,
    );
    const status = await operator.policy.readPolicyStatus();
    assert.deepEqual(
      status.bundles.map((b) => b.id),
      [1],
      'no refused bundle was stored',
    );
    const rejected = await operator.audit.query({ event: 'policy.rejected' });
    assert.equal(rejected.length, 2, 'each refusal is recorded');
    assert.equal(await callEcho(r1), 'allowed');
    assert.ok(await runsVersion(r2, pushedVersion));
  });

  test('a bundle with Cedar files is refused: each replica would read its own copy', async () => {
    await assert.rejects(
      operator.policy.pushPolicyBundle({
        text: `${bundleText(WITH_ECHO)}policy:\n  files: [rules.cedar]\n`,
        file: 'files.yaml',
        by: 'tester@host',
      }),
      (error: unknown) =>
        error instanceof ConfigError && error.issues.some((issue) => /policy\.files/.test(issue)),
    );
  });

  test('SIGHUP (a reload) on a store-sourced replica re-reads the store, not the given file', async () => {
    const fileSaysDeny = parseConfig(replicaConfig(storeUrl, 'pg-r1'), 'warden.yaml');
    const outcome = await r1.reloadPolicy(fileSaysDeny);
    assert.equal(outcome.ok, true);
    assert.equal(outcome.ok && outcome.version, pushedVersion);
    assert.equal(await callEcho(r1), 'allowed');
  });

  test('a bundle one replica cannot load leaves its policy in force; the disagreement is reported', async () => {
    // r3 is started from another file: it has a second upstream the others lack.
    const otherFile = replicaConfig(storeUrl, 'pg-r3', {
      upstreams: { fixture: { url: upstream.url }, extra: { url: upstream.url } },
    });
    const r3 = await startTestGateway(otherFile);
    try {
      await waitFor('r3 runs the pushed bundle', () => runsVersion(r3, pushedVersion));
      await waitFor('/readyz reports the different configuration file', async () =>
        (await readyCluster(r1)).problems.some((p) => /configuration file/.test(p)),
      );
      // Checked against r3's file, the bundle loads; r1 and r2 have no upstream "extra".
      const extraOperator = await operatorSession(otherFile);
      let onlyR3: string;
      try {
        const pushed = await extraOperator.policy.pushPolicyBundle({
          text: bundleText({
            reader: { grants: [...WITH_ECHO.reader.grants, { tool: 'extra.echo' }] },
          }),
          file: 'extra.yaml',
          by: 'tester@host',
        });
        onlyR3 = pushed.bundle.policyVersion;
      } finally {
        await extraOperator.close();
      }
      await waitFor('r3 applies bundle #2', () => runsVersion(r3, onlyR3));
      await waitFor('r1 and r2 record that they could not load bundle #2', async () => {
        const rejected = await operator.audit.query({ event: 'policy.rejected' });
        const byReplica = rejected.filter((record) => record.details?.['bundle'] === 2);
        return new Set(byReplica.map((record) => record.stream)).size === 2;
      });
      assert.ok(await runsVersion(r1, pushedVersion), 'r1 keeps the policy in force');
      assert.ok(await runsVersion(r2, pushedVersion), 'r2 keeps the policy in force');
      assert.equal(await callEcho(r1), 'allowed');
      await waitFor('/readyz reports the policy versions differ', async () =>
        (await readyCluster(r2)).problems.some((p) => /policy version/.test(p)),
      );
      const status = await operator.policy.readPolicyStatus();
      const live = status.replicas.filter((replica) => replica.alive);
      assert.deepEqual(live.map((replica) => replica.id).sort(), ['pg-r1', 'pg-r2', 'pg-r3']);
      assert.equal(live.find((replica) => replica.id === 'pg-r3')?.bundle, 2);
      assert.equal(live.find((replica) => replica.id === 'pg-r1')?.bundle, 1);
      assert.ok(status.problems.some((p) => /disagree on the policy version/.test(p)));
      assert.ok(status.problems.some((p) => /disagree on the configuration file/.test(p)));
      assert.ok(status.problems.some((p) => /#2 .* is not running on pg-r1, pg-r2/.test(p)));
      // `warden policy status` says so plainly, and exits 1.
      const config = join(dir, 'pg-warden.yaml');
      writeFileSync(config, stringify(replicaConfig(storeUrl, 'cli')));
      const shown = await warden(['policy', 'status', '--config', config]);
      assert.equal(shown.status, 1, show(shown));
      assert.match(shown.stdout, /pg-r3\s+yes\s+[0-9a-f]{12}\s+#2/);
      assert.match(shown.stdout, /PROBLEM: replicas disagree on the policy version/);
      assert.match(shown.stdout, /PROBLEM: replicas disagree on the configuration file/);
    } finally {
      await r3.close();
    }
  });
});

describe('PostgreSQL tells every store of a push at once', () => {
  test('a subscriber on one store hears the id of a bundle pushed through another', async () => {
    const schema = uniqueName('policy_notify').toLowerCase();
    const pusher = await openTracked(POSTGRES_URL, { schema });
    testSchemas.push(schema);
    const listener = await openTracked(POSTGRES_URL, { schema });
    const heard: number[] = [];
    await listener.policyBundles.subscribe((id) => heard.push(id));
    const { bundle } = await pusher.policyBundles.push({
      contentHash: 'a'.repeat(64),
      policyVersion: 'v1',
      text: 'agents: {}\n',
      pushedAt: Date.now(),
      pushedBy: 'tester@host',
    });
    await waitFor('the NOTIFY reaches the other store', async () => heard.includes(bundle.id));
  });
});

describe('policy bundles on SQLite (two replicas, one file)', () => {
  let store: string;
  let r1: TestGateway;
  let r2: TestGateway;
  let operator: OperatorSession;

  before(async () => {
    store = `sqlite:${join(tempRoot, 'policy-push.db')}`;
    r1 = await startTestGateway(replicaConfig(store, 'lite-r1'));
    r2 = await startTestGateway(replicaConfig(store, 'lite-r2'));
    operator = await operatorSession(replicaConfig(store, 'operator'));
  });
  after(async () => {
    await operator?.close();
    await r1?.close();
    await r2?.close();
  });

  test('a bundle pushed from another connection is found by both replicas polling', async () => {
    assert.equal(await callEcho(r1), 'WARDEN_POLICY_DENIED');
    const pushed = await operator.policy.pushPolicyBundle({
      text: bundleText(WITH_ECHO),
      file: 'bundle.yaml',
      by: 'tester@host',
    });
    const version = pushed.bundle.policyVersion;
    await waitFor('both replicas run the pushed version', async () =>
      (await Promise.all([runsVersion(r1, version), runsVersion(r2, version)])).every(Boolean),
    );
    assert.equal(await callEcho(r1), 'allowed');
    assert.equal(await callEcho(r2), 'allowed');
  });

  test('the CLI pushes a bundle (once), refuses a broken one, and shows both replicas agreeing', async () => {
    const config = join(dir, 'warden.yaml');
    writeFileSync(config, stringify(replicaConfig(store, 'cli')));
    // A whole warden.yaml may be pushed: its other sections are left out, and said so.
    const revoke = join(dir, 'revoke-echo.yaml');
    writeFileSync(revoke, stringify({ ...replicaConfig(store, 'cli'), roles: WITHOUT_ECHO }));
    const pushed = await warden(['policy', 'push', revoke, '--config', config]);
    assert.equal(pushed.status, 0, show(pushed));
    assert.match(pushed.stdout, /pushed policy bundle #2, version [0-9a-f]{12}/);
    assert.match(pushed.stdout, /left out: .*upstreams/);
    const again = await warden(['policy', 'push', revoke, '--config', config]);
    assert.equal(again.status, 0, show(again));
    assert.match(again.stdout, /unchanged: the newest bundle #2 .* nothing was stored/);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, stringify({ agents: { [AGENT]: { roles: ['nobody_declared'] } } }));
    const refused = await warden(['policy', 'push', broken, '--config', config]);
    assert.equal(refused.status, 2, show(refused));
    assert.match(refused.stderr, /invalid configuration in .*broken\.yaml/);
    assert.match(refused.stderr, /nobody_declared/);
    await waitFor('both replicas deny echo again', async () =>
      (await Promise.all([callEcho(r1), callEcho(r2)])).every((c) => c === 'WARDEN_POLICY_DENIED'),
    );
    await waitFor('the status shows both on bundle #2 and agreeing', async () => {
      const status = await warden(['policy', 'status', '--config', config]);
      return (
        status.status === 0 &&
        /lite-r1\s+yes\s+[0-9a-f]{12}\s+#2/.test(status.stdout) &&
        /lite-r2\s+yes\s+[0-9a-f]{12}\s+#2/.test(status.stdout) &&
        /live replicas agree/.test(status.stdout)
      );
    });
  });

  test('a replica started after a push starts from the newest bundle', async () => {
    const r3 = await startTestGateway(replicaConfig(store, 'lite-r3', { roles: WITH_ECHO }));
    try {
      // Its file grants echo; the newest bundle (#2) does not.
      assert.equal(await callEcho(r3), 'WARDEN_POLICY_DENIED');
      assert.ok(
        r3.logs.every((line) => !/no policy bundle has been pushed yet/.test(String(line['msg']))),
      );
    } finally {
      await r3.close();
    }
  });
});
