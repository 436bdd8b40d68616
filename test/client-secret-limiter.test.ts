/**
 * The client secret limiter, as an attacker meets it: one source that guesses is stopped, without
 * stopping the agent elsewhere; many sources together are bounded by the client's budget; and no
 * number of sources makes the limiter hold unbounded memory. Time is a fake clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createMemorySecretLimiter,
  sourceKeyOf,
  type SecretAttemptReservation,
} from '../src/identity/client-secret-limiter.js';

const WINDOW_MS = 60_000;

function setUp(options: { perSource?: number; perClient?: number; maxSources?: number } = {}) {
  const clock = { now: 1_000_000 };
  const limiter = createMemorySecretLimiter({
    maxFailuresPerSource: options.perSource ?? 3,
    maxFailuresPerClient: options.perClient ?? 10,
    windowMs: WINDOW_MS,
    ...(options.maxSources !== undefined && { maxTrackedSources: options.maxSources }),
    now: () => clock.now,
  });
  /** A wrong secret: the reservation is kept (counted as a failure). */
  const fail = (source: string, clientId = 'billing-bot') => limiter.reserve({ source, clientId });
  /** The right secret, if it is checked at all. */
  const succeed = async (source: string, clientId = 'billing-bot') => {
    const reservation = await limiter.reserve({ source, clientId });
    if (reservation.outcome === 'allowed') await limiter.succeeded(reservation.ticket);
    return reservation;
  };
  return { clock, limiter, fail, succeed };
}

function assertLimited(
  reservation: SecretAttemptReservation,
  limit: 'source' | 'client',
  message?: string,
): void {
  assert.equal(reservation.outcome, 'limited', message);
  assert.equal(reservation.outcome === 'limited' && reservation.limit, limit, message);
}

test('a source is limited after N wrong secrets for a client, even with the right one', async () => {
  const { fail, succeed } = setUp({ perSource: 3 });
  for (let attempt = 0; attempt < 3; attempt += 1)
    assert.equal((await fail('203.0.113.7')).outcome, 'allowed');
  assertLimited(await fail('203.0.113.7'), 'source');
  assertLimited(await succeed('203.0.113.7'), 'source', 'not checked while limited');
});

test('the right secret from another source is not refused while one source is limited', async () => {
  const { fail, succeed } = setUp({ perSource: 3 });
  for (let attempt = 0; attempt < 12; attempt += 1) await fail('203.0.113.7');
  assert.equal((await succeed('198.51.100.20')).outcome, 'allowed');
  // And again, and again: the agent's own successes are never counted against it.
  for (let attempt = 0; attempt < 20; attempt += 1)
    assert.equal((await succeed('198.51.100.20')).outcome, 'allowed');
});

test('a limited source is limited for that client only', async () => {
  const { fail, succeed } = setUp({ perSource: 3 });
  for (let attempt = 0; attempt < 3; attempt += 1) await fail('203.0.113.7', 'billing-bot');
  assertLimited(await fail('203.0.113.7', 'billing-bot'), 'source');
  assert.equal((await succeed('203.0.113.7', 'research-bot')).outcome, 'allowed');
});

test('failures expire after the window, and retry-after says when', async () => {
  const { clock, fail } = setUp({ perSource: 3 });
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

test('parallel guesses from one source cannot all be reserved before one fails', async () => {
  const { fail } = setUp({ perSource: 3 });
  const outcomes = await Promise.all(Array.from({ length: 20 }, () => fail('203.0.113.7')));
  assert.equal(outcomes.filter((outcome) => outcome.outcome === 'allowed').length, 3);
});

test('a success forgets that source’s failures, not other sources’', async () => {
  const { fail, succeed } = setUp({ perSource: 3, perClient: 100 });
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
  const { fail, succeed } = setUp({ perSource: 3, perClient: 10 });
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
  const { fail } = setUp({ perSource: 3, perClient: 10 });
  let allowed = 0;
  for (let round = 0; round < 5; round += 1)
    for (let source = 0; source < 100; source += 1)
      if ((await fail(`10.0.${source >> 8}.${source & 255}`)).outcome === 'allowed') allowed += 1;
  // 10 from the budget, then one each for the 100 - (sources used for the budget) fresh sources.
  assert.ok(allowed <= 10 + 100, `${allowed} guesses checked`);
  assert.ok(allowed < 3 * 100, 'far fewer than every source’s own limit would allow');
});

test('memory stays bounded under 10,000 distinct sources', async () => {
  const { limiter, fail } = setUp({ perSource: 3, perClient: 50, maxSources: 1000 });
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
  const { limiter, fail } = setUp({ perSource: 3, perClient: 100_000, maxSources: 100 });
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

  const { fail } = setUp({ perSource: 3 });
  // One host rotating through the addresses of its /64 is still one source.
  for (let host = 1; host <= 3; host += 1) await fail(`2001:db8:1:2::${host.toString(16)}`);
  assertLimited(await fail('2001:db8:1:2::ffff'), 'source');
  assert.equal((await fail('2001:db8:1:3::1')).outcome, 'allowed', 'the next /64 is another');
  // The mapped and plain forms of one IPv4 address share a budget.
  for (let attempt = 0; attempt < 3; attempt += 1) await fail('::ffff:198.51.100.9');
  assertLimited(await fail('198.51.100.9'), 'source');
});
