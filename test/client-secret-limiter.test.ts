/**
 * The client secret limiter, as an attacker meets it: one source that guesses is stopped, without
 * stopping the agent elsewhere; many sources together are bounded by the client's budget; and no
 * number of sources makes the limiter hold unbounded memory. The same rules are checked on the
 * in-memory limiter and on the store-backed one replicas share (SQLite and PostgreSQL), and the
 * store-backed one is checked to count one budget across replicas. Time is a fake clock, except
 * on PostgreSQL, whose own clock stamps failures.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createMemorySecretLimiter,
  createStoreSecretLimiter,
  sourceKeyOf,
  type ClientSecretLimiter,
  type SecretAttemptReservation,
} from '../src/identity/client-secret-limiter.js';
import type { Store } from '../src/store/types.js';
import {
  openTracked,
  POSTGRES_URL,
  tempRoot,
  testSchemas,
  uniqueName,
} from './support/store-databases.js';

const WINDOW_MS = 60_000;
/** PostgreSQL stamps failures with its own clock: to see them expire, a short window is waited out. */
const REAL_WINDOW_MS = 2000;

interface Limits {
  windowMs?: number;
  perSource?: number;
  perClient?: number;
  maxSources?: number;
}

interface Backend {
  readonly name: string;
  /** Whether the limiter reads the test's fake clock (PostgreSQL reads its own). */
  readonly fakeClock: boolean;
  /** One replica's limiter; `shared` names the database the replicas share. */
  create(limits: Limits, now: () => number, shared: string): Promise<ClientSecretLimiter>;
}

function storeLimiter(store: Store, limits: Limits, now: () => number, windowMs: number) {
  return createStoreSecretLimiter({
    repository: store.secretFailures,
    maxFailuresPerSource: limits.perSource ?? 3,
    maxFailuresPerClient: limits.perClient ?? 10,
    windowMs,
    now,
  });
}

const memory: Backend = {
  name: 'in memory',
  fakeClock: true,
  create: (limits, now) =>
    Promise.resolve(
      createMemorySecretLimiter({
        maxFailuresPerSource: limits.perSource ?? 3,
        maxFailuresPerClient: limits.perClient ?? 10,
        windowMs: WINDOW_MS,
        ...(limits.maxSources !== undefined && { maxTrackedSources: limits.maxSources }),
        now,
      }),
    ),
};

const sqlite: Backend = {
  name: 'on a SQLite file',
  fakeClock: true,
  create: async (limits, now, shared) =>
    storeLimiter(
      await openTracked(`sqlite:${join(tempRoot, `${shared}.db`)}`),
      limits,
      now,
      limits.windowMs ?? WINDOW_MS,
    ),
};

const postgres: Backend = {
  name: 'on PostgreSQL',
  fakeClock: false,
  create: async (limits, now, shared) => {
    if (!testSchemas.includes(shared)) testSchemas.push(shared);
    return storeLimiter(
      await openTracked(POSTGRES_URL, { schema: shared }),
      limits,
      now,
      limits.windowMs ?? WINDOW_MS,
    );
  },
};

async function setUp(backend: Backend, options: Limits = {}) {
  const clock = { now: 1_000_000 };
  const shared = uniqueName('limiter');
  const limiter = await backend.create(options, () => clock.now, shared);
  /** Another replica's limiter on the same database. */
  const replica = () => backend.create(options, () => clock.now, shared);
  const on = (target: ClientSecretLimiter) => ({
    /** A wrong secret: the reservation is kept (counted as a failure). */
    fail: (source: string, clientId = 'billing-bot') => target.reserve({ source, clientId }),
    /** The right secret, if it is checked at all. */
    succeed: async (source: string, clientId = 'billing-bot') => {
      const reservation = await target.reserve({ source, clientId });
      if (reservation.outcome === 'allowed') await target.succeeded(reservation.ticket);
      return reservation;
    },
  });
  return { clock, limiter, replica, on, ...on(limiter) };
}

