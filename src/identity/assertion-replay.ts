/**
 * Keeps a client assertion from being used twice (RFC 7523 §3): each (agent, jti) is accepted
 * once until the assertion expires. With a store, the store decides, so an assertion used on one
 * replica is a replay on every other; the ids this process has seen are a first filter that
 * spares the store a round trip for a replay sent here again. Without one (a single process and
 * no store at hand), the ids are kept in memory only, and when that fills up with unexpired ids
 * assertions are refused rather than forgotten.
 */
import type { AssertionReplayRepository } from '../store/types.js';

export interface AssertionReplayGuard {
  /** True the first time `jti` of `agentId` is seen; false for a replay (or no room, in memory). */
  claim(agentId: string, jti: string, expiresAt: number): Promise<boolean>;
}

export interface AssertionReplayGuardOptions {
  /** Where the ids are shared with the other replicas; absent: this process only. */
  readonly repository?: AssertionReplayRepository | undefined;
  readonly now: () => number;
  /** An assertion is accepted up to this long after `exp`, so its id is kept that much longer. */
  readonly clockSkewMs: number;
  /** Ids remembered in this process. */
  readonly maxRemembered: number;
  /** Told when expired ids cannot be deleted from the store (they are retried later). */
  readonly onError?: ((error: unknown) => void) | undefined;
}

/** How often expired ids are deleted from the store, by each process. */
const PRUNE_INTERVAL_MS = 60_000;

export function createAssertionReplayGuard(
  options: AssertionReplayGuardOptions,
): AssertionReplayGuard {
  const { repository, now, clockSkewMs, maxRemembered } = options;
  // Id → until when it is kept; insertion order is the order ids were seen.
  const seen = new Map<string, number>();
  let prunedAt = now();

  const dropExpired = (at: number): void => {
    for (const [known, until] of seen) if (until < at) seen.delete(known);
  };

  const pruneStore = (at: number): void => {
    if (!repository || at - prunedAt < PRUNE_INTERVAL_MS) return;
    prunedAt = at;
    repository.deleteExpired(at).catch((error: unknown) => options.onError?.(error));
  };

  return {
    async claim(agentId, jti, expiresAt) {
      const at = now();
      const id = `${agentId}\n${jti}`;
      const keepUntil = expiresAt + clockSkewMs;
      const known = seen.get(id);
      if (known !== undefined && known >= at) return false;
      if (seen.size >= maxRemembered) dropExpired(at);
      if (!repository) {
        // Dropping an unexpired id would let it be replayed: refuse instead (fail closed).
        if (seen.size >= maxRemembered) return false;
        seen.set(id, keepUntil);
        return true;
      }
      const claimed = await repository.claim(agentId, jti, keepUntil, at);
      // The store remembers every id: forgetting the oldest here only costs a round trip.
      if (seen.size >= maxRemembered) {
        const oldest = seen.keys().next();
        if (oldest.done !== true) seen.delete(oldest.value);
      }
      seen.set(id, keepUntil);
      pruneStore(at);
      return claimed;
    },
  };
}
