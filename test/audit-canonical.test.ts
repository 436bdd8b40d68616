// RFC 8785 (JCS) golden values for canonicalJson: every audit hash and checkpoint signature is
// computed over this form, so a change here would silently break verification of old logs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  canonicalJson,
  canonicalMembers,
  joinCanonicalMembers,
} from '../src/domain/canonical-json.js';

describe('canonical JSON follows RFC 8785', () => {
  test('serialises numbers as ECMAScript does (RFC 8785 §3.2.2.3 and Appendix B)', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [-0, '0'],
      [1, '1'],
      [0.1, '0.1'],
      [4.5, '4.5'],
      [0.002, '0.002'],
      [1e-7, '1e-7'],
      [0.000001, '0.000001'],
      [1e20, '100000000000000000000'],
      [1e21, '1e+21'],
      [1e30, '1e+30'],
      [1e-27, '1e-27'],
      // 333333333.33333329 in the RFC: the nearest double prints as below.
      [333333333.3333333, '333333333.3333333'],
      [5e-324, '5e-324'],
      [-5e-324, '-5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [-1.7976931348623157e308, '-1.7976931348623157e+308'],
      [9007199254740992, '9007199254740992'],
      [-9007199254740992, '-9007199254740992'],
      [295147905179352830000, '295147905179352830000'],
    ];
    for (const [value, expected] of cases) {
      assert.equal(canonicalJson(value), expected, `canonical form of ${value}`);
    }
  });

  test('refuses numbers RFC 8785 has no form for, instead of writing null', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.throws(() => canonicalJson({ latencyMs: value }), TypeError);
    }
    assert.throws(() => canonicalJson({ amount: 10n }), TypeError);
  });

  test('escapes strings as RFC 8785 §3.2.2.2 does, leaving non-ASCII as is', () => {
    assert.equal(
      canonicalJson({ string: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/' }),
      '{"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
    assert.equal(canonicalJson('\b\t\n\f\r'), '"\\b\\t\\n\\f\\r"');
    assert.equal(canonicalJson('\u0000\u001f\u007f'), '"\\u0000\\u001f\u007f"');
    assert.equal(canonicalJson('\u2028\u2029 é 😀'), '"\u2028\u2029 é 😀"');
  });

  test('escapes a lone surrogate deterministically rather than failing on client input', () => {
    assert.equal(canonicalJson('\ud800'), '"\\ud800"');
    assert.notEqual(canonicalJson('\ud800'), canonicalJson('\ufffd'));
  });

  test('reproduces the RFC 8785 §3.2.4 example byte for byte', () => {
    const parsed = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
        '"literals":[null,true,false]}',
    ) as unknown;
    assert.equal(
      canonicalJson(parsed),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('sorts keys by UTF-16 code units, as RFC 8785 §3.2.3 shows', () => {
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // 😀 (D83D DE00) sorts before U+FB33: code-unit order, not code-point order.
    assert.equal(
      canonicalJson(value),
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control",' +
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",' +
        '"\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  test('is independent of key insertion order, at every depth', () => {
    assert.equal(
      canonicalJson({ b: [{ y: 1, x: 2 }], a: { d: null, c: true } }),
      canonicalJson({ a: { c: true, d: null }, b: [{ x: 2, y: 1 }] }),
    );
    assert.equal(canonicalJson({ b: 1, a: 2, A: 3, _: 4 }), '{"A":3,"_":4,"a":2,"b":1}');
  });

  test('takes values as JSON.stringify does, so a stored and re-read record hashes the same', () => {
    assert.equal(canonicalJson({ a: undefined, b: () => 1, c: Symbol('s'), d: 1 }), '{"d":1}');
    assert.equal(canonicalJson([undefined, () => 1, 1]), '[null,null,1]');
    assert.equal(canonicalJson(undefined), 'null');
    assert.equal(
      canonicalJson({ at: new Date(Date.UTC(2026, 0, 15, 9)) }),
      '{"at":"2026-01-15T09:00:00.000Z"}',
    );
    const value = { z: [1, { β: 'x', α: 0.1 }], a: 'é' };
    assert.equal(canonicalJson(JSON.parse(canonicalJson(value))), canonicalJson(value));
  });

  test("members serialised once, joined with added members, give the whole object's form", () => {
    // The audit chain hashes and stores records built this way: any difference breaks verify.
    const key = fc.oneof(
      fc.constantFrom('seq', 'hash', 'prevHash', 'stream', 'a', 'Z', '_', 'é', '\u{1F600}'),
      fc.string({ maxLength: 4 }),
    );
    fc.assert(
      fc.property(
        fc.dictionary(key, fc.jsonValue()),
        fc.dictionary(key, fc.oneof(fc.jsonValue(), fc.constant(undefined))),
        (base, extra) => {
          const joined = joinCanonicalMembers(canonicalMembers(base), extra);
          assert.equal(joined, canonicalJson({ ...base, ...extra }));
        },
      ),
      { numRuns: 500 },
    );
  });
});