function assertLimited(
  reservation: SecretAttemptReservation,
  limit: 'source' | 'client',
  message?: string,
): void {
  assert.equal(reservation.outcome, 'limited', message);
  assert.equal(reservation.outcome === 'limited' && reservation.limit, limit, message);
}

for (const backend of [memory, sqlite, postgres]) {
  describe(`the limiter ${backend.name}`, () => {
    test('a source is limited after N wrong secrets for a client, even with the right one', async () => {
      const { fail, succeed } = await setUp(backend, { perSource: 3 });
      for (let attempt = 0; attempt < 3; attempt += 1)
        assert.equal((await fail('203.0.113.7')).outcome, 'allowed');
      assertLimited(await fail('203.0.113.7'), 'source');
      assertLimited(await succeed('203.0.113.7'), 'source', 'not checked while limited');
    });

    test('the right secret from another source is not refused while one source is limited', async () => {
      const { fail, succeed } = await setUp(backend, { perSource: 3 });
      for (let attempt = 0; attempt < 12; attempt += 1) await fail('203.0.113.7');
      assert.equal((await succeed('198.51.100.20')).outcome, 'allowed');
      // And again, and again: the agent's own successes are never counted against it.
      for (let attempt = 0; attempt < 20; attempt += 1)
        assert.equal((await succeed('198.51.100.20')).outcome, 'allowed');
    });

    test('a limited source is limited for that client only', async () => {
      const { fail, succeed } = await setUp(backend, { perSource: 3 });
      for (let attempt = 0; attempt < 3; attempt += 1) await fail('203.0.113.7', 'billing-bot');
      assertLimited(await fail('203.0.113.7', 'billing-bot'), 'source');
      assert.equal((await succeed('203.0.113.7', 'research-bot')).outcome, 'allowed');
    });

    test('parallel guesses from one source cannot all be reserved before one fails', async () => {
      const { fail } = await setUp(backend, { perSource: 3 });
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => fail('203.0.113.7')));
      assert.equal(outcomes.filter((outcome) => outcome.outcome === 'allowed').length, 3);
    });

    test('a success forgets that source’s failures, not other sources’', async () => {
      const { fail, succeed } = await setUp(backend, { perSource: 3, perClient: 100 });
      await fail('198.51.100.20');
      await fail('198.51.100.20');
      assert.equal((await succeed('198.51.100.20')).outcome, 'allowed');
      for (let attempt = 0; attempt < 3; attempt += 1)
        assert.equal((await fail('198.51.100.20')).outcome, 'allowed', 'its count started over');
      for (let attempt = 0; attempt < 3; attempt += 1) await fail('203.0.113.7');
      await succeed('198.51.100.21');
      assertLimited(await fail('203.0.113.7'), 'source');
    });

    test('many sources together are bounded by the client budget; then a failed source gets no more, a clean one gets one try', async () => {
      const { fail, succeed } = await setUp(backend, { perSource: 3, perClient: 10 });
      // Five sources, two guesses each, every one under its own limit: the budget of 10 is spent.
      for (let source = 1; source <= 5; source += 1)
        for (let attempt = 0; attempt < 2; attempt += 1)
          assert.equal((await fail(`203.0.113.${source}`)).outcome, 'allowed');
      assertLimited(await fail('203.0.113.1'), 'client');
      assert.equal((await fail('203.0.113.77')).outcome, 'allowed', 'a fresh source: one try');
      assertLimited(await fail('203.0.113.77'), 'client', 'and no second');
      // The agent's own source never failed, so its right secret is still checked.
      assert.equal((await succeed('198.51.100.20')).outcome, 'allowed');
      assert.equal((await succeed('198.51.100.20')).outcome, 'allowed');
      // Its successes do not give the attackers their budget back.
      assertLimited(await fail('203.0.113.2'), 'client');
    });

    test('under a swarm, each guess needs a new source: guesses per window are bounded by sources used', async () => {
      const { fail } = await setUp(backend, { perSource: 3, perClient: 10 });
      let allowed = 0;
      // Fewer rounds on a store (each is a transaction); the bound holds from the second round on.
      for (let round = 0; round < (backend === memory ? 5 : 2); round += 1)
        for (let source = 0; source < 100; source += 1)
          if ((await fail(`10.0.${source >> 8}.${source & 255}`)).outcome === 'allowed')
            allowed += 1;
      // 10 from the budget, then one each for the 100 - (sources used for the budget) fresh sources.
      assert.ok(allowed <= 10 + 100, `${allowed} guesses checked`);
      assert.ok(allowed < 3 * 100, 'far fewer than every source’s own limit would allow');
    });
    test('failures expire after the window, and retry-after is within it', async () => {
      const windowMs = backend.fakeClock ? WINDOW_MS : REAL_WINDOW_MS;
      const { clock, fail } = await setUp(backend, { perSource: 3, windowMs });
      // On a real clock a slow machine may see the first failure expire: keep failing till limited.
      let limited = await fail('203.0.113.7');
      for (let attempt = 0; attempt < 6 && limited.outcome === 'allowed'; attempt += 1)
        limited = await fail('203.0.113.7');
      assert.ok(limited.outcome === 'limited');
      assert.ok(
        limited.retryAfterMs > 0 && limited.retryAfterMs <= windowMs,
        `${limited.retryAfterMs}`,
      );
      if (backend.fakeClock) clock.now += windowMs;
      else await sleep(windowMs + 50);
      assert.equal((await fail('203.0.113.7')).outcome, 'allowed');
    });
  });
}

