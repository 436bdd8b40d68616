/**
 * Quotas stay exact when an agent's calls race each other, on one replica and split across
 * replicas: a rate admits exactly its limit, a budget is never exceeded and, when demand exceeds
 * it, left unused by less than one call's amount. The attack: spread a burst over three replicas
 * (three stores, each with its own pool, on one PostgreSQL schema) or lean on a replica whose
 * clock is off by 30 s, and get more through than the limit. SQLite is held to the same with two
 * stores on one file and charges stamped out of order (a stamp read before the lock was taken).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { QuotaConfig } from '../src/config/policy-config.js';
import type { Identity } from '../src/domain/identity.js';
import { createQuotaLedger } from '../src/policy/quota-ledger.js';
import type { QuotaCharge, Store } from '../src/store/types.js';
import {
  adminClient,
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';

const HOUR = 3_600_000;
const RATE_LIMIT = 50;
const BUDGET = 5_000;
const MAX_AMOUNT = 400;
/** Each race is run this many times over: a race that is lost only sometimes still shows. */
const ROUNDS = 2;
/** A burst's calls start within this many milliseconds of each other. */
const BURST_SPREAD_MS = 40;

/** A replica: its store, the clock it hands the store, and its PostgreSQL schema. */
interface Replica {
  readonly store: Store;
  readonly now: () => number;
  readonly schema?: string;
}

async function openPostgresReplicas(skewsMs: readonly number[]): Promise<Replica[]> {
  const schema = uniqueName('warden_quota');
  testSchemas.push(schema);
  const replicas: Replica[] = [];
  // One after the other: the first creates the schema, the others find it migrated.
  for (const skew of skewsMs) {
    replicas.push({
      store: await openTracked(POSTGRES_URL, { schema }),
      now: () => Date.now() + skew,
      schema,
    });
  }
  return replicas;
}

function rate(key: string, windowMs = HOUR): QuotaCharge {
  return { key, amount: 1, limit: RATE_LIMIT, windowMs };
}

function budget(key: string, amount: number): QuotaCharge {
  return { key, amount, limit: BUDGET, windowMs: HOUR };
}

/** 1..MAX_AMOUNT, enough of them that the demand is at least twice the budget. */
function randomAmounts(): number[] {
  const amounts: number[] = [];
  for (let total = 0; total < 2 * BUDGET;) {
    const amount = 1 + Math.floor(Math.random() * MAX_AMOUNT);
    amounts.push(amount);
    total += amount;
  }
  return amounts;
}

/**
 * Sends the i-th of `charges` through replica i mod n, all within a few tens of milliseconds, as a
 * burst arrives: each reads its clock when it starts, then queues for a connection and the lock.
 * What each admitted.
 */
async function chargeSplit(
  replicas: readonly Replica[],
  charges: readonly (readonly QuotaCharge[])[],
): Promise<boolean[]> {
  return Promise.all(
    charges.map(async (charge, index) => {
      const { store, now } = replicas[index % replicas.length] as Replica;
      await delay(Math.floor(Math.random() * BURST_SPREAD_MS));
      return (await store.quotas.charge(charge, now())).admitted;
    }),
  );
}

/** What a key holds now, as the store counts it (a probe that cannot fit records nothing). */
async function usedBy(replica: Replica, key: string, windowMs = HOUR): Promise<number> {
  const probe = await replica.store.quotas.charge(
    [{ key, amount: 0, limit: -1, windowMs }],
    replica.now(),
  );
  assert.equal(probe.admitted, false);
  return probe.used[0] ?? Number.NaN;
}

function sumAdmitted(amounts: readonly number[], admitted: readonly boolean[]): number {
  return amounts.reduce((sum, amount, index) => (admitted[index] === true ? sum + amount : sum), 0);
}

/**
 * Within the budget, and short of it by less than one refused call's amount. The store alone is
 * held to the smallest: every call it refused did not fit what was charged by then. Through the
 * ledger, to the largest: a call is refused up front for room claimed by calls still under way,
 * and a claim the store then refused (another replica took the room) left less than itself.
 */
function assertBudgetExact(
  total: number,
  amounts: readonly number[],
  admitted: boolean[],
  shortBy: 'smallest' | 'largest' = 'smallest',
): void {
  const detail = `admitted ${total} of ${amounts.join(',')}`;
  assert.ok(total <= BUDGET, `budget exceeded: ${detail}`);
  const refused = amounts.filter((_, index) => admitted[index] !== true);
  assert.ok(refused.length > 0, `demand exceeded the budget, yet nothing was refused: ${detail}`);
  const slack = shortBy === 'smallest' ? Math.min(...refused) : Math.max(...refused);
  assert.ok(total > BUDGET - slack, `budget under-used by ${slack} or more: ${detail}`);
}

async function assertRateExact(replicas: readonly Replica[], key: string, windowMs = HOUR) {
  const calls = Array.from({ length: 200 }, () => [rate(key, windowMs)]);
  const admitted = await chargeSplit(replicas, calls);
  assert.equal(admitted.filter(Boolean).length, RATE_LIMIT);
  for (const replica of replicas) assert.equal(await usedBy(replica, key, windowMs), RATE_LIMIT);
}

