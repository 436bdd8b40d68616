// What `warden audit query` and `audit show` ask of both backends (issue 12, point 5): the
// newest matches first, and records found by the start of their request id, compared exactly
// (letter case counts; LIKE's wildcards mean nothing).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AuditRecord } from '../src/domain/audit-record.js';
import type { Store } from '../src/store/types.js';
import {
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';

const T0 = 1_900_000_000_000;

const BACKENDS: { name: string; open: () => Promise<Store> }[] = [
  {
    name: 'SQLite',
    open: () => openTracked(`sqlite:${join(tempRoot, uniqueName('db'), 'warden.db')}`),
  },
  {
    name: 'PostgreSQL',
    open: () => {
      const schema = uniqueName('warden_test');
      testSchemas.push(schema);
      return openTracked(POSTGRES_URL, { schema });
    },
  },
];

/** Record `seq` of one stream, `seq` seconds after T0. */
function record(seq: number, requestId: string): AuditRecord {
  return {
    stream: 'replica-a',
    seq,
    prevHash: `${seq - 1}`.padEnd(64, '0'),
    hash: `${seq}`.padEnd(64, '0'),
    event: 'call.allowed',
    time: new Date(T0 + seq * 1000).toISOString(),
    requestId,
    tool: 'report',
  };
}

const IDS = ['abcd1234-1', 'abcd1234-2', 'ABCD1234-3', 'ab%d1234-4', 'ab_d1234-5'];

for (const backend of BACKENDS) {
  describe(`${backend.name} audit query`, () => {
    test('newest: the last matches, newest first; without it the first, oldest first', async () => {
      const store = await backend.open();
      await store.audit.append(IDS.map((id, index) => record(index + 1, id)));
      const newest = await store.audit.query({ tool: 'report', limit: 2, newest: true });
      assert.deepEqual(
        newest.map(({ seq }) => seq),
        [5, 4],
      );
      const oldest = await store.audit.query({ tool: 'report', limit: 2 });
      assert.deepEqual(
        oldest.map(({ seq }) => seq),
        [1, 2],
      );
    });

    test('requestIdPrefix matches the start exactly: case counts, % and _ are plain text', async () => {
      const store = await backend.open();
      await store.audit.append(IDS.map((id, index) => record(index + 1, id)));
      const ids = async (requestIdPrefix: string) =>
        (await store.audit.query({ requestIdPrefix })).map(({ requestId }) => requestId);
      assert.deepEqual(await ids('abcd1234'), ['abcd1234-1', 'abcd1234-2']);
      assert.deepEqual(await ids('ABCD'), ['ABCD1234-3']);
      assert.deepEqual(await ids('ab%'), ['ab%d1234-4']);
      assert.deepEqual(await ids('ab_'), ['ab_d1234-5']);
      assert.deepEqual(await ids('1234'), [], 'a prefix, not a substring');
    });
  });
}
