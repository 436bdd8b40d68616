/**
 * The built-in issuer's signing keys, kept in the store so every replica (and the `warden keys`
 * CLI) shares them. One key is active and signs; rotated keys stay published until every token
 * they signed has expired (the overlap window), then they are retired and deleted.
 *
 * Each process keeps a copy, re-read every few seconds, at once when the store announces a new
 * key (`markStale`), and before judging a token whose kid the copy does not hold (rate-limited).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK } from 'jose';
import type { SigningKeyRepository, StoredSigningKey } from '../store/types.js';

export type SigningAlgorithm = 'ES256' | 'EdDSA' | 'RS256';

/** The key that signs new tokens. */
export interface ActiveSigningKey {
  readonly kid: string;
  readonly algorithm: SigningAlgorithm;
  readonly privateKey: CryptoKey;
}

export type SigningKeyState = 'active' | 'rotated' | 'retired';

/** What an operator may see of a key: never its private material. */
export interface SigningKeyStatus {
  readonly kid: string;
  readonly algorithm: string;
  readonly state: SigningKeyState;
  readonly createdAt: number;
  readonly rotatedAt: number | undefined;
  readonly retireAt: number | undefined;
}

export interface SigningKeyring {
  /** The active key; creates the first one, or rotates when the active one is due. */
  currentKey(): Promise<ActiveSigningKey>;
  /** Makes a new key active now; the previous ones stay published for the overlap window. */
  rotate(): Promise<{ readonly kid: string }>;
  /** Public parts of the active and not-yet-retired keys, for /.well-known/jwks.json. */
  publicJwks(): Promise<JSONWebKeySet>;
  /**
   * The public keys a verifier checks a token with. A `kid` not among them is looked up in the
   * store before this resolves, so a key rotated in by another replica verifies at once; those
   * look-ups are shared by concurrent callers and spaced `unknownKidRereadMs` apart, so tokens
   * with made-up kids cannot hammer the store.
   */
  publicJwksFor(kid: string | undefined): Promise<JSONWebKeySet>;
  /** Another replica stored a key: the next use re-reads the store. */
  markStale(): void;
  /** Every stored key with its state, newest first. */
  listKeys(): Promise<SigningKeyStatus[]>;
}

export interface SigningKeyringOptions {
  readonly repository: SigningKeyRepository;
  readonly algorithm: SigningAlgorithm;
  readonly rotateEveryMs: number;
  /**
   * The longest a token signed by a key may stay valid: how long a rotated key stays published.
   * Pass the issuer's max TTL plus the verifiers' clock skew.
   */
  readonly maxTokenTtlMs: number;
  /**
   * How stale the in-memory copy of the keys may get before it is re-read from the store, so a
   * rotation made by another replica or by the CLI is picked up. Defaults to 5 s.
   */
  readonly refreshIntervalMs?: number;
  /** Least time between two store reads made for unknown kids. Defaults to 250 ms. */
  readonly unknownKidRereadMs?: number;
  readonly now?: () => number;
  /** Random key ids; defaults to 16 random bytes, base64url. */
  readonly generateKid?: () => string;
  /** Told of every rotation this keyring makes (scheduled or asked for), for the audit log. */
  readonly onRotated?: (rotation: {
    readonly kid: string;
    readonly at: number;
    readonly scheduled: boolean;
  }) => void;
}

interface LoadedKey {
  readonly stored: StoredSigningKey;
  readonly publicJwk: JWK;
  /** Imported on first use only: most loaded keys never sign again. */
  privateKey: CryptoKey | undefined;
}

const DEFAULT_REFRESH_INTERVAL_MS = 5_000;
const DEFAULT_UNKNOWN_KID_REREAD_MS = 250;

