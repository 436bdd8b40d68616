// Property: what the upstream receives is exactly what the policy judged. For random tool-call
// arguments written as raw JSON text — keys repeated, any Unicode (NBSP, RTL marks, emoji, lone
// surrogates), numbers huge, tiny and over-precise, nesting deep-ish and too deep — sent through a
// running gateway to a recording upstream, either
//   - the call is forwarded once, and the keyed hash of the arguments the upstream parsed equals
//     the argumentsHash of the call.allowed record (the hash of what the policy judged), or
//   - it is refused at parse with the code an independent oracle expects, nothing is forwarded,
//     and a request.refused record is found by the reference the client got.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { loadOrCreateHashKey } from '../src/audit/hash-key.js';
import { createArgumentRedactor, type ArgumentRedactor } from '../src/audit/redaction.js';
import { canonicalJson } from '../src/domain/canonical-json.js';
import type { ErrorCode } from '../src/domain/errors.js';
import { DEFAULT_MAX_JSON_DEPTH, parseClientMessage } from '../src/mcp/jsonrpc-parse.js';
import {
  startAuditedGateway,
  type AuditedGateway,
  type AuditReader,
} from './support/audit-reader.js';
import { openSession, postMcp } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

/** Bounded for `npm test`; raise it (WARDEN_PROPERTY_RUNS=2000) to search harder. */
const RUNS = Number(process.env['WARDEN_PROPERTY_RUNS'] ?? 100);

let upstream: ScriptedUpstream;
let audited: AuditedGateway;
let audit: AuditReader;
let redactor: ArgumentRedactor;
let endpoint: string;
let auth: Record<string, string>;
let sessionId: string;

before(async () => {
  upstream = await startScriptedUpstream();
  audited = await startAuditedGateway('forwarded-bytes', {
    log: { level: 'silent' },
    upstreams: { fixture: { url: upstream.url } },
  });
  audit = audited.audit;
  redactor = createArgumentRedactor({ hashKey: loadOrCreateHashKey(audited.hashKeyFile) });
  endpoint = audited.gateway.endpoint('fixture');
  auth = await audited.gateway.authHeaders();
  sessionId = await openSession(endpoint, auth);
});

after(async () => {
  await audited?.close();
  await upstream?.close();
});

/** A JSON value written as text, with what the oracle needs to know about that text. */
interface Written {
  readonly text: string;
  /** Nesting depth of objects and arrays in the text (a scalar is 0). */
  readonly depth: number;
  readonly inexactNumber: boolean;
  readonly loneSurrogate: boolean;
}

const scalar = (text: string, flags: Partial<Written> = {}): Written => ({
  text,
  depth: 0,
  inexactNumber: false,
  loneSurrogate: false,
  ...flags,
});

/**
 * Whether the decimal a JSON number denotes equals, exactly, the decimal the gateway would
 * forward (the double it parses to, printed). Worked out with BigInt rationals, independently of
 * the gateway's own string normalisation.
 */
function survivesRoundTrip(text: string): boolean {
  const value = Number(text);
  if (!Number.isFinite(value)) return false;
  const denoted = toRational(text);
  if (denoted.digits === 0n) return true;
  if (value === 0) return false;
  const printed = toRational(String(value));
  const shift = denoted.exponent - printed.exponent;
  return shift >= 0
    ? denoted.digits * 10n ** BigInt(shift) === printed.digits
    : denoted.digits === printed.digits * 10n ** BigInt(-shift);
}

function toRational(text: string): { digits: bigint; exponent: number } {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) throw new Error(`not a JSON number: ${text}`);
  const fraction = match[3] ?? '';
  const digits = BigInt(`${match[1] ?? ''}${match[2] ?? ''}${fraction}`);
  return { digits, exponent: Number(match[4] ?? '0') - fraction.length };
}

