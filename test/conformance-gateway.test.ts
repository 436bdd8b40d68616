// The official conformance suite's server scenarios, run through Warden: against the fixture
// behind an HTTP upstream and behind a stdio upstream. Every scenario that passes directly
// (all of them, see conformance-direct.test.ts) must pass through the gateway, with no warnings.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { listServerScenarios, runConformanceServerSuite } from './support/conformance-runner.js';
import type { ScenarioResult } from './support/conformance-runner.js';
import { findFreePort } from './support/processes.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startTokenInjector, type TokenInjector } from './support/token-injector.js';

const STDIO_FIXTURE = fileURLToPath(new URL('./fixtures/conformance-stdio.ts', import.meta.url));

let fixture: Awaited<ReturnType<typeof startConformanceHttpServer>>;
let gateway: TestGateway;
let injector: TokenInjector;
let scenarios: string[];

before(async () => {
  fixture = await startConformanceHttpServer();
  // The conformance CLI cannot send credentials: it reaches Warden through a token injector,
  // which the gateway must accept as a Host, since the injector forwards Host unchanged.
  const injectorPort = await findFreePort();
  gateway = await startTestGateway({
    log: { level: 'warn' },
    listen: {
      host: '127.0.0.1',
      port: 0,
      allowed_hosts: [`127.0.0.1:${injectorPort}`, `localhost:${injectorPort}`],
    },
    upstreams: {
      http_fixture: { url: fixture.url },
      stdio_fixture: { command: [process.execPath, '--import', 'tsx', STDIO_FIXTURE] },
    },
  });
  injector = await startTokenInjector(gateway.url, () => gateway.token(), injectorPort);
  scenarios = await listServerScenarios();
});

after(async () => {
  await injector?.close();
  await gateway?.close();
  await fixture?.close();
});

function describeIssues(results: Iterable<ScenarioResult>): string {
  return [...results]
    .map(
      (result) =>
        `${result.scenario}:\n` +
        [...result.failures, ...result.warnings]
          .map((issue) => `  - ${issue.id}: ${issue.errorMessage}`)
          .join('\n'),
    )
    .join('\n');
}

for (const upstream of ['http_fixture', 'stdio_fixture']) {
  test(
    `every conformance server scenario passes through Warden (${upstream})`,
    { timeout: 180_000 },
    async () => {
      const results = await runConformanceServerSuite(`${injector.url}/mcp/${upstream}`, {
        timeoutMs: 150_000,
      });
      assert.deepEqual([...results.keys()], scenarios);
      const imperfect = [...results.values()].filter((r) => !r.passed || r.warnings.length > 0);
      assert.equal(
        imperfect.length,
        0,
        `scenarios with failures or warnings:\n${describeIssues(imperfect)}`,
      );
    },
  );
}
