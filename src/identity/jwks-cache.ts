/**
 * Where an issuer's verification keys come from: the built-in issuer's own keys, or an external
 * issuer's JWKS fetched over HTTP (discovered from its metadata when no jwks_uri is configured).
 *
 * Not jose's createRemoteJWKSet: its cooldown counts from the last *successful* fetch, so while an
 * IdP is failing every request triggers another fetch, and it reads Date.now() rather than an
 * injected clock. Here every attempt, failed or not, counts against one refresh per interval per
 * issuer, so tokens sprayed with random `kid`s cannot make Warden hammer the IdP.
 */
import { createLocalJWKSet, type JSONWebKeySet, type LocalJWKSet } from 'jose';
import { TokenRejectedError } from './token-rejected-error.js';
import { isRecord } from '../domain/json-object.js';

/** The keys in force for one issuer, and the resolver jose verifies with. */
export interface KeySet {
  readonly jwks: JSONWebKeySet;
  readonly resolveKey: LocalJWKSet;
}

export interface KeySource {
  /**
   * The issuer's keys. A `kid` not among the cached keys triggers a refresh, at most once per
   * refresh interval; the caller then finds the kid in the result or refuses the token.
   * Throws `jwks_unavailable` when no usable keys can be had (fail closed).
   */
  load(kid: string | undefined): Promise<KeySet>;
}

export interface RemoteKeySourceOptions {
  readonly issuer: string;
  /** Undefined: discover it from the issuer's RFC 8414 / OpenID Connect metadata. */
  readonly jwksUri: string | undefined;
  readonly fetch: typeof fetch;
  readonly now: () => number;
  /** Timeout of every HTTP request. */
  readonly timeoutMs: number;
  /** At most one fetch attempt per issuer in this interval, whatever the tokens say. */
  readonly refreshIntervalMs: number;
  /** Keys older than this are refreshed before use. */
  readonly maxAgeMs: number;
  /** While refreshes fail, keys are still used up to this age; beyond it, tokens are refused. */
  readonly maxStaleMs: number;
}

export const JWKS_DEFAULTS = {
  timeoutMs: 5_000,
  refreshIntervalMs: 30_000,
  maxAgeMs: 10 * 60_000,
  maxStaleMs: 60 * 60_000,
} as const;

/** A JWKS or metadata document larger than this is refused rather than buffered. */
const MAX_DOCUMENT_BYTES = 256 * 1024;

interface Fetched {
  readonly keySet: KeySet;
  readonly fetchedAt: number;
}

/** Keys of an external issuer, fetched over HTTP with a timeout, cached and rate-limited. */
export function createRemoteKeySource(options: RemoteKeySourceOptions): KeySource {
  let fetched: Fetched | undefined;
  let lastAttemptAt: number | undefined;
  let pending: Promise<void> | undefined;
  let jwksUri = options.jwksUri;

  const refresh = async (): Promise<void> => {
    lastAttemptAt = options.now();
    try {
      jwksUri ??= await discoverJwksUri(options);
      const jwks = parseJwks(await fetchJson(options, jwksUri));
      fetched = {
        keySet: { jwks, resolveKey: createLocalJWKSet(jwks) },
        fetchedAt: options.now(),
      };
    } catch (error) {
      // A discovered location may have moved; look it up again on the next attempt.
      if (options.jwksUri === undefined) jwksUri = undefined;
      throw error;
    }
  };

  return {
    async load(kid) {
      const now = options.now();
      const current = fetched;
      const fresh = current !== undefined && now - current.fetchedAt < options.maxAgeMs;
      if (fresh && (kid === undefined || hasKid(current.keySet.jwks, kid))) {
        return current.keySet;
      }
      let failure: unknown;
      if (pending === undefined && mayAttempt(lastAttemptAt, now, options.refreshIntervalMs)) {
        pending = refresh().finally(() => {
          pending = undefined;
        });
      }
      if (pending !== undefined) {
        try {
          await pending;
        } catch (error) {
          failure = error;
        }
      }
      // Stale-if-error: an IdP blip must not lock every agent out, but only for so long.
      const usable = fetched;
      if (usable === undefined || options.now() - usable.fetchedAt >= options.maxStaleMs) {
        throw new TokenRejectedError('jwks_unavailable', { cause: failure });
      }
      return usable.keySet;
    },
  };
}

