/**
 * How an agent proves who it is at the built-in token endpoint: a client secret (RFC 6749 §2.3.1,
 * Basic or in the form) checked against an scrypt hash, or a JWT signed with one of its
 * registered keys (private_key_jwt, RFC 7523 §2.2). The outcome is a value naming the reason,
 * so the endpoint can answer, count failures and audit without matching on messages. A client
 * certificate as the credential (RFC 8705) is checked in certificate-client-authentication.ts.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { ALLOWED_ALGORITHMS } from '../config/auth-schema.js';
import type { AgentConfig } from '../config/config.js';
import type { AssertionReplayRepository } from '../store/types.js';
import { createAssertionReplayGuard } from './assertion-replay.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export type ClientAuthenticationMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'private_key_jwt'
  /** RFC 8705 §2.1: a certificate the listener verified, naming the agent's `mtls_identity`. */
  | 'tls_client_auth'
  /** RFC 8705 §2.2: a certificate (any issuer) whose key is one of the agent's `jwks`. */
  | 'self_signed_tls_client_auth';

export const CLIENT_AUTHENTICATION_METHODS: readonly ClientAuthenticationMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
];

/** Offered only where the listener asks clients for a certificate (`listen.tls.client_ca`). */
export const CERTIFICATE_AUTHENTICATION_METHODS: readonly ClientAuthenticationMethod[] = [
  'tls_client_auth',
  'self_signed_tls_client_auth',
];

/** Asymmetric algorithms only: `none` and shared-key (HS*) assertions are never accepted. */
export const CLIENT_ASSERTION_ALGORITHMS: readonly string[] = ALLOWED_ALGORITHMS;

/** Stable reasons a client was refused; recorded in `auth.failed`, never sent to the client. */
export type ClientAuthenticationFailure =
  | 'no_credentials'
  | 'multiple_methods'
  | 'malformed_credentials'
  | 'unsupported_assertion_type'
  | 'unknown_client'
  | 'method_not_registered'
  | 'wrong_secret'
  | 'assertion_invalid'
  | 'assertion_expired'
  | 'assertion_lifetime_too_long'
  | 'assertion_replayed'
  /** The certificate failed the listener's verification and holds no key the agent registered. */
  | 'certificate_untrusted'
  /** The certificate names another identity, or holds a key the agent did not register. */
  | 'certificate_mismatch';

/** What the client presented, before anything was checked. */
export type PresentedClientCredentials =
  | {
      readonly method: 'client_secret_basic' | 'client_secret_post';
      readonly clientId: string;
      readonly secret: string;
    }
  | { readonly method: 'private_key_jwt'; readonly clientId: string; readonly assertion: string };

export type ClientAuthentication =
  | {
      readonly outcome: 'authenticated';
      readonly agent: AgentConfig;
      readonly method: ClientAuthenticationMethod;
    }
  | {
      readonly outcome: 'refused';
      readonly reason: ClientAuthenticationFailure;
      /** The method tried, if one could be told; Basic refusals need WWW-Authenticate: Basic. */
      readonly method: ClientAuthenticationMethod | undefined;
      /** The client id claimed, if any: failures are counted against it. */
      readonly clientId: string | undefined;
    };

type Refusal = Extract<ClientAuthentication, { outcome: 'refused' }>;

// ---------------------------------------------------------------------------------------------
// Client secrets

const SCRYPT_COST = 2 ** 15;
const SCRYPT_BLOCK_SIZE = 8;
const SCRYPT_PARALLELISM = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Caps on parameters read from a hash, so a hand-edited config cannot make each check cost seconds.
const MAX_SCRYPT_COST = 2 ** 20;
const MAX_SCRYPT_BLOCK_SIZE = 32;
const MAX_SCRYPT_PARALLELISM = 16;

