/**
 * Replicas on one store know each other: a second writer on an audit stream is refused at start
 * (not at its first record), the same replica started twice is refused once its twin keeps
 * beating, a crashed replica restarted at once waits out its old heartbeat and starts, and
 * replicas that disagree on the argument-hash key or the configuration are reported in /readyz.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openStore } from '../src/store/open-store.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-membership-'));
let upstream: McpHttpUpstream | undefined;
const running: TestGateway[] = [];

after(async () => {
  for (const gateway of running) await gateway.close().catch(() => undefined);
  await upstream?.close();
});

async function replica(
  store: string,
  options: { stream: string; replica?: string; hashKey?: string; environment?: string },
): Promise<TestGateway> {
  upstream ??= await startMcpHttpUpstream(() => new McpServer({ name: 'u', version: '1.0.0' }));
  const gateway = await startTestGateway({
    log: { level: 'silent' },
    ...(options.environment !== undefined && { environment: options.environment }),
    store,
    audit: { stream: options.stream, hash_key_file: join(dir, options.hashKey ?? 'hash.key') },
    cluster: {
      heartbeat: '100ms',
      dead_after: '1s',
      ...(options.replica !== undefined && { replica: options.replica }),
    },
    upstreams: { u: { url: upstream.url } },
  });
  running.push(gateway);
  return gateway;
}

async function readyz(gateway: TestGateway): Promise<{
  cluster: { replicas: Array<{ id: string; alive: boolean }>; problems: string[] };
}> {
  return (await (await fetch(`${gateway.url}/readyz`)).json()) as never;
}

describe('replica membership', () => {
  const store = `sqlite:${join(dir, 'shared.db')}`;

  test("a second replica on a live replica's audit stream is refused at start, saying what to do", async () => {
    await replica(store, { stream: 'chain-a' });
    await assert.rejects(
      replica(store, { stream: 'chain-a', replica: 'other-name' }),
      (error: Error) => {
        assert.match(error.message, /audit stream "chain-a" is written by replica "chain-a"/);
        assert.match(error.message, /give each replica its own audit\.stream/);
        return true;
      },
    );
  });

  test('the same replica started twice is refused once its twin is seen beating past dead_after', async () => {
    const started = Date.now();
    await assert.rejects(replica(store, { stream: 'chain-a' }), (error: Error) => {
      assert.match(error.message, /replica "chain-a" is running already/);
      // A local refusal: the CLI prints it as one line and exits 1, no stack trace.
      assert.equal((error as { code?: string }).code, 'REPLICA_CONFLICT');
      return true;
    });
    assert.ok(Date.now() - started >= 1000, 'it waited out dead_after before refusing');
  });

  test('replicas with different argument-hash keys or config files are reported in /readyz', async () => {
    writeFileSync(join(dir, 'other-hash.key'), Buffer.alloc(32, 7).toString('base64'));
    const second = await replica(store, {
      stream: 'chain-b',
      hashKey: 'other-hash.key',
      environment: 'elsewhere',
    });
    const deadline = Date.now() + 5000;
    let problems: string[] = [];
    while (Date.now() < deadline) {
      const report = await readyz(second);
      problems = report.cluster.problems;
      if (problems.length >= 2 && report.cluster.replicas.filter((r) => r.alive).length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(
      problems.some((p) => /argument-hash key/.test(p)),
      problems.join('; '),
    );
    assert.ok(
      problems.some((p) => /configuration file/.test(p)),
      problems.join('; '),
    );
  });

  test('a replica that stopped cleanly is listed as stopped, and its name may start again', async () => {
    const third = await replica(store, { stream: 'chain-c' });
    await third.close();
    running.splice(running.indexOf(third), 1);
    const opened = await openStore(store);
    try {
      const { replicas } = await opened.replicas.list();
      assert.ok(replicas.find((r) => r.id === 'chain-c')?.stoppedAt !== undefined);
    } finally {
      await opened.close();
    }
    const again = await replica(store, { stream: 'chain-c' });
    assert.equal((await fetch(`${again.url}/healthz`)).status, 200);
  });
});
