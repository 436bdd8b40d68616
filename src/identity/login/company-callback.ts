/**
 * Checks on the browser's return from the company's identity provider that Warden makes before
 * openid-client makes them again, so that each attack gets its own error code: a callback for
 * another login (state), one used before (replay) and one from another issuer (mix-up).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CompanyLoginError } from './company-login-error.js';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** The callback carries the state this login sent. */
export function checkCallbackState(callback: URLSearchParams, expectedState: string): void {
  const state = callback.get('state');
  if (state === null || !timingSafeEqual(digest(state), digest(expectedState)))
    throw new CompanyLoginError(
      'LOGIN_STATE_MISMATCH',
      'the callback does not belong to this login (its state differs); start the login again',
    );
}

/**
 * The callback's `iss` (RFC 9207) names the configured issuer; a provider that advertises the
 * parameter must send it.
 */
export function checkCallbackIssuer(
  callback: URLSearchParams,
  issuer: string,
  issuerParameterSupported: boolean,
): void {
  const iss = callback.get('iss');
  if (iss === null ? issuerParameterSupported : iss !== issuer)
    throw new CompanyLoginError(
      'LOGIN_ISSUER_MISMATCH',
      `the callback ${iss === null ? 'does not name its issuer' : 'names another issuer'}; only ${issuer} may answer this login`,
    );
}

/** The logins already finished, by state, for as long as a callback could still arrive. */
export interface FinishedLogins {
  /** Records `state` as finished; false when it already was. */
  claim(state: string, nowMs: number): boolean;
}

export function createFinishedLogins(options: {
  readonly rememberMs: number;
  readonly maxEntries: number;
}): FinishedLogins {
  // Keyed by a digest so the states themselves are not kept; insertion order is expiry order.
  const finishedUntil = new Map<string, number>();
  return {
    claim(state, nowMs) {
      for (const [key, until] of finishedUntil) {
        if (until > nowMs && finishedUntil.size < options.maxEntries) break;
        finishedUntil.delete(key);
      }
      const key = digest(state).toString('base64url');
      if (finishedUntil.has(key)) return false;
      finishedUntil.set(key, nowMs + options.rememberMs);
      return true;
    },
  };
}