export function createSigningKeyring(options: SigningKeyringOptions): SigningKeyring {
  const { repository, algorithm, rotateEveryMs, maxTokenTtlMs } = options;
  const now = options.now ?? Date.now;
  const refreshIntervalMs = options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS;
  const generateKid = options.generateKid ?? (() => randomBytes(16).toString('base64url'));
  if (!(rotateEveryMs > 0) || !(maxTokenTtlMs > 0))
    throw new RangeError('rotateEveryMs and maxTokenTtlMs must be positive');

  const unknownKidRereadMs = options.unknownKidRereadMs ?? DEFAULT_UNKNOWN_KID_REREAD_MS;
  /** `read`: the number of the store read it came from (reads are numbered as they start). */
  let cache:
    | { readonly keys: readonly LoadedKey[]; readonly loadedAt: number; readonly read: number }
    | undefined;
  let readsStarted = 0;
  let stale = false;
  // A refresh under way, which callers that find the cache stale wait for instead of reading too.
  let refreshing: Promise<readonly LoadedKey[]> | undefined;
  // The shared store read for unknown kids, and when (monotonic ms) the last one started.
  let unknownKidReread: Promise<void> | undefined;
  let lastUnknownKidRereadAt: number | undefined;
  // Key creation and rotation run one at a time, so concurrent first requests make one key.
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  };

  function load(force: boolean): Promise<readonly LoadedKey[]> {
    if (!force && !stale && cache && now() - cache.loadedAt < refreshIntervalMs)
      return Promise.resolve(cache.keys);
    if (force) return read();
    refreshing ??= read().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  async function read(): Promise<readonly LoadedKey[]> {
    const at = now();
    const number = ++readsStarted;
    const wasStale = stale;
    stale = false;
    let stored: StoredSigningKey[];
    try {
      await repository.deleteRetired(at);
      stored = await repository.list();
    } catch (error) {
      // Still stale: the next use tries again rather than trusting the old copy for a while.
      stale ||= wasStale;
      throw error;
    }
    const previous = new Map(cache?.keys.map((key) => [key.stored.kid, key]));
    const keys = stored
      .map((stored) => {
        const known = previous.get(stored.kid);
        if (known && known.stored.publicJwk === stored.publicJwk) return { ...known, stored };
        return {
          stored,
          publicJwk: JSON.parse(stored.publicJwk) as JWK,
          privateKey: undefined,
        };
      })
      .sort(compareNewestFirst);
    // A read that started earlier but finished later must not replace a newer one.
    if (cache === undefined || cache.read < number) cache = { keys, loadedAt: at, read: number };
    return keys;
  }

  /** One store read for every caller with an unknown kid, at most one per interval. */
  function rereadForUnknownKid(): Promise<void> {
    unknownKidReread ??= (async () => {
      const since = lastUnknownKidRereadAt;
      const wait = since === undefined ? 0 : since + unknownKidRereadMs - performance.now();
      if (wait > 0) await sleep(Math.min(wait, unknownKidRereadMs));
      lastUnknownKidRereadAt = performance.now();
      await read();
    })().finally(() => {
      unknownKidReread = undefined;
    });
    return unknownKidReread;
  }

  function publish(keys: readonly LoadedKey[]): JSONWebKeySet {
    const at = now();
    return {
      keys: keys
        .filter((key) => key.stored.retireAt === undefined || key.stored.retireAt > at)
        .map((key) => ({ ...key.publicJwk })),
    };
  }

  async function createKey(): Promise<StoredSigningKey> {
    const kid = generateKid();
    const pair = await generateKeyPair(algorithm, { extractable: true });
    const stamp = { kid, alg: algorithm, use: 'sig' } as const;
    const key: StoredSigningKey = {
      kid,
      algorithm,
      privateJwk: JSON.stringify({ ...(await exportJWK(pair.privateKey)), ...stamp }),
      publicJwk: JSON.stringify({ ...(await exportJWK(pair.publicKey)), ...stamp }),
      createdAt: now(),
      rotatedAt: undefined,
      retireAt: undefined,
    };
    return key;
  }

  async function rotateNow(scheduled = false): Promise<{ kid: string }> {
    const at = now();
    const key = await createKey();
    // markRotated touches every active key, so it must run before the new key exists.
    // A replica that has not refreshed yet may still sign with the old key for one refresh
    // interval, so that is added to the overlap.
    await repository.markRotated(at, at + maxTokenTtlMs + refreshIntervalMs);
    await repository.insert(key);
    await load(true);
    options.onRotated?.({ kid: key.kid, at, scheduled });
    return { kid: key.kid };
  }

  function activeIn(keys: readonly LoadedKey[]): LoadedKey | undefined {
    return keys.find((key) => key.stored.rotatedAt === undefined);
  }

  /** Scheduled rotation, or the configured algorithm changed since the key was made. */
  function isDue(key: LoadedKey): boolean {
    return key.stored.algorithm !== algorithm || now() - key.stored.createdAt >= rotateEveryMs;
  }

  async function signingKeyOf(key: LoadedKey): Promise<ActiveSigningKey> {
    key.privateKey ??= (await importJWK(JSON.parse(key.stored.privateJwk) as JWK, algorithm, {
      extractable: false,
    })) as CryptoKey;
    return { kid: key.stored.kid, algorithm, privateKey: key.privateKey };
  }

  return {
    async currentKey() {
      const active = activeIn(await load(false));
      if (active && !isDue(active)) return signingKeyOf(active);
      return exclusive(async () => {
        // Another caller (or replica) may have created or rotated it while this one waited.
        const fresh = activeIn(await load(true));
        if (fresh && !isDue(fresh)) return signingKeyOf(fresh);
        if (fresh) await rotateNow(true);
        else {
          await repository.insert(await createKey());
          await load(true);
        }
        const created = activeIn(await load(false));
        if (!created) throw new Error('the signing key just stored is not in the store');
        return signingKeyOf(created);
      });
    },

    rotate() {
      return exclusive(rotateNow);
    },

    async publicJwks() {
      return publish(await load(false));
    },

    async publicJwksFor(kid) {
      const arrivedAfter = readsStarted;
      let keys = await load(false);
      // A read that started before this caller came may have missed a key stored just before
      // the token was signed: only a read started since counts, and the second one always does.
      for (let attempt = 0; attempt < 2; attempt += 1) {
        if (kid === undefined || keys.some((key) => key.stored.kid === kid)) break;
        if ((cache?.read ?? 0) > arrivedAfter) break;
        await rereadForUnknownKid();
        keys = cache?.keys ?? keys;
      }
      return publish(keys);
    },

    markStale() {
      stale = true;
    },

    async listKeys() {
      const at = now();
      return (await load(true)).map(({ stored }) => ({
        kid: stored.kid,
        algorithm: stored.algorithm,
        state: stateOf(stored, at),
        createdAt: stored.createdAt,
        rotatedAt: stored.rotatedAt,
        retireAt: stored.retireAt,
      }));
    },
  };
}

function stateOf(key: StoredSigningKey, at: number): SigningKeyState {
  if (key.rotatedAt === undefined) return 'active';
  return key.retireAt !== undefined && key.retireAt <= at ? 'retired' : 'rotated';
}

/** Newest first, so the first unrotated key is the active one even if a race made two. */
function compareNewestFirst(a: LoadedKey, b: LoadedKey): number {
  return b.stored.createdAt - a.stored.createdAt || (a.stored.kid < b.stored.kid ? -1 : 1);
}