for (const backend of [sqlite, postgres]) {
  describe(`replicas sharing one store ${backend.name}`, () => {
    test('wrong secrets sent to two replicas count once: N in all, not N each', async () => {
      const { replica, on, fail } = await setUp(backend, { perSource: 3 });
      const other = on(await replica());
      assert.equal((await fail('203.0.113.7')).outcome, 'allowed');
      assert.equal((await other.fail('203.0.113.7')).outcome, 'allowed');
      assert.equal((await fail('203.0.113.7')).outcome, 'allowed');
      assertLimited(await other.fail('203.0.113.7'), 'source', 'the second replica saw the first');
      assertLimited(await other.succeed('203.0.113.7'), 'source', 'not even checked');
    });

    test('parallel guesses spread over three replicas cannot all be reserved before one fails', async () => {
      const { replica, on, fail } = await setUp(backend, { perSource: 3 });
      const replicas = [{ fail }, on(await replica()), on(await replica())];
      const outcomes = await Promise.all(
        Array.from({ length: 15 }, (_, index) => replicas[index % 3]!.fail('203.0.113.7')),
      );
      assert.equal(outcomes.filter((outcome) => outcome.outcome === 'allowed').length, 3);
    });

    test('a success on one replica forgets that source’s failures on the others', async () => {
      const { replica, on, fail } = await setUp(backend, { perSource: 3, perClient: 100 });
      const other = on(await replica());
      await fail('198.51.100.20');
      await fail('198.51.100.20');
      assert.equal((await other.succeed('198.51.100.20')).outcome, 'allowed');
      for (let attempt = 0; attempt < 3; attempt += 1)
        assert.equal((await fail('198.51.100.20')).outcome, 'allowed', 'its count started over');
    });

    test('the client budget is one across replicas', async () => {
      const { replica, on, fail } = await setUp(backend, { perSource: 3, perClient: 4 });
      const other = on(await replica());
      await fail('203.0.113.1');
      await fail('203.0.113.1');
      await other.fail('203.0.113.2');
      await other.fail('203.0.113.2');
      assertLimited(await fail('203.0.113.2'), 'client');
      assert.equal((await other.succeed('198.51.100.20')).outcome, 'allowed', 'the agent gets in');
    });
  });
}