const numberText: fc.Arbitrary<string> = fc.oneof(
  // Doubles as JavaScript prints them: always exact.
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.integer().map(String),
  // Integers around and beyond 2^53.
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  // Decimals with many digits and exponents near the ends of the range.
  fc
    .tuple(
      fc.boolean(),
      fc.stringMatching(/^(0|[1-9]\d{0,24})$/),
      fc.option(fc.stringMatching(/^\d{1,25}$/), { nil: undefined }),
      fc.option(fc.integer({ min: -420, max: 420 }), { nil: undefined }),
    )
    .map(
      ([negative, whole, fraction, exponent]) =>
        `${negative ? '-' : ''}${whole}${fraction === undefined ? '' : `.${fraction}`}${exponent === undefined ? '' : `e${exponent}`}`,
    ),
  fc.constantFrom('1e999', '-1e999', '1e-400', '9007199254740993', '-0', '5e-324', '1.0', '1E+21'),
);

const number: fc.Arbitrary<Written> = numberText.map((text) =>
  scalar(text, { inexactNumber: !survivesRoundTrip(text) }),
);

/** In 'u' mode a pair is one code point outside this range; a lone half is inside it. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Text a tool might be tricked with, written either raw or as \u escapes. */
const tricky = fc.constantFrom(
  '\u00a0',
  '\u202e',
  '\u200b',
  '\ufeff',
  '\u0301',
  '😀',
  'e\u0301',
  '\u0000',
  '"',
  '\\',
  '\n',
);

const string: fc.Arbitrary<Written> = fc
  .oneof(
    { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
    { weight: 3, arbitrary: fc.array(tricky, { maxLength: 4 }).map((parts) => parts.join('')) },
  )
  .chain((value) =>
    fc.oneof(
      fc.constant(scalar(JSON.stringify(value), { loneSurrogate: LONE_SURROGATE.test(value) })),
      // The same text with every character above ASCII written as \u escapes (pairs as pairs).
      fc.constant(scalar(escapeAll(value), { loneSurrogate: LONE_SURROGATE.test(value) })),
      // A lone half of a surrogate pair, escaped, somewhere in it.
      fc
        .constantFrom('\\ud800', '\\udbff', '\\udc00', '\\udfff')
        .map((lone) =>
          scalar(`"${escapeAll(value).slice(1, -1)}${lone}"`, { loneSurrogate: true }),
        ),
    ),
  );

function escapeAll(value: string): string {
  let text = '';
  for (const char of JSON.stringify(value)) {
    const code = char.codePointAt(0) ?? 0;
    if (code < 0x7f) text += char;
    else for (const unit of String.fromCodePoint(code).split('')) text += `\\u${hex(unit)}`;
  }
  return text;
}

function hex(unit: string): string {
  return (unit.charCodeAt(0) | 0x10000).toString(16).slice(1);
}

/** Keys from a small pool, so objects often repeat one (JSON.parse keeps the last). */
const key: fc.Arbitrary<Written> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .constantFrom('a', 'amount', 'text', 'k\u00a0', 'é', '😀')
      .map((k) => scalar(JSON.stringify(k))),
  },
  { weight: 1, arbitrary: string },
);

const combine = (parts: readonly Written[], text: string): Written => ({
  text,
  depth: 1 + Math.max(0, ...parts.map((part) => part.depth)),
  inexactNumber: parts.some((part) => part.inexactNumber),
  loneSurrogate: parts.some((part) => part.loneSurrogate),
});

const { value } = fc.letrec<{ value: Written; array: Written; object: Written }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    number,
    string,
    fc.constantFrom(scalar('true'), scalar('false'), scalar('null')),
    tie('array'),
    tie('object'),
  ),
  array: fc
    .array(tie('value'), { maxLength: 4 })
    .map((items) => combine(items, `[${items.map((item) => item.text).join(',')}]`)),
  object: fc
    .array(fc.tuple(key, tie('value'), fc.constantFrom('', ' ', '\n\t')), { maxLength: 5 })
    .map((members) =>
      combine(
        members.flatMap(([name, member]) => [name, member]),
        `{${members.map(([name, member, space]) => `${space}${name.text}${space}:${member.text}`).join(',')}}`,
      ),
    ),
}));

