// Tool-call arguments from the attacker's side: a client (or a model steered by injected text)
// cannot send arguments the tool's pinned input schema does not allow, cannot make an
// uncompilable schema fail open, and never sees its own (possibly secret) values echoed back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createInputSchemaChecker,
  MAX_REPORTED_VIOLATIONS,
  type InputSchemaCheck,
} from '../src/policy/input-schema-check.js';

const transferSchema = {
  type: 'object',
  properties: {
    from: { type: 'string' },
    to: { type: 'string' },
    amount: { type: 'number', minimum: 0 },
    memo: { type: 'object', properties: { text: { type: 'string' } } },
  },
  required: ['from', 'to', 'amount'],
  additionalProperties: false,
};

function errorsOf(result: InputSchemaCheck): readonly { path: string; message: string }[] {
  assert.equal(result.ok, false, 'the call should have been refused');
  return result.ok ? [] : result.errors;
}

describe('input schema check', () => {
  test('allows arguments the schema accepts', () => {
    const checker = createInputSchemaChecker();
    assert.deepEqual(
      checker.check('h-transfer', transferSchema, { from: 'a', to: 'b', amount: 5 }),
      {
        ok: true,
      },
    );
  });

  test('refuses an argument of the wrong type, naming its JSON pointer', () => {
    const checker = createInputSchemaChecker();
    const errors = errorsOf(
      checker.check('h-transfer', transferSchema, {
        from: 'a',
        to: 'b',
        amount: 5,
        memo: { text: 42 },
      }),
    );
    assert.deepEqual(errors, [{ path: '/memo/text', message: 'must be string' }]);
  });

  test('refuses a call missing a required argument', () => {
    const checker = createInputSchemaChecker();
    const errors = errorsOf(checker.check('h-transfer', transferSchema, { from: 'a', amount: 5 }));
    assert.deepEqual(errors, [{ path: '', message: "must have required property 'to'" }]);
  });

  test('reports every violation at once (allErrors)', () => {
    const checker = createInputSchemaChecker();
    const errors = errorsOf(checker.check('h-transfer', transferSchema, { from: 1, amount: -1 }));
    assert.deepEqual(errors.map((error) => error.path).sort(), ['', '/amount', '/from']);
  });

  test('refuses a forged argument the schema does not declare (additionalProperties false)', () => {
    const checker = createInputSchemaChecker();
    const errors = errorsOf(
      checker.check('h-transfer', transferSchema, {
        from: 'a',
        to: 'b',
        amount: 5,
        bcc: 'attacker@example.com',
      }),
    );
    assert.deepEqual(errors, [{ path: '', message: 'must NOT have additional properties' }]);
  });

  test('never echoes argument values, which may be secrets, in its errors', () => {
    const checker = createInputSchemaChecker();
    const secret = 'sk-live-0123456789abcdef';
    const schema = {
      type: 'object',
      properties: {
        apiKey: { type: 'string', maxLength: 4, enum: ['none'] },
        pin: { type: 'integer' },
      },
      additionalProperties: false,
    };
    const result = checker.check('h-secret', schema, { apiKey: secret, pin: secret, [secret]: 1 });
    const errors = errorsOf(result);
    assert.ok(errors.length >= 3);
    for (const error of errors) assert.doesNotMatch(error.message, /sk-live/);
    assert.doesNotMatch(JSON.stringify(errors.map((error) => error.message)), /sk-live/);
  });

  test('checks missing arguments as an empty object', () => {
    const checker = createInputSchemaChecker();
    assert.deepEqual(checker.check('h-open', { type: 'object' }, undefined), { ok: true });
    const errors = errorsOf(checker.check('h-transfer', transferSchema, undefined));
    assert.equal(errors.length, 3);
  });

  test('refuses arguments that are not an object when the schema wants one', () => {
    const checker = createInputSchemaChecker();
    for (const args of [null, [], 'from=a', 5]) {
      assert.deepEqual(errorsOf(checker.check('h-transfer', transferSchema, args))[0], {
        path: '',
        message: 'must be object',
      });
    }
  });

  test('caps the number of reported violations', () => {
    const checker = createInputSchemaChecker();
    const schema = {
      type: 'object',
      properties: { ids: { type: 'array', items: { type: 'integer' } } },
    };
    const errors = errorsOf(checker.check('h-ids', schema, { ids: Array(500).fill('x') }));
    assert.equal(errors.length, MAX_REPORTED_VIOLATIONS);
    assert.equal(errors[0]?.path, '/ids/0');
  });

  test('refuses every call to a tool whose schema cannot be compiled, rather than failing open', () => {
    const checker = createInputSchemaChecker();
    const broken = [
      { type: 'object', properties: { a: { type: 'strnig' } } },
      { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } },
      { type: 'object', required: 'a' },
    ];
    broken.forEach((schema, index) => {
      for (const args of [{}, { a: 1 }]) {
        const errors = errorsOf(checker.check(`h-broken-${index}`, schema, args));
        assert.equal(errors.length, 1);
        assert.equal(errors[0]?.path, '');
        assert.match(errors[0]?.message ?? '', /^the tool's input schema cannot be compiled: ./);
      }
    });
  });

  test('refuses a schema that is not a JSON object', () => {
    const checker = createInputSchemaChecker();
    for (const schema of [null, [], true] as unknown as object[]) {
      const errors = errorsOf(checker.check(`h-${JSON.stringify(schema)}`, schema, {}));
      assert.match(errors[0]?.message ?? '', /cannot be compiled: it is not a JSON object/);
    }
  });

  test('refuses calls to a tool whose schema declares a dialect Warden does not know', () => {
    const checker = createInputSchemaChecker();
    const draft04 = { $schema: 'http://json-schema.org/draft-04/schema#', type: 'object' };
    const errors = errorsOf(checker.check('h-draft-04', draft04, {}));
    assert.match(errors[0]?.message ?? '', /cannot be compiled/);
  });

  test('refuses arguments nested deep enough to overflow validation, rather than throwing', () => {
    const checker = createInputSchemaChecker();
    const schema = {
      $ref: '#/$defs/node',
      $defs: { node: { type: 'object', properties: { child: { $ref: '#/$defs/node' } } } },
    };
    let args: Record<string, unknown> = {};
    for (let depth = 0; depth < 100_000; depth += 1) args = { child: args };
    assert.deepEqual(errorsOf(checker.check('h-tree', schema, args)), [
      { path: '', message: 'the arguments could not be checked against the input schema' },
    ]);
    assert.deepEqual(checker.check('h-tree', schema, { child: { child: {} } }), { ok: true });
  });

  test('compiles each schema once per definition hash', () => {
    const compiled: string[] = [];
    const checker = createInputSchemaChecker({ onCompile: (hash) => compiled.push(hash) });
    for (let call = 0; call < 3; call += 1) {
      checker.check('h-transfer', transferSchema, { from: 'a', to: 'b', amount: call });
      checker.check('h-broken', { type: 7 }, {});
    }
    assert.deepEqual(compiled, ['h-transfer', 'h-broken']);
    assert.equal(checker.size, 2);
  });

  test('bounds the cache, evicting the least recently used schema', () => {
    const compiled: string[] = [];
    const checker = createInputSchemaChecker({
      maxCachedSchemas: 2,
      onCompile: (hash) => compiled.push(hash),
    });
    checker.check('h-1', { type: 'object' }, {});
    checker.check('h-2', { type: 'object' }, {});
    checker.check('h-1', { type: 'object' }, {});
    checker.check('h-3', { type: 'object' }, {});
    assert.equal(checker.size, 2);
    checker.check('h-1', { type: 'object' }, {});
    checker.check('h-2', { type: 'object' }, {});
    assert.deepEqual(compiled, ['h-1', 'h-2', 'h-3', 'h-2']);
    assert.throws(() => createInputSchemaChecker({ maxCachedSchemas: 0 }), RangeError);
  });

  test('keeps a cached schema unaffected by later changes to the caller’s object', () => {
    const checker = createInputSchemaChecker();
    const schema = { type: 'object', properties: { mode: { enum: ['read'] } } };
    assert.equal(checker.check('h-mode', schema, { mode: 'write' }).ok, false);
    schema.properties.mode.enum.push('write');
    assert.equal(checker.check('h-mode', schema, { mode: 'write' }).ok, false);
  });

  test('compiles two tools whose schemas share an $id', () => {
    const checker = createInputSchemaChecker();
    const first = { $id: 'urn:tool:input', type: 'object', properties: { a: { type: 'string' } } };
    const second = { $id: 'urn:tool:input', type: 'object', properties: { a: { type: 'number' } } };
    assert.deepEqual(checker.check('h-first', first, { a: 'x' }), { ok: true });
    assert.deepEqual(checker.check('h-second', second, { a: 1 }), { ok: true });
    assert.equal(checker.check('h-second', second, { a: 'x' }).ok, false);
  });

  test('reads schemas as JSON Schema 2020-12 by default (prefixItems, $defs)', () => {
    const checker = createInputSchemaChecker();
    const schema = {
      type: 'object',
      properties: {
        point: {
          type: 'array',
          prefixItems: [{ type: 'number' }, { $ref: '#/$defs/label' }],
          items: false,
        },
      },
      $defs: { label: { type: 'string' } },
    };
    assert.deepEqual(checker.check('h-point', schema, { point: [1, 'origin'] }), { ok: true });
    assert.equal(
      errorsOf(checker.check('h-point', schema, { point: [1, 2] }))[0]?.path,
      '/point/1',
    );
    assert.equal(
      errorsOf(checker.check('h-point', schema, { point: [1, 'a', 3] }))[0]?.path,
      '/point',
    );
  });

  test('accepts the 2020-12 dialect when declared explicitly', () => {
    const checker = createInputSchemaChecker();
    const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object' };
    assert.deepEqual(checker.check('h-2020', schema, {}), { ok: true });
  });

  test('reads a schema declaring draft-07 with draft-07 rules (tuple items, definitions)', () => {
    const checker = createInputSchemaChecker();
    for (const $schema of [
      'http://json-schema.org/draft-07/schema#',
      'http://json-schema.org/draft-07/schema',
    ]) {
      const schema = {
        $schema,
        type: 'object',
        properties: {
          pair: {
            type: 'array',
            items: [{ type: 'string' }, { $ref: '#/definitions/count' }],
            additionalItems: false,
          },
        },
        definitions: { count: { type: 'integer' } },
        additionalProperties: false,
      };
      const hash = `h-draft-07-${$schema}`;
      assert.deepEqual(checker.check(hash, schema, { pair: ['a', 2] }), { ok: true });
      assert.equal(errorsOf(checker.check(hash, schema, { pair: ['a', 'b'] }))[0]?.path, '/pair/1');
      assert.equal(errorsOf(checker.check(hash, schema, { pair: ['a', 2, 3] }))[0]?.path, '/pair');
      assert.equal(errorsOf(checker.check(hash, schema, { pair: [], extra: 1 }))[0]?.path, '');
    }
  });

  test('does not check formats (upstream schemas may use formats Warden does not know)', () => {
    const checker = createInputSchemaChecker();
    const schema = { type: 'object', properties: { when: { type: 'string', format: 'x-custom' } } };
    assert.deepEqual(checker.check('h-format', schema, { when: 'anything' }), { ok: true });
  });
});
