/** The error catalogue in docs/errors.md and the codes in src/domain/errors.ts stay in step. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  ANSWERED_IN_BAND,
  ERROR_CATALOGUE,
  httpStatusOf,
  WardenError,
  toWireError,
} from '../src/domain/errors.js';

const DOC = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

function documentedRows(): Map<string, { status: number; rpcCode: number }> {
  const rows = new Map<string, { status: number; rpcCode: number }>();
  for (const match of DOC.matchAll(/^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*(-\d+)\s*\|/gm)) {
    rows.set(match[1] ?? '', { status: Number(match[2]), rpcCode: Number(match[3]) });
  }
  return rows;
}

test('every error code in the code is documented with its HTTP status and JSON-RPC code', () => {
  const documented = documentedRows();
  for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
    assert.deepEqual(
      documented.get(code),
      { status: spec.status, rpcCode: spec.rpcCode },
      `docs/errors.md row for ${code}`,
    );
  }
});

test('the docs list no code that the gateway does not have', () => {
  const known = new Set(Object.keys(ERROR_CATALOGUE));
  const stale = [...documentedRows().keys()].filter((code) => !known.has(code));
  assert.deepEqual(stale, []);
});

test('an unexpected error reaches the wire as WARDEN_INTERNAL without its message or stack', () => {
  const wire = toWireError(new Error('SELECT * FROM secrets WHERE key = 42'), 'ref-1');
  assert.equal(wire.data.code, 'WARDEN_INTERNAL');
  assert.equal(wire.status, 500);
  assert.doesNotMatch(wire.message, /SELECT|secrets/);
  assert.equal(wire.data.reference, 'ref-1');
});

test('a WardenError keeps its code, status and details on the wire', () => {
  const wire = toWireError(
    new WardenError('WARDEN_HEADER_MISMATCH', undefined, {
      details: { mismatch: { header: 'a', body: 'b' } },
    }),
    'ref-2',
  );
  assert.equal(wire.status, 400);
  assert.equal(wire.rpcCode, -32020);
  assert.deepEqual(wire.data, {
    mismatch: { header: 'a', body: 'b' },
    code: 'WARDEN_HEADER_MISMATCH',
    reference: 'ref-2',
  });
});

test('details cannot overwrite the code or the reference', () => {
  const wire = toWireError(
    new WardenError('WARDEN_PARSE_ERROR', undefined, { details: { code: 'FAKE', reference: 'x' } }),
    'ref-3',
  );
  assert.equal(wire.data.code, 'WARDEN_PARSE_ERROR');
  assert.equal(wire.data.reference, 'ref-3');
});

test('the docs mark exactly the refusals answered in band (HTTP 200, a JSON-RPC error)', () => {
  const marked = new Set(
    [...DOC.matchAll(/^\|\s*`([A-Z_]+)`\s*\|[^|]*\|[^|]*\|\s*In band\./gm)].map((m) => m[1]),
  );
  assert.deepEqual([...marked].sort(), [...ANSWERED_IN_BAND].sort());
  for (const code of ANSWERED_IN_BAND) {
    assert.equal(httpStatusOf(new WardenError(code), 7), 200, code);
    assert.equal(httpStatusOf(new WardenError(code), null), ERROR_CATALOGUE[code].status, code);
  }
  assert.equal(httpStatusOf(new WardenError('WARDEN_INVALID_TOKEN'), 7), 401);
  assert.equal(httpStatusOf(new WardenError('WARDEN_SESSION_NOT_FOUND'), 7), 404);
});