test('in memory: failures expire after the window, and retry-after says exactly when', async () => {
  const { clock, fail } = await setUp(memory, { perSource: 3 });
  for (let attempt = 0; attempt < 3; attempt += 1) {
    await fail('203.0.113.7');
    clock.now += 1000;
  }
  const limited = await fail('203.0.113.7');
  assert.ok(limited.outcome === 'limited');
  assert.equal(limited.retryAfterMs, WINDOW_MS - 3000);
  clock.now += limited.retryAfterMs;
  assert.equal((await fail('203.0.113.7')).outcome, 'allowed');
});

/** The in-memory limiter with its size, for the tests of its bounds. */
function setUpMemory(options: Limits) {
  const limiter = createMemorySecretLimiter({
    maxFailuresPerSource: options.perSource ?? 3,
    maxFailuresPerClient: options.perClient ?? 10,
    windowMs: WINDOW_MS,
    ...(options.maxSources !== undefined && { maxTrackedSources: options.maxSources }),
    now: () => 1_000_000,
  });
  const fail = (source: string) => limiter.reserve({ source, clientId: 'billing-bot' });
  return Promise.resolve({ limiter, fail });
}

test('memory stays bounded under 10,000 distinct sources', async () => {
  const { limiter, fail } = await setUpMemory({ perSource: 3, perClient: 50, maxSources: 1000 });
  for (let source = 0; source < 10_000; source += 1)
    await fail(`10.${source >> 16}.${(source >> 8) & 255}.${source & 255}`);
  assert.ok(limiter.trackedSources() <= 1000, `${limiter.trackedSources()} sources held`);
});

test('memory stays bounded at the default cap too', async () => {
  const limiter = createMemorySecretLimiter({ now: () => 0 });
  for (let source = 0; source < 12_000; source += 1)
    await limiter.reserve({
      source: `10.${source >> 16}.${(source >> 8) & 255}.${source & 255}`,
      clientId: 'billing-bot',
    });
  assert.ok(limiter.trackedSources() <= 10_000, `${limiter.trackedSources()} sources held`);
});

test('a limited source is dropped only once the cap is full of sources that failed after it', async () => {
  const { limiter, fail } = await setUpMemory({
    perSource: 3,
    perClient: 100_000,
    maxSources: 100,
  });
  for (let attempt = 0; attempt < 3; attempt += 1) await fail('203.0.113.7');
  for (let source = 0; source < 99; source += 1) await fail(`10.0.0.${source}`);
  assert.equal(limiter.trackedSources(), 100);
  assertLimited(await fail('203.0.113.7'), 'source', 'still limited with the cap just reached');
});

test('IPv6 sources are counted per /64, and IPv4-mapped addresses as IPv4', async () => {
  assert.equal(sourceKeyOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKeyOf('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(sourceKeyOf('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64');
  assert.equal(sourceKeyOf('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(sourceKeyOf('::1'), '0:0:0:0::/64');
  assert.equal(sourceKeyOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(sourceKeyOf('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(sourceKeyOf('a::b:c:d:e:192.0.2.1'), 'a:0:b:c::/64');
  assert.equal(sourceKeyOf('203.0.113.7'), '203.0.113.7');
  assert.equal(sourceKeyOf('unknown'), 'unknown');

  const { fail } = await setUp(memory, { perSource: 3 });
  // One host rotating through the addresses of its /64 is still one source.
  for (let host = 1; host <= 3; host += 1) await fail(`2001:db8:1:2::${host.toString(16)}`);
  assertLimited(await fail('2001:db8:1:2::ffff'), 'source');
  assert.equal((await fail('2001:db8:1:3::1')).outcome, 'allowed', 'the next /64 is another');
  // The mapped and plain forms of one IPv4 address share a budget.
  for (let attempt = 0; attempt < 3; attempt += 1) await fail('::ffff:198.51.100.9');
  assertLimited(await fail('198.51.100.9'), 'source');
});