async function assertBudgetBurstExact(replicas: readonly Replica[], key: string) {
  const amounts = randomAmounts();
  const admitted = await chargeSplit(
    replicas,
    amounts.map((amount) => [budget(key, amount)]),
  );
  const total = sumAdmitted(amounts, admitted);
  assertBudgetExact(total, amounts, admitted);
  for (const replica of replicas) assert.equal(await usedBy(replica, key), total);
}

/** A budget burst through each replica's quota ledger: checked (claiming room), then charged. */
async function assertLedgerBudgetExact(replicas: readonly Replica[], round = 0): Promise<void> {
  const quota: QuotaConfig = {
    name: `daily_spend_${round}`,
    per: 'agent',
    tool: 'ledger.pay',
    role: undefined,
    sum: 'amount',
    limit: BUDGET,
    windowMs: HOUR,
  };
  const identity = { agent: 'finance-bot', user: undefined, roles: ['payer'] } as Pick<
    Identity,
    'agent' | 'user' | 'roles'
  >;
  const ledgers = replicas.map(({ store, now }) =>
    createQuotaLedger({ quotas: () => [quota], store, now }),
  );
  const amounts = randomAmounts();
  const admitted = await Promise.all(
    amounts.map(async (amount, index) => {
      const ledger = ledgers[index % ledgers.length] as (typeof ledgers)[number];
      const call = { identity, target: 'ledger.pay', arguments: { amount } };
      await delay(Math.floor(Math.random() * BURST_SPREAD_MS));
      const check = await ledger.check(call, { hold: true });
      if (!check.fits) return false;
      await delay(Math.floor(Math.random() * 5)); // the decision's audit append
      return (await check.claim.charge()) === undefined;
    }),
  );
  const total = sumAdmitted(amounts, admitted);
  assertBudgetExact(total, amounts, admitted, 'largest');
  assert.equal(
    await usedBy(replicas[0] as Replica, `daily_spend_${round}|agent|finance-bot|ledger.pay`),
    total,
  );
}

describe('PostgreSQL quotas across replicas', () => {
  test('200 rate charges split over three replicas admit exactly the limit of 50', async () => {
    const replicas = await openPostgresReplicas([0, 0, 0]);
    for (let round = 0; round < ROUNDS; round++) {
      await assertRateExact(replicas, `rate|agent|split-${round}|all`);
    }
  });

  test('a budget burst split over three replicas is never exceeded nor under-used', async () => {
    const replicas = await openPostgresReplicas([0, 0, 0]);
    for (let round = 0; round < ROUNDS; round++) {
      await assertBudgetBurstExact(replicas, `budget|agent|split-${round}|pay`);
    }
  });

  test('a budget burst on one replica is never exceeded nor under-used', async () => {
    const replicas = await openPostgresReplicas([0]);
    for (let round = 0; round < ROUNDS; round++) {
      await assertBudgetBurstExact(replicas, `budget|agent|single-${round}|pay`);
    }
  });

  test('a replica whose clock is 30 s ahead or behind cannot shift the window', async () => {
    const replicas = await openPostgresReplicas([0, 30_000, -30_000]);
    // A 20 s window: a window ending at a clock 30 s off would hold none of the others' charges.
    const window = 20_000;
    for (let round = 0; round < ROUNDS; round++) {
      await assertRateExact(replicas, `rate|agent|skew-${round}|all`, window);
      await assertBudgetBurstExact(replicas, `budget|agent|skew-${round}|pay`);
    }
    // Stamped by the database's clock (on this machine), not by the replica 30 s ahead.
    const ahead = replicas[1] as Replica;
    const before = Date.now();
    assert.equal(
      (await ahead.store.quotas.charge([rate('rate|stamp', window)], ahead.now())).admitted,
      true,
    );
    const client = await adminClient();
    const { rows } = await client.query<{ charged_at: string }>(
      `SELECT charged_at FROM "${ahead.schema ?? ''}".quota_charges WHERE quota_key = $1`,
      ['rate|stamp'],
    );
    const stampedAt = Number(rows[0]?.charged_at);
    assert.ok(Math.abs(stampedAt - before) < 10_000, `stamped ${stampedAt - before} ms off`);
  });

  test('rate and budget charged together are all-or-nothing, in either order, without deadlock', async () => {
    const replicas = await openPostgresReplicas([0, 0, 0]);
    for (let round = 0; round < ROUNDS; round++) {
      const rateKey = `rate|agent|pair-${round}|all`;
      const budgetKey = `budget|agent|pair-${round}|pay`;
      const amounts = Array.from({ length: 120 }, () => 1 + Math.floor(Math.random() * 150));
      // Half the calls list the budget first: the locks must still be taken in one order.
      const calls = amounts.map((amount, index) =>
        index % 2 === 0
          ? [rate(rateKey), budget(budgetKey, amount)]
          : [budget(budgetKey, amount), rate(rateKey)],
      );
      const admitted = await chargeSplit(replicas, calls);
      const count = admitted.filter(Boolean).length;
      const total = sumAdmitted(amounts, admitted);
      const replica = replicas[0] as Replica;
      assert.ok(count <= RATE_LIMIT && total <= BUDGET, `admitted ${count} calls, ${total}`);
      // Nothing half-charged: both keys hold exactly the admitted calls.
      assert.equal(await usedBy(replica, rateKey), count);
      assert.equal(await usedBy(replica, budgetKey), total);
      // Whichever limit stopped the burst was reached.
      const refused = amounts.filter((_, index) => admitted[index] !== true);
      assert.ok(
        count === RATE_LIMIT || total > BUDGET - Math.min(...refused),
        `neither limit reached: ${count} calls, ${total}`,
      );
    }
  });

  test('checked then charged through each replica’s quota ledger, the budget holds', async () => {
    await assertLedgerBudgetExact(await openPostgresReplicas([0, 30_000, -30_000]));
  });

  test('checked then charged through one replica’s quota ledger, the budget holds', async () => {
    const replicas = await openPostgresReplicas([0]);
    for (let round = 0; round < ROUNDS; round++) await assertLedgerBudgetExact(replicas, round);
  });
});

