// What of a call's arguments and result reaches the audit log: secrets never, configured paths
// never, and a keyed hash that correlates equal values without revealing them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { AuditError } from '../src/audit/errors.js';
import {
  createArgumentRedactor,
  isCredentialKey,
  redactSecrets,
  REDACTED,
} from '../src/audit/redaction.js';
import { digestResult } from '../src/audit/result-digest.js';

const HASH_KEY = Buffer.from('0123456789abcdef0123456789abcdef');

// Test-only look-alikes of real credentials (none of them is live).
const JWT =
  'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc2OH0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU';
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const GITHUB_TOKEN = 'ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R';
const OPENAI_KEY = 'sk-proj-4f9Q2xLm8Rt7Kz1Vb3Nc6Hd0';
const PEM =
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGM8MS4aJp9sWiFUn8lAbssgDM73GvkvBzCB50Wauhsz\n-----END PRIVATE KEY-----';
const HEX_SECRET = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const BASE64_SECRET = 'q8Zt3Kd9XwPv2LmR7nYc4Bf6Hs1Jg0TuVe5AoWiE';

const redactor = createArgumentRedactor({
  hashKey: HASH_KEY,
  redactPaths: ['recipient.iban', 'card.*', 'patients.ssn', '**.dob'],
});

describe('secrets in arguments', () => {
  test('redacts tokens and keys anywhere in nested arguments, keeping the rest', () => {
    const { arguments: redacted } = redactor.redact({
      query: 'weather in Paris',
      headers: [{ name: 'X-Trace', value: `Bearer ${JWT}` }],
      nested: { deeper: { aws: AWS_KEY_ID, gh: GITHUB_TOKEN, note: `use ${OPENAI_KEY} please` } },
      key: PEM,
      digest: HEX_SECRET,
      blob: BASE64_SECRET,
      count: 3,
      ok: true,
    });
    assert.deepEqual(redacted, {
      query: 'weather in Paris',
      headers: [{ name: 'X-Trace', value: `Bearer ${REDACTED}` }],
      nested: { deeper: { aws: REDACTED, gh: REDACTED, note: `use ${REDACTED} please` } },
      key: REDACTED,
      digest: REDACTED,
      blob: REDACTED,
      count: 3,
      ok: true,
    });
  });

  test('redacts whole values under credential-named keys, whatever their type', () => {
    const { arguments: redacted } = redactor.redact({
      password: 'hunter2',
      client_secret: { value: 'x' },
      'X-Api-Key': 'abc',
      Authorization: 'Basic Zm9vOmJhcg==',
      accessToken: 42,
      max_tokens: 1024,
      tokenizer: 'cl100k',
    });
    assert.deepEqual(redacted, {
      password: REDACTED,
      client_secret: REDACTED,
      'X-Api-Key': REDACTED,
      Authorization: REDACTED,
      accessToken: REDACTED,
      max_tokens: 1024,
      tokenizer: 'cl100k',
    });
  });

  test('leaves ordinary identifiers alone: ids, UUIDs, words, paths', () => {
    const plain = [
      'INV-2026-0042',
      '123e4567-e89b-12d3-a456-426614174000',
      'the_quick_brown_fox_jumps_over_the_lazy_dog',
      '/usr/local/lib/node_modules/typescript/lib',
      'risk-assessment-for-the-q3-board-meeting',
    ];
    for (const text of plain) assert.equal(redactSecrets(text), text, text);
    assert.equal(redactSecrets('Bearer 8f3kq93jdl2mxq7'), `Bearer ${REDACTED}`);
    assert.equal(isCredentialKey('tokens_used'), false);
    assert.equal(isCredentialKey('refresh_token'), true);
  });
});