/**
 * The built-in issuer's keys, asked for on every use with the token's kid: the keyring answers
 * from its cache, and looks an unknown kid up in the store (rate-limited), so a key rotated in by
 * another replica verifies at once.
 */
export function createLocalKeySource(
  loadKeys: (kid: string | undefined) => Promise<JSONWebKeySet>,
): KeySource {
  let last: { readonly jwks: JSONWebKeySet; readonly keySet: KeySet } | undefined;
  return {
    async load(kid) {
      let jwks: JSONWebKeySet;
      try {
        jwks = await loadKeys(kid);
      } catch (cause) {
        throw new TokenRejectedError('jwks_unavailable', { cause });
      }
      // Same set as last time: keep its resolver, which caches imported keys.
      if (last?.jwks !== jwks)
        last = { jwks, keySet: { jwks, resolveKey: createLocalJWKSet(jwks) } };
      return last.keySet;
    },
  };
}

/**
 * Metadata locations for an issuer, in the order the MCP authorization spec tries them:
 * RFC 8414 (path inserted after the well-known prefix), then OpenID Connect both ways.
 */
export function listDiscoveryUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  return [
    ...new Set([
      `${url.origin}/.well-known/oauth-authorization-server${path}`,
      `${url.origin}/.well-known/openid-configuration${path}`,
      `${url.origin}${path}/.well-known/openid-configuration`,
    ]),
  ];
}

function mayAttempt(lastAttemptAt: number | undefined, now: number, intervalMs: number): boolean {
  return lastAttemptAt === undefined || now - lastAttemptAt >= intervalMs;
}

function hasKid(jwks: JSONWebKeySet, kid: string): boolean {
  return jwks.keys.some((jwk) => jwk.kid === kid);
}

async function discoverJwksUri(options: RemoteKeySourceOptions): Promise<string> {
  for (const url of listDiscoveryUrls(options.issuer)) {
    let metadata: unknown;
    try {
      metadata = await fetchJson(options, url);
    } catch (error) {
      // Nothing usable here (404, not JSON, …): try the next location. Unreachable: give up.
      if (error instanceof UnusableDocumentError) continue;
      throw error;
    }
    if (!isRecord(metadata)) continue;
    // RFC 8414 §3.3: metadata naming another issuer must not be used (mix-up protection).
    if (metadata.issuer !== options.issuer) continue;
    const { jwks_uri: jwksUri } = metadata;
    if (typeof jwksUri === 'string' && isHttpUrl(jwksUri)) return jwksUri;
  }
  throw new Error(`no usable authorization server metadata for ${options.issuer}`);
}

/** The server answered, but not with a document we can use. */
class UnusableDocumentError extends Error {
  constructor(url: string, problem: string, options?: { cause: unknown }) {
    super(`GET ${url}: ${problem}`, options);
    this.name = 'UnusableDocumentError';
  }
}

/** GET a JSON document: 200 only (redirects are not followed), bounded in time and size. */
async function fetchJson(options: RemoteKeySourceOptions, url: string): Promise<unknown> {
  const response = await options.fetch(url, {
    headers: { accept: 'application/json, application/jwk-set+json' },
    redirect: 'manual',
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new UnusableDocumentError(url, `answered ${response.status}`);
  }
  const text = await readBounded(response, MAX_DOCUMENT_BYTES);
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new UnusableDocumentError(url, 'not JSON', { cause });
  }
}

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > maxBytes || response.body === null) {
    await response.body?.cancel();
    throw new Error('document too large or empty');
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error('document too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJwks(document: unknown): JSONWebKeySet {
  if (!isRecord(document) || !Array.isArray(document.keys) || !document.keys.every(isRecord)) {
    throw new Error('the JWKS document is not a key set');
  }
  return { keys: document.keys };
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'https:' || protocol === 'http:';
  } catch {
    return false;
  }
}