describe('PostgreSQL quota windows by the database clock', () => {
  /** Writes charges at stamps relative to the database's clock, as replicas did earlier. */
  async function seed(schema: string, key: string, ...msAgo: number[]): Promise<void> {
    const client = await adminClient();
    for (const ago of msAgo) {
      await client.query(
        `INSERT INTO "${schema}".quota_charges (quota_key, amount, charged_at)
         VALUES ($1, 1, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - $2)`,
        [key, ago],
      );
    }
  }

  test('the window slides by the database clock, whatever the caller says it is', async () => {
    const [replica] = (await openPostgresReplicas([0])) as [Replica];
    const key = 'rate|agent|slide|all';
    const minute = 60_000;
    // 90 s ago has left a one-minute window; 30 s ago has not (30 s of margin either side).
    await seed(replica.schema ?? '', key, 90_000, 30_000);
    const charge = { key, amount: 1, limit: 2, windowMs: minute };
    const farAhead = Date.now() + 10 * minute;
    assert.deepEqual(await replica.store.quotas.charge([charge], farAhead), {
      admitted: true,
      used: [1],
      exceeded: undefined,
    });
    const farBehind = Date.now() - 10 * minute;
    assert.deepEqual(await replica.store.quotas.charge([charge], farBehind), {
      admitted: false,
      used: [2],
      exceeded: 0,
    });
    assert.equal(await usedBy(replica, key, 2 * minute), 3, 'a wider window');
  });

  test('a charge stamped later than the database clock still counts', async () => {
    const [replica] = (await openPostgresReplicas([0])) as [Replica];
    const key = 'rate|agent|future|all';
    // Written by a replica stamping with its own clock 30 s ahead (an older Warden).
    await seed(replica.schema ?? '', key, -30_000);
    const charge = { key, amount: 1, limit: 1, windowMs: 1_000 };
    const outcome = await replica.store.quotas.charge([charge], replica.now());
    assert.deepEqual(outcome, { admitted: false, used: [1], exceeded: 0 });
  });

  test('deleteOlderThan drops only charges stamped before the given time', async () => {
    const [replica] = (await openPostgresReplicas([0])) as [Replica];
    const key = 'rate|agent|retention|all';
    await seed(replica.schema ?? '', key, 3 * HOUR, 2 * HOUR, 0);
    assert.equal(await replica.store.quotas.deleteOlderThan(Date.now() - 2.5 * HOUR), 1);
    assert.equal(await usedBy(replica, key, 4 * HOUR), 2);
    assert.equal(await replica.store.quotas.deleteOlderThan(Date.now() - HOUR), 1);
    assert.equal(await usedBy(replica, key, 4 * HOUR), 1);
  });
});

describe('SQLite quotas across two stores on one file', () => {
  /** Two stores on one file; each charge stamped up to 5 s early, as if read long before the lock. */
  async function openSqliteReplicas(): Promise<Replica[]> {
    const url = `sqlite:${join(tempRoot, uniqueName('quota'), 'warden.db')}`;
    const stores = [await openTracked(url), await openTracked(url)];
    return stores.map((store) => ({
      store,
      now: () => Date.now() - Math.floor(Math.random() * 5_000),
    }));
  }

  test('charges stamped out of order still admit exactly the rate limit', async () => {
    const replicas = await openSqliteReplicas();
    for (let round = 0; round < ROUNDS; round++) {
      await assertRateExact(replicas, `rate|agent|sqlite-${round}|all`);
    }
  });

  test('a budget burst stamped out of order is never exceeded nor under-used', async () => {
    const replicas = await openSqliteReplicas();
    for (let round = 0; round < ROUNDS; round++) {
      await assertBudgetBurstExact(replicas, `budget|agent|sqlite-${round}|pay`);
    }
  });
});