describe('configured paths', () => {
  test('redact exactly the configured paths, through arrays and at any depth with **', () => {
    const { arguments: redacted } = redactor.redact({
      recipient: { iban: 'DE89370400440532013000', name: 'Bob' },
      card: { number: '4111111111111111', expiry: '12/29' },
      patients: [
        { name: 'A', ssn: '078-05-1120' },
        { name: 'B', ssn: '219-09-9999' },
      ],
      form: { person: { dob: '1980-01-01', city: 'Lyon' } },
      iban: 'stays: not under recipient',
    });
    assert.deepEqual(redacted, {
      recipient: { iban: REDACTED, name: 'Bob' },
      card: { number: REDACTED, expiry: REDACTED },
      patients: [
        { name: 'A', ssn: REDACTED },
        { name: 'B', ssn: REDACTED },
      ],
      form: { person: { dob: REDACTED, city: 'Lyon' } },
      iban: 'stays: not under recipient',
    });
  });

  test('never mutate the caller’s arguments', () => {
    const args = {
      recipient: { iban: 'DE89370400440532013000' },
      list: [{ password: 'x' }],
      token: JWT,
    };
    const before = structuredClone(args);
    redactor.redact(args);
    assert.deepEqual(args, before);
  });

  test('cut very long strings, after secret detection, and very deep nesting', () => {
    const short = createArgumentRedactor({ hashKey: HASH_KEY, maxStringLength: 10 });
    assert.equal(
      (short.redact({ text: 'a'.repeat(25) }).arguments as { text: string }).text,
      'aaaaaaaaaa…[15 more characters]',
    );
    let deep: unknown = 'bottom';
    for (let i = 0; i < 200; i++) deep = { deeper: deep };
    assert.doesNotThrow(() => redactor.redact(deep));
  });
});

describe('the keyed arguments hash', () => {
  test('is equal for equal arguments, whatever their key order', () => {
    assert.equal(
      redactor.redact({ a: 1, b: { c: 'x', d: [1, 2] } }).argumentsHash,
      redactor.redact({ b: { d: [1, 2], c: 'x' }, a: 1 }).argumentsHash,
    );
  });

  test('covers the unredacted values: different secrets give different hashes', () => {
    const one = redactor.redact({ password: 'hunter2' });
    const two = redactor.redact({ password: 'hunter3' });
    assert.deepEqual(one.arguments, two.arguments);
    assert.notEqual(one.argumentsHash, two.argumentsHash);
  });

  test('depends on the key, so the log alone cannot confirm a guessed value', () => {
    const other = createArgumentRedactor({ hashKey: randomBytes(32) });
    const args = { iban: 'DE89370400440532013000' };
    assert.notEqual(redactor.redact(args).argumentsHash, other.redact(args).argumentsHash);
    assert.match(redactor.redact(args).argumentsHash, /^[A-Za-z0-9_-]{43}$/);
  });

  test('refuses a short key', () => {
    assert.throws(
      () => createArgumentRedactor({ hashKey: Buffer.from('short') }),
      (error: AuditError) => error.code === 'AUDIT_KEY_INVALID',
    );
  });
});

describe('result digests', () => {
  const result = {
    content: [{ type: 'text', text: `invoice paid, receipt token ${JWT}` }],
    isError: false,
  };

  test('record error flag, size and hash of the canonical JSON', () => {
    const digest = digestResult(result, { redactor });
    assert.equal(digest.isError, false);
    assert.equal(digest.excerpt, undefined);
    assert.equal(
      digest.hash,
      digestResult({ isError: false, content: result.content }, { redactor }).hash,
    );
    assert.equal(digest.size, Buffer.byteLength(JSON.stringify(result)));
    assert.equal(digestResult({ ...result, isError: true }, { redactor }).isError, true);
  });

  test('keep only a redacted, truncated excerpt, cut on a character boundary', () => {
    const digest = digestResult(result, { redactor, excerptBytes: 80 });
    assert.ok(digest.excerpt !== undefined);
    assert.ok(!digest.excerpt.includes('eyJ'), 'no secret in the excerpt');
    const cut = digestResult({ text: 'é'.repeat(100) }, { redactor, excerptBytes: 12 });
    assert.equal(cut.excerpt, '{"text":"é…');
  });
});
