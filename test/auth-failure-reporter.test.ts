/** An attacker spraying bad tokens cannot flood the log: failures are aggregated per source. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createAuthFailureReporter } from '../src/gateway/auth-failure-reporter.js';
import { createLogger } from '../src/gateway/logger.js';

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

test('a flood of 1,000 refused tokens from one source writes one line, then one summary', () => {
  const { lines, stream } = capture();
  let clock = 0;
  const reporter = createAuthFailureReporter(createLogger('info', stream), {
    windowMs: 1000,
    now: () => clock,
  });
  for (let i = 0; i < 1000; i++) {
    reporter.report({
      requestId: `r${i}`,
      source: '10.0.0.9',
      upstream: 'payments',
      code: 'WARDEN_INVALID_TOKEN',
      reason: 'signature_invalid',
    });
  }
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.['requestId'], 'r0');
  assert.equal(lines[0]?.['reason'], 'signature_invalid');
  clock = 1500;
  reporter.report({
    requestId: 'next',
    source: '10.0.0.9',
    upstream: 'payments',
    code: 'WARDEN_UNAUTHENTICATED',
    reason: undefined,
  });
  assert.equal(lines.length, 3, 'the closed window is summarised, and a new one opens');
  assert.equal(lines[1]?.['repeated'], 999);
  assert.deepEqual(lines[1]?.['codes'], { WARDEN_INVALID_TOKEN: 999 });
  assert.equal(lines[2]?.['requestId'], 'next');
  reporter.flush();
});

test('failures from different sources are each reported', () => {
  const { lines, stream } = capture();
  const reporter = createAuthFailureReporter(createLogger('info', stream), {
    windowMs: 1000,
    now: () => 0,
  });
  reporter.report({
    requestId: 'a',
    source: '10.0.0.1',
    upstream: 'crm',
    code: 'WARDEN_INVALID_TOKEN',
    reason: 'token_expired',
  });
  reporter.report({
    requestId: 'b',
    source: '10.0.0.2',
    upstream: 'crm',
    code: 'WARDEN_INVALID_TOKEN',
    reason: 'token_expired',
  });
  reporter.report({
    requestId: 'c',
    source: '10.0.0.2',
    upstream: 'crm',
    code: 'WARDEN_INVALID_TOKEN',
    reason: 'token_expired',
  });
  reporter.flush();
  assert.deepEqual(
    lines.map((line) => [line['source'], line['requestId'] ?? line['repeated']]),
    [
      ['10.0.0.1', 'a'],
      ['10.0.0.2', 'b'],
      ['10.0.0.2', 1],
    ],
  );
});
