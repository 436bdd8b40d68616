// Runs every test/**/*.test.ts with Node's test runner (Node 20 has no --test glob).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const filter = process.argv.slice(2);
const files = findTests('test')
  .filter((f) => filter.length === 0 || filter.some((part) => f.includes(part)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// A test file that leaves a handle open never exits; CI must fail rather than hang until killed.
const WATCHDOG_MS = 14 * 60_000;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit', timeout: WATCHDOG_MS, killSignal: 'SIGKILL' },
);
if (result.error || result.signal) {
  console.error(`test run stopped after ${WATCHDOG_MS / 60_000} minutes: a test file did not exit`);
  process.exit(1);
}
process.exit(result.status ?? 1);
