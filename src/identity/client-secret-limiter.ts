/**
 * Limits the guessing of client secrets at the token endpoint without handing strangers a way to
 * lock an agent out. Failures are counted per source and client id, so one source's failures
 * never refuse another source's correct secret. A budget per client across all sources bounds
 * what many sources guess together: once it is spent, only sources without a recent failure for
 * that client are still checked, one attempt each. The agent's own source, which does not fail,
 * keeps getting tokens; an attacker needs a fresh source for every further guess.
 *
 * Two limiters decide alike (`decideSecretAttempt`): one in memory, for a single process, and one
 * on the store, so replicas behind a balancer share one count rather than each allowing its own.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { RecentSecretFailures, SecretFailureRepository } from '../store/types.js';

export interface SecretAttempt {
  /** The remote address the attempt came from. */
  readonly source: string;
  readonly clientId: string;
}

/** One reserved attempt, handed back when the secret turns out to be right. */
export interface SecretAttemptTicket extends SecretAttempt {
  readonly at: number;
  /** Whether the attempt was counted against the client's budget across sources. */
  readonly countedForClient: boolean;
  /** The store's id of that count, when a store keeps it. */
  readonly clientFailureId: string | undefined;
}

export type SecretAttemptReservation =
  | { readonly outcome: 'allowed'; readonly ticket: SecretAttemptTicket }
  | {
      readonly outcome: 'limited';
      /** `source`: this source failed too often; `client`: the client's budget is spent. */
      readonly limit: 'source' | 'client';
      readonly retryAfterMs: number;
    };

export interface ClientSecretLimiter {
  /**
   * Reserves one attempt before the secret is checked; it counts as a failure until `succeeded`
   * is called, so parallel guesses cannot all start before the first one fails.
   */
  reserve(attempt: SecretAttempt): Promise<SecretAttemptReservation>;
  /**
   * The secret was right: this source's failures for the client are forgotten, and the attempt no
   * longer counts against the client. Other sources' failures still count.
   */
  succeeded(ticket: SecretAttemptTicket): Promise<void>;
}

export interface SecretLimits {
  /** Failed attempts per source and client within the window; default 10. */
  readonly maxFailuresPerSource?: number;
  /** Failed attempts per client from all sources within the window; default 50. */
  readonly maxFailuresPerClient?: number;
  /** Default one minute. */
  readonly windowMs?: number;
}

export interface MemorySecretLimiterOptions extends SecretLimits {
  /** Source and client pairs remembered at once; the least recently failed are dropped first. */
  readonly maxTrackedSources?: number;
  /** Client ids remembered at once (the endpoint counts registered clients only). */
  readonly maxTrackedClients?: number;
  readonly now?: () => number;
}

/** What a limiter does with one attempt, given the failures recorded so far. */
export type SecretAttemptDecision =
  | Extract<SecretAttemptReservation, { outcome: 'limited' }>
  | { readonly outcome: 'allowed'; readonly countForClient: boolean };

/**
 * The rule both limiters apply: a source that failed too often for the client is refused; with
 * the client's budget spent, a source that has failed for it gets no more tries, while one that
 * has not still gets its secret checked (uncounted), so the agent itself is never locked out.
 */
export function decideSecretAttempt(
  recent: RecentSecretFailures,
  limits: Required<SecretLimits>,
): SecretAttemptDecision {
  const { now, bySource, byClient } = recent;
  const oldestBySource = bySource[0];
  if (oldestBySource !== undefined && bySource.length >= limits.maxFailuresPerSource)
    return limited('source', oldestBySource + limits.windowMs - now);
  const oldestByClient = byClient[0];
  const clientSpent =
    oldestByClient !== undefined && byClient.length >= limits.maxFailuresPerClient;
  if (clientSpent && bySource.length > 0)
    return limited('client', oldestByClient + limits.windowMs - now);
  return { outcome: 'allowed', countForClient: !clientSpent };
}

function limitsOf(options: SecretLimits): Required<SecretLimits> {
  return {
    maxFailuresPerSource: options.maxFailuresPerSource ?? 10,
    maxFailuresPerClient: options.maxFailuresPerClient ?? 50,
    windowMs: options.windowMs ?? 60_000,
  };
}

export function createMemorySecretLimiter(
  options: MemorySecretLimiterOptions = {},
): ClientSecretLimiter & { readonly trackedSources: () => number } {
  const limits = limitsOf(options);
  const now = options.now ?? Date.now;
  const sources = createFailureLog(options.maxTrackedSources ?? 10_000, limits.windowMs);
  const clients = createFailureLog(options.maxTrackedClients ?? 10_000, limits.windowMs);

  return {
    reserve(attempt) {
      const at = now();
      const sourceKey = `${sourceKeyOf(attempt.source)}\n${attempt.clientId}`;
      const decision = decideSecretAttempt(
        {
          now: at,
          bySource: sources.recent(sourceKey, at),
          byClient: clients.recent(attempt.clientId, at),
        },
        limits,
      );
      if (decision.outcome === 'limited') return Promise.resolve(decision);
      sources.add(sourceKey, at);
      if (decision.countForClient) clients.add(attempt.clientId, at);
      const ticket = {
        ...attempt,
        at,
        countedForClient: decision.countForClient,
        clientFailureId: undefined,
      };
      return Promise.resolve({ outcome: 'allowed', ticket });
    },
    succeeded(ticket) {
      sources.forget(`${sourceKeyOf(ticket.source)}\n${ticket.clientId}`);
      if (ticket.countedForClient) clients.remove(ticket.clientId, ticket.at);
      return Promise.resolve();
    },
    trackedSources: () => sources.size(),
  };
}