function deriveKey(
  secret: string,
  salt: Buffer,
  length: number,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; Node's default maxmem (32 MiB) is exactly that at N=2^15 r=8.
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, length, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** Hashes a client secret for `agents.<id>.secret_hash`: `scrypt$N$r$p$saltB64$hashB64`. */
export async function hashClientSecret(secret: string): Promise<string> {
  if (secret.length === 0) throw new RangeError('the client secret is empty');
  const salt = randomBytes(SALT_BYTES);
  const params = { N: SCRYPT_COST, r: SCRYPT_BLOCK_SIZE, p: SCRYPT_PARALLELISM };
  const key = await deriveKey(secret, salt, KEY_BYTES, params);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')]
    .map(String)
    .join('$');
}

/** Checks a secret against a hash made by hashClientSecret; a malformed hash never matches. */
export async function verifyClientSecret(secret: string, hash: string): Promise<boolean> {
  const parsed = parseSecretHash(hash);
  if (!parsed) return false;
  const actual = await deriveKey(secret, parsed.salt, parsed.key.length, parsed.params);
  return timingSafeEqual(actual, parsed.key);
}

function parseSecretHash(
  hash: string,
): { params: { N: number; r: number; p: number }; salt: Buffer; key: Buffer } | undefined {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map((part) => (/^\d{1,8}$/.test(part) ? Number(part) : NaN));
  if (N === undefined || r === undefined || p === undefined) return undefined;
  const powerOfTwo = N > 1 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > MAX_SCRYPT_COST) return undefined;
  if (!(r >= 1 && r <= MAX_SCRYPT_BLOCK_SIZE && p >= 1 && p <= MAX_SCRYPT_PARALLELISM))
    return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const key = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length < 8 || key.length < 16 || key.length > 64) return undefined;
  return { params: { N, r, p }, salt, key };
}

// ---------------------------------------------------------------------------------------------
// Reading what the client presented

/**
 * Finds the credentials in a token request. More than one method in one request is refused
 * (RFC 6749 §2.3), as is a request with none: every client of this endpoint is confidential.
 */
export function readClientCredentials(
  authorization: string | undefined,
  form: URLSearchParams,
): PresentedClientCredentials | Refusal {
  const formId = form.get('client_id') ?? undefined;
  const formSecret = form.get('client_secret') ?? undefined;
  const assertion = form.get('client_assertion') ?? undefined;
  const assertionType = form.get('client_assertion_type') ?? undefined;
  const basic = authorization !== undefined && /^basic\s/i.test(authorization.trimStart());

  const used = [basic, formSecret !== undefined, assertion !== undefined].filter(Boolean).length;
  if (used > 1) return refuse('multiple_methods', undefined, formId);
  if (authorization !== undefined && !basic) return refuse('malformed_credentials', undefined);

  if (basic) {
    const decoded = decodeBasic(authorization);
    if (!decoded) return refuse('malformed_credentials', 'client_secret_basic', undefined);
    if (formId !== undefined && formId !== decoded.clientId)
      return refuse('malformed_credentials', 'client_secret_basic', decoded.clientId);
    return { method: 'client_secret_basic', ...decoded };
  }
  if (formSecret !== undefined) {
    if (formId === undefined || formId === '')
      return refuse('malformed_credentials', 'client_secret_post', undefined);
    return { method: 'client_secret_post', clientId: formId, secret: formSecret };
  }
  if (assertion !== undefined) {
    if (assertionType !== CLIENT_ASSERTION_TYPE)
      return refuse('unsupported_assertion_type', 'private_key_jwt', formId);
    let issuer: unknown;
    try {
      issuer = decodeJwt(assertion).iss;
    } catch {
      return refuse('assertion_invalid', 'private_key_jwt', formId);
    }
    if (typeof issuer !== 'string' || issuer === '')
      return refuse('assertion_invalid', 'private_key_jwt', formId);
    if (formId !== undefined && formId !== issuer)
      return refuse('assertion_invalid', 'private_key_jwt', formId);
    return { method: 'private_key_jwt', clientId: issuer, assertion };
  }
  return refuse('no_credentials', undefined, formId);
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64ed. */
function decodeBasic(authorization: string): { clientId: string; secret: string } | undefined {
  const encoded = authorization.trim().slice('basic'.length).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
  const text = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    const clientId = decodeFormComponent(text.slice(0, colon));
    const secret = decodeFormComponent(text.slice(colon + 1));
    return clientId === '' ? undefined : { clientId, secret };
  } catch {
    return undefined;
  }
}

