/**
 * Tokens already verified, so a busy agent's every call does not repeat the signature check.
 * Safe because an entry never outlives its token's `exp`, and revocation is checked separately
 * on every request. Keyed by the token's SHA-256, so the cache holds no bearer tokens.
 */
import { createHash } from 'node:crypto';

export interface VerifiedTokenCache<T extends { readonly expiresAt: number }> {
  /** The verification result for this token, unless it is absent or the token has expired. */
  get(token: string, now: number): T | undefined;
  set(token: string, verified: T): void;
}

/** A bounded cache that evicts the least recently used entry first. */
export function createVerifiedTokenCache<T extends { readonly expiresAt: number }>(
  maxEntries: number,
): VerifiedTokenCache<T> {
  // A Map iterates in insertion order; re-inserting on a hit makes its first key the LRU one.
  const entries = new Map<string, T>();
  return {
    get(token, now) {
      const digest = hashToken(token);
      const verified = entries.get(digest);
      if (verified === undefined) return undefined;
      entries.delete(digest);
      if (verified.expiresAt <= now) return undefined;
      entries.set(digest, verified);
      return verified;
    },
    set(token, verified) {
      if (maxEntries <= 0) return;
      const digest = hashToken(token);
      entries.delete(digest);
      entries.set(digest, verified);
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
    },
  };
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
