// The official conformance suite's server scenarios for revision 2025-11-25, run through Warden:
// against the fixture behind an HTTP upstream and behind a stdio upstream. Every scenario that
// passes directly (all of them, see conformance-direct.test.ts) must pass through the gateway,
// with no warnings. The 2026-07-28 scenarios are in conformance-stateless.test.ts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import {
  describeIssues,
  listServerScenarios,
  runConformanceServerSuite,
} from './support/conformance-runner.js';
import { startConformanceGateway, type ConformanceGateway } from './support/conformance-gateway.js';

const SPEC_VERSION = '2025-11-25';
const STDIO_FIXTURE = fileURLToPath(new URL('./fixtures/conformance-stdio.ts', import.meta.url));

let fixture: Awaited<ReturnType<typeof startConformanceHttpServer>>;
let warden: ConformanceGateway;
let scenarios: string[];

before(async () => {
  fixture = await startConformanceHttpServer();
  warden = await startConformanceGateway({
    http_fixture: { url: fixture.url },
    stdio_fixture: { command: [process.execPath, '--import', 'tsx', STDIO_FIXTURE] },
  });
  scenarios = await listServerScenarios(SPEC_VERSION);
});

after(async () => {
  await warden?.close();
  await fixture?.close();
});

for (const upstream of ['http_fixture', 'stdio_fixture']) {
  test(
    `every 2025-11-25 conformance server scenario passes through Warden (${upstream})`,
    { timeout: 180_000 },
    async () => {
      const results = await runConformanceServerSuite(warden.endpoint(upstream), {
        specVersion: SPEC_VERSION,
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