function decodeFormComponent(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

function refuse(
  reason: ClientAuthenticationFailure,
  method: ClientAuthenticationMethod | undefined,
  clientId?: string,
): Refusal {
  return { outcome: 'refused', reason, method, clientId };
}

// ---------------------------------------------------------------------------------------------
// Checking it

export interface ClientAuthenticatorOptions {
  readonly agents: ReadonlyMap<string, AgentConfig>;
  /** Accepted `aud` values of client assertions: the token endpoint URL and the issuer. */
  readonly audiences: readonly string[];
  readonly now?: () => number;
  /** Longest accepted assertion lifetime (exp - now); defaults to 5 minutes. */
  readonly maxAssertionLifetimeMs?: number;
  readonly clockSkewMs?: number;
  /**
   * Bound on assertion ids remembered in this process. Without `assertionReplays`, when it is
   * full of unexpired ids, assertions are refused; with it, the store remembers them all.
   */
  readonly maxRememberedAssertions?: number;
  /** Assertion ids shared with the other replicas: one assertion is accepted once by them all. */
  readonly assertionReplays?: AssertionReplayRepository | undefined;
  /** Told of background failures (deleting expired assertion ids). */
  readonly onError?: ((error: unknown) => void) | undefined;
}

export interface ClientAuthenticator {
  authenticateClient(presented: PresentedClientCredentials): Promise<ClientAuthentication>;
}

export function createClientAuthenticator(
  options: ClientAuthenticatorOptions,
): ClientAuthenticator {
  const { agents, audiences } = options;
  const now = options.now ?? Date.now;
  const maxLifetimeMs = options.maxAssertionLifetimeMs ?? 5 * 60_000;
  const clockSkewMs = options.clockSkewMs ?? 30_000;
  // A captured assertion cannot be replayed (RFC 7523 §3), on this replica or another.
  const replays = createAssertionReplayGuard({
    repository: options.assertionReplays,
    now,
    clockSkewMs,
    maxRemembered: options.maxRememberedAssertions ?? 10_000,
    onError: options.onError,
  });
  const keySets = new WeakMap<AgentConfig, JWTVerifyGetKey>();

  function keySetOf(agent: AgentConfig, jwks: NonNullable<AgentConfig['jwks']>): JWTVerifyGetKey {
    let keySet = keySets.get(agent);
    if (!keySet) {
      keySet = createLocalJWKSet(jwks as unknown as JSONWebKeySet);
      keySets.set(agent, keySet);
    }
    return keySet;
  }

  async function verifyAssertion(agent: AgentConfig, assertion: string): Promise<Refusal | true> {
    const fail = (reason: ClientAuthenticationFailure): Refusal =>
      refuse(reason, 'private_key_jwt', agent.id);
    if (!agent.jwks) return fail('method_not_registered');
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, keySetOf(agent, agent.jwks), {
        algorithms: [...CLIENT_ASSERTION_ALGORITHMS],
        issuer: agent.id,
        subject: agent.id,
        audience: [...audiences],
        requiredClaims: ['exp', 'jti'],
        clockTolerance: Math.floor(clockSkewMs / 1000),
        currentDate: new Date(now()),
      }));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return fail(code === 'ERR_JWT_EXPIRED' ? 'assertion_expired' : 'assertion_invalid');
    }
    const expiresAt = (payload.exp ?? 0) * 1000;
    if (expiresAt > now() + maxLifetimeMs + clockSkewMs) return fail('assertion_lifetime_too_long');
    if (typeof payload.jti !== 'string' || payload.jti === '') return fail('assertion_invalid');
    // Only signed assertions reach the replay set, so strangers cannot fill it.
    if (!(await replays.claim(agent.id, payload.jti, expiresAt))) return fail('assertion_replayed');
    return true;
  }

  return {
    async authenticateClient(presented) {
      const agent = agents.get(presented.clientId);
      // Client ids are not secrets (RFC 6749 §2.2), so refusing an unknown one fast leaks nothing
      // and spares the hashing cost an attacker could otherwise impose with made-up ids.
      if (!agent) return refuse('unknown_client', presented.method, presented.clientId);
      if (presented.method === 'private_key_jwt') {
        const result = await verifyAssertion(agent, presented.assertion);
        return result === true
          ? { outcome: 'authenticated', agent, method: presented.method }
          : result;
      }
      if (agent.secretHash === undefined)
        return refuse('method_not_registered', presented.method, agent.id);
      if (!(await verifyClientSecret(presented.secret, agent.secretHash)))
        return refuse('wrong_secret', presented.method, agent.id);
      return { outcome: 'authenticated', agent, method: presented.method };
    },
  };
}