export interface StoreSecretLimiterOptions extends SecretLimits {
  readonly repository: SecretFailureRepository;
  /** The caller's clock, used on SQLite; PostgreSQL stamps failures with its own. */
  readonly now?: () => number;
  /** Told when expired failures cannot be deleted (they are retried a window later). */
  readonly onError?: (error: unknown) => void;
}

/** Expired failures deleted per sweep; a sweep runs at most once a window in each process. */
const PRUNE_BATCH = 10_000;

/**
 * The limiter replicas share: every attempt is decided and recorded in one store transaction
 * serialised per client, so ten wrong secrets are ten whichever replicas they were sent to, and
 * parallel guesses on several replicas cannot all pass before the first is counted.
 */
export function createStoreSecretLimiter(options: StoreSecretLimiterOptions): ClientSecretLimiter {
  const { repository } = options;
  const limits = limitsOf(options);
  const now = options.now ?? Date.now;
  // A client's own old failures go at its next attempt; this sweep takes those of the others.
  let sweptAt = now();
  const sweep = (at: number): void => {
    if (at - sweptAt < limits.windowMs) return;
    sweptAt = at;
    repository
      .deleteExpired(limits.windowMs, at - limits.windowMs, PRUNE_BATCH)
      .catch((error: unknown) => options.onError?.(error));
  };
  return {
    async reserve(attempt) {
      sweep(now());
      const source = sourceKeyOf(attempt.source);
      // `decide` runs inside the transaction; what it decided is kept here to answer with.
      const decided: { value?: SecretAttemptDecision } = {};
      const recorded = await repository.reserve(
        { clientId: attempt.clientId, source, windowMs: limits.windowMs, now: now() },
        (recent) => {
          const decision = decideSecretAttempt(recent, limits);
          decided.value = decision;
          if (decision.outcome === 'limited') return 'none';
          return decision.countForClient ? 'source_and_client' : 'source';
        },
      );
      const decision = decided.value;
      if (decision === undefined) throw new Error('the secret failure store did not decide');
      if (decision.outcome === 'limited') return decision;
      if (recorded === undefined) throw new Error('the secret failure store recorded nothing');
      const ticket: SecretAttemptTicket = {
        ...attempt,
        at: recorded.at,
        countedForClient: recorded.clientFailureId !== undefined,
        clientFailureId: recorded.clientFailureId,
      };
      return { outcome: 'allowed', ticket };
    },
    succeeded(ticket) {
      return repository.forgive(
        ticket.clientId,
        sourceKeyOf(ticket.source),
        ticket.clientFailureId,
      );
    },
  };
}

function limited(
  limit: 'source' | 'client',
  retryAfterMs: number,
): Extract<SecretAttemptReservation, { outcome: 'limited' }> {
  return { outcome: 'limited', limit, retryAfterMs: Math.max(0, retryAfterMs) };
}

/**
 * The unit a source is counted in: an IPv4 address, or an IPv6 /64 (one host usually holds a
 * whole /64, so counting single IPv6 addresses would give it 2^64 budgets).
 */
export function sourceKeyOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined && isIPv4(mapped)) return mapped;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('%')[0]?.split('::') ?? [];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  // An embedded IPv4 address (`64:ff9b::192.0.2.1`) stands for two groups.
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const missing = 8 - width(headGroups) - width(tailGroups);
  const groups = [...headGroups, ...Array<string>(Math.max(0, missing)).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * Failure times per key within a sliding window, with a bounded number of keys. Keys are kept in
 * order of their last failure, so the first ones are the first to expire and, when the log is
 * full, the first to be dropped (which only ever gives a source back its budget early).
 */
function createFailureLog(maxKeys: number, windowMs: number) {
  const log = new Map<string, number[]>();

  const makeRoom = (): void => {
    for (const key of log.keys()) {
      if (log.size < maxKeys) return;
      log.delete(key);
    }
  };

  return {
    /** The failure times of the key still in the window, oldest first. */
    recent(key: string, at: number): readonly number[] {
      const times = log.get(key);
      if (!times) return [];
      const firstRecent = times.findIndex((time) => time > at - windowMs);
      if (firstRecent === -1) {
        log.delete(key);
        return [];
      }
      if (firstRecent > 0) times.splice(0, firstRecent);
      return times;
    },
    add(key: string, at: number): void {
      const times = log.get(key);
      if (times) {
        log.delete(key);
        times.push(at);
        log.set(key, times);
        return;
      }
      makeRoom();
      log.set(key, [at]);
    },
    remove(key: string, at: number): void {
      const times = log.get(key);
      const index = times?.lastIndexOf(at) ?? -1;
      if (times && index !== -1) times.splice(index, 1);
      if (times?.length === 0) log.delete(key);
    },
    forget(key: string): void {
      log.delete(key);
    },
    size: () => log.size,
  };
}
