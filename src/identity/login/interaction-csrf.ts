/**
 * CSRF tokens for the login and consent forms, bound to one interaction: an HMAC of its uid
 * under a key the replicas share, so a form served by one replica posts to any other. A page of
 * another site cannot read the token, and a token of one interaction is worthless for another.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface InteractionCsrf {
  tokenFor(uid: string): string;
  /** Whether `presented` is the token of interaction `uid` (compared in constant time). */
  verify(uid: string, presented: string | null | undefined): boolean;
}

export function createInteractionCsrf(key: Buffer): InteractionCsrf {
  const tokenFor = (uid: string): string =>
    createHmac('sha256', key).update(`warden-login-csrf:${uid}`).digest('base64url');
  return {
    tokenFor,
    verify(uid, presented) {
      if (typeof presented !== 'string') return false;
      const expected = Buffer.from(tokenFor(uid));
      const given = Buffer.from(presented);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}
