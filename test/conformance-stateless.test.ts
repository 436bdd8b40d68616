// The official conformance suite's 2026-07-28 (stateless) server scenarios: first against the
// v2 SDK fixture directly, as the baseline, then through Warden with that fixture as a modern
// HTTP upstream. Through the gateway every scenario must pass with no warnings, and with at
// least as many passing checks as directly, so a check the gateway turns into a skip is caught.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startModernConformanceHttpServer } from './fixtures/conformance-modern-http.js';
import {
  describeIssues,
  listServerScenarios,
  runConformanceServerSuite,
  type ScenarioResult,
} from './support/conformance-runner.js';
import { startConformanceGateway, type ConformanceGateway } from './support/conformance-gateway.js';

const SPEC_VERSION = '2026-07-28';

let fixture: Awaited<ReturnType<typeof startModernConformanceHttpServer>>;
let warden: ConformanceGateway;
let scenarios: string[];
let baseline: Map<string, ScenarioResult> | undefined;

before(async () => {
  fixture = await startModernConformanceHttpServer();
  warden = await startConformanceGateway({ modern_fixture: { url: fixture.url } });
  scenarios = await listServerScenarios(SPEC_VERSION);
});

after(async () => {
  await warden?.close();
  await fixture?.close();
});

function countSuccesses(results: Map<string, ScenarioResult>): number {
  return [...results.values()].reduce((sum, result) => sum + result.successes, 0);
}

function assertPerfect(results: Map<string, ScenarioResult>): void {
  assert.deepEqual([...results.keys()], scenarios);
  const imperfect = [...results.values()].filter((r) => !r.passed || r.warnings.length > 0);
  assert.equal(
    imperfect.length,
    0,
    `scenarios with failures or warnings:\n${describeIssues(imperfect)}`,
  );
}

test(
  'every 2026-07-28 conformance server scenario passes against the v2 fixture',
  { timeout: 120_000 },
  async (t) => {
    const started = performance.now();
    const results = await runConformanceServerSuite(fixture.url, {
      specVersion: SPEC_VERSION,
      timeoutMs: 90_000,
    });
    t.diagnostic(
      `${results.size} scenarios, ${countSuccesses(results)} checks passed, in ${Math.round(performance.now() - started)} ms`,
    );
    assertPerfect(results);
    baseline = results;
  },
);

test(
  'every 2026-07-28 conformance server scenario passes through Warden (modern HTTP upstream)',
  { timeout: 120_000 },
  async (t) => {
    assert.ok(baseline, 'the direct run, which is the baseline, did not pass');
    const started = performance.now();
    const results = await runConformanceServerSuite(warden.endpoint('modern_fixture'), {
      specVersion: SPEC_VERSION,
      timeoutMs: 90_000,
    });
    t.diagnostic(
      `${results.size} scenarios, ${countSuccesses(results)} checks passed, in ${Math.round(performance.now() - started)} ms`,
    );
    assertPerfect(results);
    const fewer = [...results.values()]
      .filter((result) => result.successes < (baseline?.get(result.scenario)?.successes ?? 0))
      .map((result) => result.scenario);
    assert.deepEqual(fewer, [], 'scenarios with fewer passing checks than directly');
    assert.ok(countSuccesses(results) >= countSuccesses(baseline));
  },
);
