/**
 * On-behalf-of credentials (RFC 8693): for each caller, Warden exchanges a subject token it signs
 * (naming the person, or the agent) at the upstream's authorization server for an access token
 * to this upstream, and caches it per caller until shortly before it expires.
 *
 * The actor is Warden, proved by its client authentication at the authorization server; no
 * separate actor_token is sent, as one signed with the same keys as the subject token would
 * prove nothing more. The subject token's `act` names the app or agent Warden acts for.
 *
 * Work Warden does with no caller behind it is refused: Warden holds no identity of its own at
 * such an upstream, so nothing reaches it but what a caller asked for.
 */
import type { TokenExchangeConfig } from '../../config/config.js';
import { createExchangedTokenCache } from './token-exchange-cache.js';
import { credentialFailure, requestTokenExchange } from './token-exchange-request.js';
import { signSubjectToken, type SubjectTokenSigner } from './token-exchange-subject.js';
import type { UpstreamCaller } from './types.js';

export interface TokenExchangeSource {
  /** An access token to the upstream for `caller`, exchanged or cached. */
  tokenFor(caller: UpstreamCaller | undefined): Promise<string>;
}

export interface TokenExchangeOptions {
  /** The built-in issuer's keys; without them (e.g. the CLI) every exchange is refused. */
  readonly signer: SubjectTokenSigner | undefined;
  readonly now?: () => number;
}

export function createTokenExchangeSource(
  config: TokenExchangeConfig,
  options: TokenExchangeOptions,
): TokenExchangeSource {
  const { signer } = options;
  const now = options.now ?? Date.now;
  const cache = createExchangedTokenCache(config.cacheSize);
  return {
    tokenFor(caller) {
      if (caller === undefined)
        return Promise.reject(
          credentialFailure(
            'no_caller',
            'This upstream is reached only on behalf of a caller, and this request has none.',
          ),
        );
      if (signer === undefined)
        return Promise.reject(
          credentialFailure(
            'no_signer',
            'Token exchange needs the built-in issuer, which is not running in this process.',
          ),
        );
      return cache.obtain(cacheKeyOf(caller), now, async () => {
        const subjectToken = await signSubjectToken(signer, caller, {
          audience: config.subjectTokenAudience,
          ttlMs: config.subjectTokenTtlMs,
          now: now(),
        });
        const exchanged = await requestTokenExchange(config, subjectToken, now);
        return {
          accessToken: exchanged.accessToken,
          usableUntil:
            exchanged.expiresAt === undefined
              ? undefined
              : Math.min(exchanged.expiresAt - config.refreshBeforeMs, now() + MAX_REUSE_MS),
        };
      });
    },
  };
}

/**
 * The longest an exchanged token is reused, whatever `expires_in` said: an authorization server
 * answering a year (or 1e308 seconds) would otherwise pin one token until it is evicted, past
 * any revocation of the person at that server.
 */
const MAX_REUSE_MS = 60 * 60_000;

/** One entry per person, agent and chain of apps acting: each is told apart upstream. */
function cacheKeyOf(caller: UpstreamCaller): string {
  // Encoded parts never hold '=' or ' ': a person is told apart from no person, and parts never run together.
  const user = caller.user === undefined ? '' : `=${encodeURIComponent(caller.user)}`;
  return [
    user,
    ...[caller.agent, ...caller.delegation].map((part) => encodeURIComponent(part)),
  ].join(' ');
}