/** Wraps a value in `levels` arrays and objects, to reach past the depth limit now and then. */
const deepened = fc
  .tuple(
    value,
    fc.oneof(
      { weight: 9, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: 55, max: 80 }) },
    ),
  )
  .map(([inner, levels]) =>
    levels === 0
      ? inner
      : {
          ...inner,
          text: `${'[{"x":'.repeat(Math.ceil(levels / 2))}${inner.text}${'}]'.repeat(Math.ceil(levels / 2))}`,
          depth: inner.depth + 2 * Math.ceil(levels / 2),
        },
  );

/** The arguments object of a tools/call. */
const argumentsText: fc.Arbitrary<Written> = fc
  .array(fc.tuple(key, deepened), { maxLength: 5 })
  .map((members) =>
    combine(
      members.flatMap(([name, member]) => [name, member]),
      `{${members.map(([name, member]) => `${name.text}:${member.text}`).join(',')}}`,
    ),
  );

/** What the gateway must answer for these arguments, in the order it checks. */
function expectedRefusal(args: Written): ErrorCode | undefined {
  // message (1) > params (2) > arguments (3, counted in args.depth).
  if (args.depth + 2 > DEFAULT_MAX_JSON_DEPTH) return 'WARDEN_NESTING_TOO_DEEP';
  if (args.inexactNumber) return 'WARDEN_NUMBER_OUT_OF_RANGE';
  if (args.loneSurrogate) return 'WARDEN_INVALID_UNICODE';
  return undefined;
}

test('the upstream receives exactly the arguments the policy judged, or nothing', async () => {
  let id = 0;
  await fc.assert(
    fc.asyncProperty(argumentsText, async (args) => {
      id += 1;
      const text = `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":${args.text}}}`;
      const forwardedBefore = upstream.received.length;
      const reply = await postMcp(endpoint, text, { sessionId, headers: auth });
      const forwarded = upstream.received
        .slice(forwardedBefore)
        .filter((request) => request.message?.method === 'tools/call');
      const reference = String(reply.headers['x-request-id']);
      const refusal = expectedRefusal(args);

      if (refusal !== undefined) {
        assert.equal(reply.status, 400, `expected ${refusal}: ${reply.text}`);
        const body = JSON.parse(reply.text) as { error: { data: { code: string } } };
        assert.equal(body.error.data.code, refusal);
        assert.deepEqual(forwarded, [], 'a refused call never reaches the upstream');
        const records = await audit.recordsOf(reference);
        assert.deepEqual(
          records.map((record) => [record.event, record.errorCode]),
          [['request.refused', refusal]],
        );
        return;
      }

      assert.equal(reply.status, 200, reply.text);
      assert.equal(forwarded.length, 1, 'forwarded once');
      const received = forwarded[0]?.message?.params?.['arguments'];
      const sent = (JSON.parse(text) as { params: { arguments: unknown } }).params.arguments;
      assert.equal(canonicalJson(received), canonicalJson(sent), 'the parsed value, unchanged');
      const decision = (await audit.recordsOf(reference)).find(
        (record) => record.event === 'call.allowed',
      );
      assert.ok(decision, `no decision record for ${reference}`);
      assert.equal(
        redactor.hashArguments(received),
        decision.argumentsHash,
        'the upstream received what the policy judged',
      );
    }),
    { numRuns: RUNS },
  );
});

test('parse refuses exactly the numbers the round trip would change (no gateway, many runs)', () => {
  fc.assert(
    fc.property(numberText, (text) => {
      const message = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n":${text}}}`;
      let refused: string | undefined;
      try {
        parseClientMessage(message);
      } catch (error) {
        refused = (error as { code?: string }).code;
      }
      assert.equal(
        refused,
        survivesRoundTrip(text) ? undefined : 'WARDEN_NUMBER_OUT_OF_RANGE',
        text,
      );
    }),
    { numRuns: RUNS * 50 },
  );
});
