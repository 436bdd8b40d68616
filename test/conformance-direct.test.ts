// The conformance fixture, without the gateway: every server scenario of the official suite for
// revision 2025-11-25 (the sessionful wire) passes against it, so any failure seen through Warden
// is Warden's. The 2026-07-28 scenarios, with their own fixture, are in conformance-stateless.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startConformanceHttpServer } from './fixtures/conformance-http.js';
import { CONFORMANCE_TOOL_NAMES } from './fixtures/conformance-server.js';
import {
  describeIssues,
  listServerScenarios,
  runConformanceServerSuite,
} from './support/conformance-runner.js';

const SPEC_VERSION = '2025-11-25';
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const STDIO_FIXTURE = fileURLToPath(new URL('./fixtures/conformance-stdio.ts', import.meta.url));

test(
  'every 2025-11-25 conformance server scenario passes against the HTTP fixture',
  { timeout: 180_000 },
  async (t) => {
    const fixture = await startConformanceHttpServer();
    try {
      const expected = await listServerScenarios(SPEC_VERSION);
      const started = performance.now();
      const results = await runConformanceServerSuite(fixture.url, {
        specVersion: SPEC_VERSION,
        timeoutMs: 150_000,
      });
      t.diagnostic(
        `${results.size} scenarios in ${Math.round(performance.now() - started)} ms against ${fixture.url}`,
      );

      assert.deepEqual([...results.keys()], expected);
      const failed = [...results.values()].filter((result) => !result.passed);
      assert.equal(failed.length, 0, `failed scenarios:\n${describeIssues(failed, ['failures'])}`);
      // The fixture meets the SHOULDs too, so a warning seen through the gateway is a regression.
      const warned = [...results.values()].filter((result) => result.warnings.length > 0);
      assert.equal(
        warned.length,
        0,
        `scenarios with warnings:\n${describeIssues(warned, ['warnings'])}`,
      );
    } finally {
      await fixture.close();
    }
  },
);

test('the stdio fixture lists and calls the conformance tools', { timeout: 60_000 }, async () => {
  const client = new Client({ name: 'conformance-direct-test', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', STDIO_FIXTURE],
    cwd: REPO_ROOT,
    stderr: 'inherit',
  });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((tool) => tool.name),
      [...CONFORMANCE_TOOL_NAMES],
    );
    const result = await client.callTool({ name: 'test_simple_text', arguments: {} });
    assert.deepEqual(result.content, [
      { type: 'text', text: 'This is a simple text response for testing.' },
    ]);
  } finally {
    await client.close();
  }
});
