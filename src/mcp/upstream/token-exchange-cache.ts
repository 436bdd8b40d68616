/**
 * Exchanged tokens by caller, each kept until shortly before it expires, at most `maxEntries`
 * (the least recently used go first). Concurrent requests for one caller share one exchange
 * (single flight); a failed exchange is not kept, so the next call tries again.
 */

export interface CachedToken {
  readonly accessToken: string;
  /** Epoch ms after which the token is not handed out any more; undefined: never kept. */
  readonly usableUntil: number | undefined;
}

export interface ExchangedTokenCache {
  /** The caller's token: a kept one still usable at `now`, the one being fetched, or a new one. */
  obtain(key: string, now: () => number, exchange: () => Promise<CachedToken>): Promise<string>;
}

export function createExchangedTokenCache(maxEntries: number): ExchangedTokenCache {
  // A Map iterates in insertion order; re-inserting on a hit makes its first key the LRU one.
  const kept = new Map<string, { accessToken: string; usableUntil: number }>();
  const inFlight = new Map<string, Promise<string>>();

  function keep(key: string, token: CachedToken, now: number): void {
    if (token.usableUntil === undefined || token.usableUntil <= now) return;
    kept.delete(key);
    kept.set(key, { accessToken: token.accessToken, usableUntil: token.usableUntil });
    while (kept.size > maxEntries) {
      const oldest = kept.keys().next();
      if (oldest.done === true) break;
      kept.delete(oldest.value);
    }
  }

  return {
    obtain(key, now, exchange) {
      const hit = kept.get(key);
      if (hit !== undefined) {
        kept.delete(key);
        if (hit.usableUntil > now()) {
          kept.set(key, hit);
          return Promise.resolve(hit.accessToken);
        }
      }
      const pending = inFlight.get(key);
      if (pending !== undefined) return pending;
      const started = exchange()
        .then((token) => {
          keep(key, token, now());
          return token.accessToken;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, started);
      return started;
    },
  };
}
