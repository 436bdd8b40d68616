// The package's own entry point (package.json "exports") is built and exposes the library API.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

test('package.json "exports" points at a built module with the library API', async () => {
  const manifest = JSON.parse(
    readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
  ) as { exports: { '.': string } };
  const entry = fileURLToPath(new URL(`../${manifest.exports['.']}`, import.meta.url));
  assert.ok(existsSync(entry), `${entry} exists (npm run build)`);
  const api = (await import(entry)) as Record<string, unknown>;
  for (const name of ['startGateway', 'loadConfigFile', 'parseConfig', 'applyV8Workarounds']) {
    assert.equal(typeof api[name], 'function', name);
  }
});
