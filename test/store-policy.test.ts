// The policy repositories (states, break-glass, tool definitions, quotas, approvals), one suite run
// against SQLite (file and memory) and PostgreSQL so both backends behave the same, including the
// two read-then-write calls under concurrency: two stores on one database stand for two replicas
// (PostgreSQL) or `warden serve` and the CLI (SQLite file), and two processes race on one file.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { StoreError } from '../src/store/errors.js';
import type {
  ApprovalRequest,
  BreakGlassGrant,
  OpenStoreOptions,
  PolicyState,
  QuotaCharge,
  Store,
} from '../src/store/types.js';
import {
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';

/** After 2^31 seconds and far beyond 2^32 ms: times must survive BIGINT and come back as numbers. */
const T0 = 1_900_000_000_000;
const HOUR = 3_600_000;

/** A fresh, empty database per test; `open` may be called again to reach the same database. */
interface FreshDatabase {
  open(options?: OpenStoreOptions): Promise<Store>;
  /** False for memory: reopening gives a new, empty database. */
  readonly persistent: boolean;
}

interface Backend {
  readonly name: string;
  createDatabase(): FreshDatabase;
}

const sqliteFile: Backend = {
  name: 'SQLite file',
  createDatabase() {
    const url = `sqlite:${join(tempRoot, uniqueName('db'), 'warden.db')}`;
    return { open: (options) => openTracked(url, options), persistent: true };
  },
};

const sqliteMemory: Backend = {
  name: 'SQLite memory',
  createDatabase() {
    return { open: (options) => openTracked('sqlite::memory:', options), persistent: false };
  },
};

const postgres: Backend = {
  name: 'PostgreSQL',
  createDatabase() {
    const schema = uniqueName('warden_test');
    testSchemas.push(schema);
    return {
      open: (options) => openTracked(POSTGRES_URL, { ...options, schema }),
      persistent: true,
    };
  },
};

/** Two stores on one database where the backend allows it (two replicas), else one store twice. */
async function openTwo(backend: Backend): Promise<[Store, Store]> {
  const database = backend.createDatabase();
  const first = await database.open();
  return [first, database.persistent ? await database.open() : first];
}

function state(name: string, on: boolean, changedAt: number): PolicyState {
  return { name, on, changedAt, changedBy: 'ops@example.com', reason: `switched ${name}` };
}

function grant(id: string, createdAt: number, expiresAt: number): BreakGlassGrant {
  return {
    id,
    agent: 'ops-bot',
    tool: 'payments.issue_payment',
    reason: 'incident INC-42',
    createdBy: 'oncall@example.com',
    createdAt,
    expiresAt,
    revokedAt: undefined,
  };
}

function definition(tool: string, hash: string, firstSeenAt: number) {
  return {
    upstream: 'payments',
    tool,
    hash,
    definition: JSON.stringify({ name: tool, description: `version ${hash}` }),
    firstSeenAt,
  };
}

function rate(limit: number, windowMs = HOUR, key = 'rate:agent:ops-bot'): QuotaCharge {
  return { key, amount: 1, limit, windowMs };
}

function approval(
  id: string,
  createdAt: number,
  overrides: Partial<ApprovalRequest> = {},
): ApprovalRequest {
  return {
    id,
    requestId: `req-${id}`,
    status: 'pending',
    createdAt,
    expiresAt: createdAt + HOUR,
    decidedAt: undefined,
    consumedAt: undefined,
    user: undefined,
    agent: 'finance-bot',
    roles: ['finance', 'payments'],
    model: undefined,
    upstream: 'payments',
    tool: 'issue_payment',
    arguments: '{"amount":1250.5,"to":"ACME"}',
    argumentsHash: 'ab'.repeat(32),
    toolDefinitionHash: undefined,
    policyVersion: 'v7',
    grants: ['grant-payments'],
    scopes: ['payments:write'],
    approverRoles: ['finance-lead'],
    approvalsRequired: 2,
    votes: [],
    ...overrides,
  };
}

/** What a key used within the window ending at `now`: a charge that cannot fit records nothing. */
async function usedBy(store: Store, key: string, now: number, windowMs = HOUR): Promise<number> {
  const probe = await store.quotas.charge([{ key, amount: 0, limit: -1, windowMs }], now);
  assert.equal(probe.admitted, false);
  return probe.used[0] ?? Number.NaN;
}

async function assertStoreError(
  promise: Promise<unknown>,
  code: StoreError['code'],
): Promise<StoreError> {
  const error = await promise.then(
    () => assert.fail(`expected StoreError ${code}`),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof StoreError, `expected a StoreError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

for (const backend of [sqliteFile, sqliteMemory, postgres]) {
  describe(`${backend.name} policy store`, () => {
    test('sets, replaces and lists policy states in name order', async () => {
      const store = await backend.createDatabase().open();
      assert.deepEqual(await store.policyStates.list(), []);
      await store.policyStates.set(state('payments_freeze', true, T0));
      await store.policyStates.set(state('deploy_freeze', false, T0 + 1));
      await store.policyStates.set({ ...state('payments_freeze', false, T0 + 2), reason: 'over' });
      const listed = await store.policyStates.list();
      assert.deepEqual(listed, [
        state('deploy_freeze', false, T0 + 1),
        { ...state('payments_freeze', false, T0 + 2), reason: 'over' },
      ]);
      assert.equal(typeof listed[0]?.changedAt, 'number');
      await store.policyStates.set(state('deploy_freeze', true, T0 + 3));
      assert.equal((await store.policyStates.list())[0]?.on, true);
    });

    test('break-glass grants: conflicts, active listing and revocation', async () => {
      const store = await backend.createDatabase().open();
      await store.breakGlass.add(grant('bg-2', T0 + 1, T0 + 100));
      await store.breakGlass.add(grant('bg-1', T0, T0 + 100));
      await store.breakGlass.add(grant('bg-expired', T0, T0 + 10));
      await store.breakGlass.add(grant('bg-revoked', T0, T0 + 100));
      await assertStoreError(
        store.breakGlass.add({ ...grant('bg-1', T0 + 5, T0 + 999), reason: 'again' }),
        'STORE_CONFLICT',
      );
      assert.equal(await store.breakGlass.revoke('bg-revoked', T0 + 20), true);
      assert.equal(await store.breakGlass.revoke('bg-revoked', T0 + 21), false, 'revoked already');
      assert.equal(await store.breakGlass.revoke('bg-expired', T0 + 20), false, 'expired already');
      assert.equal(await store.breakGlass.revoke('bg-unknown', T0 + 20), false);
      assert.deepEqual(await store.breakGlass.listActive(T0 + 20), [
        grant('bg-1', T0, T0 + 100),
        grant('bg-2', T0 + 1, T0 + 100),
      ]);
      assert.deepEqual(
        (await store.breakGlass.listActive(T0 + 5)).map(({ id }) => id),
        ['bg-1', 'bg-expired', 'bg-revoked', 'bg-2'],
        'a grant revoked later is still in force earlier',
      );
      assert.deepEqual(await store.breakGlass.listActive(T0 + 100), [], 'expiry is exclusive');
    });

    test('tool definitions: observe is idempotent, approve marks one version', async () => {
      const store = await backend.createDatabase().open();
      const first = await store.toolDefinitions.observe(definition('issue_payment', 'h1', T0));
      assert.deepEqual(first, {
        ...definition('issue_payment', 'h1', T0),
        approvedAt: undefined,
        approvedBy: undefined,
      });
      const again = await store.toolDefinitions.observe({
        ...definition('issue_payment', 'h1', T0 + 50),
        definition: '{"changed":true}',
      });
      assert.deepEqual(again, first, 'a stored definition is left as it is');
      assert.equal(
        await store.toolDefinitions.approve('payments', 'issue_payment', 'nope', 'a', T0),
        false,
      );
      assert.equal(
        await store.toolDefinitions.approve('payments', 'issue_payment', 'h1', 'alice', T0 + 1),
        true,
      );
      await store.toolDefinitions.observe(definition('issue_payment', 'h2', T0 + 2));
      await store.toolDefinitions.observe({
        ...definition('refund', 'r1', T0),
        upstream: 'billing',
      });
      assert.deepEqual(await store.toolDefinitions.list('payments'), [
        { ...first, approvedAt: T0 + 1, approvedBy: 'alice' },
        {
          ...definition('issue_payment', 'h2', T0 + 2),
          approvedAt: undefined,
          approvedBy: undefined,
        },
      ]);
      assert.deepEqual(
        (await store.toolDefinitions.list()).map(({ upstream, hash }) => `${upstream}:${hash}`),
        ['billing:r1', 'payments:h1', 'payments:h2'],
      );
      assert.deepEqual(
        await store.toolDefinitions.approvedHashes(),
        new Map([['payments.issue_payment', 'h1']]),
      );
    });

    test('approvedHashes picks the latest approval, then the latest seen version on a tie', async () => {
      const store = await backend.createDatabase().open();
      for (const [tool, hash, seen] of [
        ['issue_payment', 'old', T0],
        ['issue_payment', 'new', T0 + 10],
        ['refund', 'first', T0],
        ['refund', 'second', T0 + 5],
        ['list_payments', 'unapproved', T0],
      ] as const) {
        await store.toolDefinitions.observe(definition(tool, hash, seen));
      }
      // The newer version was approved first; re-approving the old one puts it back in force.
      await store.toolDefinitions.approve('payments', 'issue_payment', 'new', 'alice', T0 + 20);
      await store.toolDefinitions.approve('payments', 'issue_payment', 'old', 'bob', T0 + 30);
      await store.toolDefinitions.approve('payments', 'refund', 'second', 'alice', T0 + 40);
      await store.toolDefinitions.approve('payments', 'refund', 'first', 'alice', T0 + 40);
      assert.deepEqual(
        await store.toolDefinitions.approvedHashes(),
        new Map([
          ['payments.issue_payment', 'old'],
          ['payments.refund', 'second'],
        ]),
      );
    });

    test('quotas: admits under the limit and records nothing when any charge is over', async () => {
      const store = await backend.createDatabase().open();
      const budget: QuotaCharge = {
        key: 'budget:agent:finance-bot:payments.issue_payment:amount',
        amount: 600.25,
        limit: 1000,
        windowMs: HOUR,
      };
      assert.deepEqual(await store.quotas.charge([rate(3), budget], T0), {
        admitted: true,
        used: [0, 0],
        exceeded: undefined,
      });
      assert.deepEqual(await store.quotas.charge([rate(3), budget], T0 + 1), {
        admitted: false,
        used: [1, 600.25],
        exceeded: 1,
      });
      // All or none: the rate charge that fitted was not recorded either.
      assert.equal(await usedBy(store, rate(3).key, T0 + 2), 1);
      assert.equal(await usedBy(store, budget.key, T0 + 2), 600.25);
      assert.deepEqual(
        await store.quotas.charge([rate(3), { ...budget, amount: 399.75 }], T0 + 3),
        {
          admitted: true,
          used: [1, 600.25],
          exceeded: undefined,
        },
      );
      assert.equal(await usedBy(store, budget.key, T0 + 4), 1000);
      const refused = await store.quotas.charge([rate(2)], T0 + 5);
      assert.deepEqual(refused, { admitted: false, used: [2], exceeded: 0 });
      assert.deepEqual(await store.quotas.charge([], T0), {
        admitted: true,
        used: [],
        exceeded: undefined,
      });
    });

    test('quotas: a key charged twice in one call counts both charges', async () => {
      const store = await backend.createDatabase().open();
      const outcome = await store.quotas.charge([rate(1), rate(1)], T0);
      assert.deepEqual(outcome, { admitted: false, used: [0, 0], exceeded: 1 });
      assert.equal(await usedBy(store, rate(1).key, T0), 0);
    });

    test('quotas: the window slides, so old charges stop counting', async (t) => {
      // PostgreSQL stamps charges by its own clock, not T0: see test/quota-exact.test.ts.
      if (backend === postgres) return t.skip('windows follow the database clock');
      const store = await backend.createDatabase().open();
      const window = 1000;
      assert.equal((await store.quotas.charge([rate(2, window)], T0)).admitted, true);
      assert.equal((await store.quotas.charge([rate(2, window)], T0 + 400)).admitted, true);
      assert.equal((await store.quotas.charge([rate(2, window)], T0 + 999)).admitted, false);
      // At T0 + 1000 the charge at T0 has left the window (now - windowMs, now].
      assert.deepEqual(await store.quotas.charge([rate(2, window)], T0 + 1000), {
        admitted: true,
        used: [1],
        exceeded: undefined,
      });
      assert.equal(await usedBy(store, rate(2).key, T0 + 1400, window), 1);
      assert.equal(await usedBy(store, rate(2).key, T0 + 1400, HOUR), 3, 'a wider window');
    });

    test('quotas: deleteOlderThan drops only older charges', async (t) => {
      // PostgreSQL stamps charges by its own clock, not T0: see test/quota-exact.test.ts.
      if (backend === postgres) return t.skip('windows follow the database clock');
      const store = await backend.createDatabase().open();
      for (const at of [T0, T0 + 10, T0 + 20]) await store.quotas.charge([rate(10)], at);
      assert.equal(await store.quotas.deleteOlderThan(T0 + 10), 1);
      assert.equal(await usedBy(store, rate(10).key, T0 + 30), 2);
      assert.equal(await store.quotas.deleteOlderThan(T0 + 10), 0);
      assert.equal(await store.quotas.deleteOlderThan(T0 + 21), 2);
      assert.equal(await usedBy(store, rate(10).key, T0 + 30), 0);
    });

    test('quotas: concurrent charges, also through two stores, never pass the limit', async () => {
      const [one, two] = await openTwo(backend);
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, index) =>
          (index % 2 === 0 ? one : two).quotas.charge([rate(5)], T0),
        ),
      );
      assert.equal(outcomes.filter(({ admitted }) => admitted).length, 5);
      assert.equal(await usedBy(one, rate(5).key, T0), 5);
    });

    test('quotas: refuse charges they cannot sum faithfully', async () => {
      const store = await backend.createDatabase().open();
      await assertStoreError(
        store.quotas.charge([{ ...rate(5), amount: -1 }], T0),
        'STORE_INVALID_VALUE',
      );
      await assertStoreError(
        store.quotas.charge([{ ...rate(5), windowMs: 0 }], T0),
        'STORE_INVALID_VALUE',
      );
      await assertStoreError(store.quotas.charge([rate(5)], T0 + 0.5), 'STORE_INVALID_VALUE');
      assert.equal(await usedBy(store, rate(5).key, T0), 0);
    });

    test('approvals: values round-trip exactly, and a duplicate id conflicts', async () => {
      const store = await backend.createDatabase().open();
      const bare = approval('ap-bare', T0);
      const full = approval('ap-full', T0 + 1, {
        status: 'granted',
        decidedAt: T0 + 2,
        consumedAt: T0 + 3,
        user: 'alice@example.com',
        model: 'claude-sonnet',
        toolDefinitionHash: 'cd'.repeat(32),
        roles: [],
        approvalsRequired: 1,
        votes: [{ approver: 'bob@example.com', decision: 'approve', reason: 'ok ✓', at: T0 + 2 }],
      });
      await store.approvals.create(bare);
      await store.approvals.create(full);
      assert.deepEqual(await store.approvals.get('ap-bare'), bare);
      assert.deepEqual(await store.approvals.get('ap-full'), full);
      assert.equal(await store.approvals.get('ap-unknown'), undefined);
      await assertStoreError(store.approvals.create({ ...bare, agent: 'other' }), 'STORE_CONFLICT');
      assert.equal((await store.approvals.get('ap-bare'))?.agent, 'finance-bot');
    });

    test('approvals: list is newest first, filters by status and pages', async () => {
      const store = await backend.createDatabase().open();
      await store.approvals.create(approval('a', T0));
      await store.approvals.create(approval('c', T0 + 1, { status: 'refused' }));
      await store.approvals.create(approval('b', T0 + 1));
      await store.approvals.create(approval('d', T0 + 2));
      const ids = async (query?: Parameters<Store['approvals']['list']>[0]) =>
        (await store.approvals.list(query)).map(({ id }) => id);
      assert.deepEqual(await ids(), ['d', 'c', 'b', 'a']);
      assert.deepEqual(await ids({ status: 'pending' }), ['d', 'b', 'a']);
      assert.deepEqual(await ids({ status: 'refused' }), ['c']);
      assert.deepEqual(await ids({ status: 'granted' }), []);
      assert.deepEqual(await ids({ limit: 2 }), ['d', 'c']);
      assert.deepEqual(await ids({ status: 'pending', limit: 1 }), ['d']);
      await assertStoreError(store.approvals.list({ limit: 1001 }), 'STORE_INVALID_VALUE');
      await assertStoreError(store.approvals.list({ limit: 0 }), 'STORE_INVALID_VALUE');
    });

    test('approvals: the default page is 100 requests', async () => {
      const store = await backend.createDatabase().open();
      for (let index = 0; index < 101; index++) {
        await store.approvals.create(approval(`ap-${String(index).padStart(3, '0')}`, T0 + index));
      }
      const listed = await store.approvals.list();
      assert.equal(listed.length, 100);
      assert.equal(listed[0]?.id, 'ap-100');
      assert.equal(listed[99]?.id, 'ap-001');
      assert.equal((await store.approvals.list({ limit: 1000 })).length, 101);
    });

    test('approvals: concurrent updates, also through two stores, each see the last', async () => {
      const [one, two] = await openTwo(backend);
      await one.approvals.create(approval('ap-1', T0));
      const voters = Array.from({ length: 10 }, (_, index) => `approver-${index}`);
      const results = await Promise.all(
        voters.map((approver, index) =>
          (index % 2 === 0 ? one : two).approvals.update('ap-1', (current) => ({
            ...current,
            votes: [
              ...current.votes,
              { approver, decision: 'approve', reason: '', at: T0 + index },
            ],
          })),
        ),
      );
      const counts = results
        .map((result) => result?.votes.length)
        .sort((a, b) => (a ?? 0) - (b ?? 0));
      assert.deepEqual(counts, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'each update saw the one before');
      const stored = await two.approvals.get('ap-1');
      assert.deepEqual(stored?.votes.map(({ approver }) => approver).sort(), voters);
    });

    test('approvals: update returns the stored result and writes nothing when change throws', async () => {
      const store = await backend.createDatabase().open();
      const original = approval('ap-1', T0);
      await store.approvals.create(original);
      const granted = await store.approvals.update('ap-1', (current) => ({
        ...current,
        status: 'granted',
        decidedAt: T0 + 5,
        user: 'alice@example.com',
      }));
      const expected = {
        ...original,
        status: 'granted',
        decidedAt: T0 + 5,
        user: 'alice@example.com',
      };
      assert.deepEqual(granted, expected);
      assert.deepEqual(await store.approvals.get('ap-1'), expected);

      const refusal = new Error('already decided');
      const error = await store.approvals
        .update('ap-1', (current) => {
          assert.equal(current.status, 'granted');
          throw refusal;
        })
        .then(
          () => assert.fail('update must reject'),
          (caught: unknown) => caught,
        );
      assert.equal(error, refusal, 'the error of change() rejects the call as it was thrown');
      assert.deepEqual(await store.approvals.get('ap-1'), expected);

      await assertStoreError(
        store.approvals.update('ap-1', (current) => ({ ...current, id: 'ap-2' })),
        'STORE_INVALID_VALUE',
      );
      await assertStoreError(
        store.approvals.update('ap-1', (current) => ({ ...current, createdAt: 0.5 })),
        'STORE_INVALID_VALUE',
      );
      assert.deepEqual(await store.approvals.get('ap-1'), expected);
    });

    test('approvals: updating an unknown id resolves undefined without calling change', async () => {
      const store = await backend.createDatabase().open();
      let called = false;
      const result = await store.approvals.update('ap-unknown', (current) => {
        called = true;
        return current;
      });
      assert.equal(result, undefined);
      assert.equal(called, false);
      assert.deepEqual(await store.approvals.list(), []);
    });
  });
}

describe('SQLite file policy store', () => {
  test('two processes charging and voting at once are serialised', async () => {
    const url = `sqlite:${join(tempRoot, uniqueName('race'), 'warden.db')}`;
    const store = await openTracked(url);
    await store.approvals.create(approval('ap-race', T0));
    const perProcess = 150;
    const limit = 200;
    const votesPerProcess = 40;
    const moduleUrl = new URL('../src/store/open-store.ts', import.meta.url).href;
    const script = `
      const { openStore } = await import(${JSON.stringify(moduleUrl)});
      const store = await openStore(${JSON.stringify(url)});
      console.log('ready');
      await new Promise((resolve) => process.stdin.once('data', resolve));
      let admitted = 0;
      const charge = { key: 'rate:agent:race', amount: 1, limit: ${limit}, windowMs: ${HOUR} };
      for (let i = 0; i < ${perProcess}; i++) {
        if ((await store.quotas.charge([charge], ${T0})).admitted) admitted++;
        if (i >= ${votesPerProcess}) continue;
        const vote = { approver: process.pid + '-' + i, decision: 'approve', reason: '', at: ${T0} };
        await store.approvals.update('ap-race', (c) => ({ ...c, votes: [...c.votes, vote] }));
      }
      await store.close();
      console.log('admitted ' + admitted);
    `;
    const children = [0, 1].map(() => runChild(script));
    await Promise.all(children.map(({ ready }) => ready));
    for (const { start } of children) start();
    const outputs = await Promise.all(children.map(({ finished }) => finished));
    const admitted = outputs.map((output) => Number(/admitted (\d+)/.exec(output)?.[1]));
    assert.equal(
      admitted.reduce((sum, count) => sum + count, 0),
      limit,
      outputs.join('\n'),
    );
    assert.ok(
      admitted.every((count) => count > 0 && count <= perProcess),
      String(admitted),
    );
    assert.equal(await usedBy(store, 'rate:agent:race', T0), limit);
    const votes = (await store.approvals.get('ap-race'))?.votes ?? [];
    assert.equal(new Set(votes.map(({ approver }) => approver)).size, 2 * votesPerProcess);
  });
});

/** A child process running `script`: resolves `ready` on its first line, `finished` on exit 0. */
function runChild(script: string): {
  ready: Promise<void>;
  start: () => void;
  finished: Promise<string>;
} {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', script],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  // A child that died before reading stdin must fail the test through `finished`, not crash it.
  child.stdin.on('error', () => undefined);
  let output = '';
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes('ready')) markReady();
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const finished = new Promise<string>((resolve, reject) => {
    child.on('exit', (code) => {
      markReady();
      if (code === 0) resolve(output);
      else reject(new Error(`the child exited with ${code}:\n${output}`));
    });
  });
  return { ready, start: () => child.stdin.end('go\n'), finished };
}
