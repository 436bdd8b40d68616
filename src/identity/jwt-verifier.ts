/**
 * Verifies OAuth 2.1 JWT access tokens (RFC 9068) for this gateway as a resource server.
 *
 * The order of the checks is the threat model: refuse on size, shape and protected header alone
 * (algorithm, key references, crit, kid, typ) before any key is looked up; pick the issuer by the
 * unverified `iss`, for routing only; verify the signature with that issuer's keys and algorithms
 * only; then audience (RFC 8707), time, lifetime, environment, and the claims the pipeline uses.
 */
import {
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';
import { ALLOWED_ALGORITHMS } from '../config/auth-schema.js';
import type { AuthConfig, BuiltinIssuerConfig, ExternalIssuerConfig } from '../config/config.js';
import {
  createLocalKeySource,
  createRemoteKeySource,
  JWKS_DEFAULTS,
  type KeySet,
  type KeySource,
} from './jwks-cache.js';
import { TokenRejectedError } from './token-rejected-error.js';
import { createVerifiedTokenCache } from './verified-token-cache.js';
import { isRecord } from '../domain/json-object.js';

/** What a verified access token says, in the units and shapes the pipeline uses. */
export interface VerifiedToken {
  readonly issuer: string;
  /** `sub`: the user on whose behalf the agent acts (the client itself for client_credentials). */
  readonly subject: string;
  /** The calling client: the issuer's agent claim (`client_id` by default), else `azp`. */
  readonly agentClaimValue: string;
  readonly audience: readonly string[];
  /** From `scope` (space-separated) or, failing that, `scp` (array or space-separated). */
  readonly scopes: readonly string[];
  /** `jti`, which revocation by token id needs. */
  readonly tokenId: string | undefined;
  /** Times in ms since the epoch. */
  readonly issuedAt: number | undefined;
  readonly expiresAt: number;
  readonly notBefore: number | undefined;
  /** Subjects of the nested `act` claims (RFC 8693 §4.1), the current actor first. */
  readonly actChain: readonly string[];
  /** The `roles` claim: may narrow the agent's configured roles, never widen them. */
  readonly rolesClaim: readonly string[] | undefined;
  readonly tenant: string | undefined;
  /** RFC 8705 `cnf.x5t#S256`: the token is only valid with this client certificate. */
  readonly certificateThumbprint: string | undefined;
  /** Every claim, frozen. */
  readonly claims: Readonly<JWTPayload>;
}

export interface JwtVerifier {
  /** The token's verified claims; throws TokenRejectedError with a stable reason otherwise. */
  verify(token: string): Promise<VerifiedToken>;
}

export interface JwksTimings {
  /** Timeout of every metadata or JWKS request. */
  readonly timeoutMs: number;
  /** At most one JWKS fetch attempt per issuer in this interval (unknown kids cannot force more). */
  readonly refreshIntervalMs: number;
  readonly maxAgeMs: number;
  readonly maxStaleMs: number;
}

export interface JwtVerifierOptions {
  readonly auth: AuthConfig;
  /** This deployment's environment; tokens must carry it in the issuer's environment claim. */
  readonly environment: string;
  readonly issuers: readonly ExternalIssuerConfig[];
  /**
   * The built-in issuer's public keys, given the token's kid (an unknown one is looked up in the
   * store); required with `builtinIssuer`.
   */
  readonly localKeys?: ((kid: string | undefined) => Promise<JSONWebKeySet>) | undefined;
  /** The built-in issuer's `iss`. */
  readonly builtinIssuer?: string | undefined;
  readonly now?: (() => number) | undefined;
  readonly fetch?: typeof fetch | undefined;
  /** How many verified tokens to remember (least recently used go first); 0 turns it off. */
  readonly cacheSize?: number | undefined;
  readonly jwks?: Partial<JwksTimings> | undefined;
}

/** Claim names the built-in issuer writes; it and this verifier must agree on them. */
export const BUILTIN_TOKEN_CLAIMS = { agent: 'client_id', environment: 'warden_env' } as const;

/** Tokens longer than this are refused unparsed: no legitimate access token comes close. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

const DEFAULT_CACHE_SIZE = 10_000;
const MAX_ACT_DEPTH = 8;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** A kid is looked up, logged and may reach SQL or a path elsewhere: keep it to safe characters. */
const KID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** Header parameters that point at or carry a key: following them lets the attacker pick it. */
const KEY_REFERENCE_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'] as const;
const ACCESS_TOKEN_TYPES: ReadonlySet<string> = new Set(['at+jwt', 'application/at+jwt']);
const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set(ALLOWED_ALGORITHMS);
/** Everything the built-in issuer can sign with; its keys come from our own store. */
const BUILTIN_ALGORITHMS: readonly BuiltinIssuerConfig['algorithm'][] = ['ES256', 'EdDSA', 'RS256'];

interface IssuerProfile {
  readonly issuer: string;
  readonly algorithms: readonly string[];
  readonly agentClaim: string;
  readonly environmentClaim: string;
  /** RFC 9068 §4 typing is required of the built-in issuer, which always sets it. */
  readonly requireType: boolean;
  readonly keys: KeySource;
}

interface CheckedHeader {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly typ: string | undefined;
}

/** Builds a verifier for the configured issuers. Options are read once; nothing is mutated. */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const { auth, environment } = options;
  const now = options.now ?? Date.now;
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => fetch(input, init));
  const timings: JwksTimings = { ...JWKS_DEFAULTS, ...options.jwks };
  const profiles = new Map<string, IssuerProfile>();

  const addProfile = (profile: IssuerProfile): void => {
    if (profiles.has(profile.issuer))
      throw new TypeError(`issuer ${profile.issuer} configured twice`);
    profiles.set(profile.issuer, profile);
  };
  for (const issuer of options.issuers) {
    // Defence in depth: the config schema already allows only these, but callers may build configs.
    const algorithms = issuer.algorithms.filter((alg) => ASYMMETRIC_ALGORITHMS.has(alg));
    if (algorithms.length === 0)
      throw new TypeError(`issuer ${issuer.issuer} has no usable algorithm`);
    addProfile({
      issuer: issuer.issuer,
      algorithms,
      agentClaim: issuer.agentClaim,
      environmentClaim: issuer.environmentClaim,
      requireType: false,
      keys: createRemoteKeySource({
        issuer: issuer.issuer,
        jwksUri: issuer.jwksUri,
        fetch: fetchImpl,
        now,
        ...timings,
      }),
    });
  }
  if (options.builtinIssuer !== undefined) {
    if (options.localKeys === undefined) throw new TypeError('builtinIssuer needs localKeys');
    addProfile({
      issuer: options.builtinIssuer,
      algorithms: BUILTIN_ALGORITHMS,
      agentClaim: BUILTIN_TOKEN_CLAIMS.agent,
      environmentClaim: BUILTIN_TOKEN_CLAIMS.environment,
      requireType: true,
      keys: createLocalKeySource(options.localKeys),
    });
  }

  const cache = createVerifiedTokenCache<VerifiedToken>(options.cacheSize ?? DEFAULT_CACHE_SIZE);

  const verifyUncached = async (token: string, at: number): Promise<VerifiedToken> => {
    if (!COMPACT_JWS.test(token)) throw new TokenRejectedError('token_malformed');
    const header = checkHeader(token);
    const profile = routeByIssuer(token, profiles);
    if (!profile.algorithms.includes(header.alg)) {
      throw new TokenRejectedError('algorithm_refused', { claim: 'alg' });
    }
    if (profile.requireType && header.typ === undefined) {
      throw new TokenRejectedError('type_refused', { claim: 'typ' });
    }
    const keySet = await profile.keys.load(header.kid);
    // Without a kid, jose would try every key; make the issuer say which one it used.
    if (header.kid === undefined && keySet.jwks.keys.length > 1) {
      throw new TokenRejectedError('kid_required', { claim: 'kid' });
    }
    const payload = await verifySignature(token, keySet, profile, auth, at);
    return readClaims(payload, profile, { auth, environment, at });
  };

  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) throw new TokenRejectedError('token_too_large');
      const at = now();
      const cached = cache.get(token, at);
      if (cached !== undefined) return cached;
      const verified = await verifyUncached(token, at);
      cache.set(token, verified);
      return verified;
    },
  };
}

/** Refuses the scope check the caller asked for: `insufficient_scope` (RFC 6750 §3.1, 403). */
export function requireScopes(verified: VerifiedToken, required: readonly string[]): void {
  if (required.some((scope) => !verified.scopes.includes(scope))) {
    throw new TokenRejectedError('scope_insufficient', { claim: 'scope' });
  }
}

function checkHeader(token: string): CheckedHeader {
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token);
  } catch (cause) {
    throw new TokenRejectedError('token_malformed', { cause });
  }
  for (const name of KEY_REFERENCE_HEADERS) {
    if (Object.hasOwn(header, name))
      throw new TokenRejectedError('key_header_refused', { claim: name });
  }
  if (Object.hasOwn(header, 'crit'))
    throw new TokenRejectedError('crit_refused', { claim: 'crit' });
  const { alg, kid, typ } = header;
  if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.has(alg)) {
    throw new TokenRejectedError('algorithm_refused', { claim: 'alg' });
  }
  if (kid !== undefined && (typeof kid !== 'string' || !KID_PATTERN.test(kid))) {
    throw new TokenRejectedError('kid_invalid', { claim: 'kid' });
  }
  // RFC 9068 §4: an ID token or other JWT must not pass for an access token.
  if (
    typ !== undefined &&
    (typeof typ !== 'string' || !ACCESS_TOKEN_TYPES.has(typ.toLowerCase()))
  ) {
    throw new TokenRejectedError('type_refused', { claim: 'typ' });
  }
  return { alg, kid, typ };
}

/** The unverified `iss` only chooses whose keys to check the signature with. */
function routeByIssuer(token: string, profiles: ReadonlyMap<string, IssuerProfile>): IssuerProfile {
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch (cause) {
    throw new TokenRejectedError('token_malformed', { cause });
  }
  const profile = typeof iss === 'string' ? profiles.get(iss) : undefined;
  if (profile === undefined) throw new TokenRejectedError('issuer_unknown', { claim: 'iss' });
  return profile;
}

async function verifySignature(
  token: string,
  keySet: KeySet,
  profile: IssuerProfile,
  auth: AuthConfig,
  at: number,
): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, keySet.resolveKey, {
      algorithms: [...profile.algorithms],
      issuer: profile.issuer,
      requiredClaims: ['exp'],
      currentDate: new Date(at),
      clockTolerance: auth.clockSkewMs / 1000,
    });
    // RFC 8707: the gateway as a whole, or one of its endpoints (`<resource>/<upstream>`); which
    // endpoint a token may reach is checked per request by the caller.
    const audiences = payload.aud === undefined ? [] : readAudience(payload);
    if (!audiences.some((audience) => isGatewayAudience(audience, auth.resource))) {
      throw new TokenRejectedError('audience_mismatch', { claim: 'aud' });
    }
    return payload;
  } catch (error) {
    throw translateJoseError(error);
  }
}

/** True for the gateway's resource URL and for the resource URL of any of its endpoints. */
export function isGatewayAudience(audience: string, resource: string): boolean {
  if (audience === resource) return true;
  const endpoint = audience.startsWith(`${resource}/`) ? audience.slice(resource.length + 1) : '';
  return /^[^/?#]+$/.test(endpoint);
}

function translateJoseError(error: unknown): unknown {
  if (error instanceof TokenRejectedError) return error;
  const cause = error;
  if (error instanceof errors.JWTExpired)
    return new TokenRejectedError('token_expired', { claim: 'exp', cause });
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    if (claim === 'aud') return new TokenRejectedError('audience_mismatch', { claim, cause });
    if (claim === 'exp' && error.reason === 'missing') {
      return new TokenRejectedError('expiry_missing', { claim, cause });
    }
    if (claim === 'nbf' && error.reason === 'check_failed') {
      return new TokenRejectedError('token_not_yet_valid', { claim, cause });
    }
    if (claim === 'iss') return new TokenRejectedError('issuer_unknown', { claim, cause });
    return new TokenRejectedError('claim_invalid', { claim, cause });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenRejectedError('signature_invalid', { cause });
  }
  if (error instanceof errors.JWKSNoMatchingKey)
    return new TokenRejectedError('key_unknown', { cause });
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return new TokenRejectedError('algorithm_refused', { claim: 'alg', cause });
  }
  if (error instanceof errors.JWKSInvalid)
    return new TokenRejectedError('jwks_unavailable', { cause });
  if (error instanceof errors.JOSEError)
    return new TokenRejectedError('token_malformed', { cause });
  return error;
}

function readClaims(
  payload: JWTPayload,
  profile: IssuerProfile,
  context: { readonly auth: AuthConfig; readonly environment: string; readonly at: number },
): VerifiedToken {
  const { auth, environment, at } = context;
  if (typeof payload.exp !== 'number')
    throw new TokenRejectedError('expiry_missing', { claim: 'exp' });
  const expiresAt = payload.exp * 1000;
  const issuedAt = payload.iat === undefined ? undefined : payload.iat * 1000;
  const notBefore = payload.nbf === undefined ? undefined : payload.nbf * 1000;
  if (issuedAt !== undefined && issuedAt > at + auth.clockSkewMs) {
    throw new TokenRejectedError('issued_in_future', { claim: 'iat' });
  }
  // Without iat, the remaining lifetime is what an attacker holding the token could use.
  if (expiresAt - (issuedAt ?? at) > auth.maxTokenLifetimeMs) {
    throw new TokenRejectedError('lifetime_exceeded', { claim: 'exp' });
  }
  if (payload[profile.environmentClaim] !== environment) {
    throw new TokenRejectedError('environment_mismatch', { claim: profile.environmentClaim });
  }
  const subject = readString(payload, 'sub');
  if (subject === undefined) throw new TokenRejectedError('claim_missing', { claim: 'sub' });
  const agentClaimValue = readString(payload, profile.agentClaim) ?? readString(payload, 'azp');
  if (agentClaimValue === undefined) {
    throw new TokenRejectedError('claim_missing', { claim: profile.agentClaim });
  }
  return deepFreeze({
    issuer: profile.issuer,
    subject,
    agentClaimValue,
    audience: readAudience(payload),
    scopes: readScopes(payload),
    tokenId: readString(payload, 'jti'),
    issuedAt,
    expiresAt,
    notBefore,
    actChain: readActChain(payload),
    rolesClaim: readRoles(payload),
    tenant: readString(payload, 'tenant'),
    certificateThumbprint: readCertificateThumbprint(payload),
    claims: payload,
  });
}

function readString(claims: JWTPayload, name: string): string | undefined {
  const value = claims[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new TokenRejectedError('claim_invalid', { claim: name });
  return value;
}

function readAudience(claims: JWTPayload): string[] {
  const audience = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
  if (!isStringArray(audience)) throw new TokenRejectedError('claim_invalid', { claim: 'aud' });
  return [...audience];
}

function readScopes(claims: JWTPayload): string[] {
  const name = claims.scope !== undefined ? 'scope' : 'scp';
  const value = claims[name];
  if (value === undefined) return [];
  // `scope` is RFC 9068's string; `scp` is an array at some IdPs and a string at others.
  const scopes = typeof value === 'string' ? value.split(' ') : value;
  if (!isStringArray(scopes) || (name === 'scope' && typeof value !== 'string')) {
    throw new TokenRejectedError('claim_invalid', { claim: name });
  }
  return [...new Set(scopes.filter((scope) => scope !== ''))];
}

function readActChain(claims: JWTPayload): string[] {
  const chain: string[] = [];
  let actor = claims.act;
  while (actor !== undefined) {
    if (!isRecord(actor) || typeof actor.sub !== 'string' || chain.length === MAX_ACT_DEPTH) {
      throw new TokenRejectedError('claim_invalid', { claim: 'act' });
    }
    chain.push(actor.sub);
    actor = actor.act;
  }
  return chain;
}

/** A roles claim only narrows; ignoring a malformed one would widen, so it is refused. */
function readRoles(claims: JWTPayload): string[] | undefined {
  const roles = claims.roles;
  if (roles === undefined) return undefined;
  if (!isStringArray(roles)) throw new TokenRejectedError('claim_invalid', { claim: 'roles' });
  return [...roles];
}

/**
 * RFC 8705 certificate binding is enforced by the caller. Any other confirmation method (DPoP's
 * `jkt`, …) is one this gateway cannot check, and accepting it as a bearer token would undo it.
 */
function readCertificateThumbprint(claims: JWTPayload): string | undefined {
  const cnf = claims.cnf;
  if (cnf === undefined) return undefined;
  if (!isRecord(cnf)) throw new TokenRejectedError('claim_invalid', { claim: 'cnf' });
  for (const method of Object.keys(cnf)) {
    if (method !== 'x5t#S256')
      throw new TokenRejectedError('binding_unsupported', { claim: 'cnf' });
  }
  const thumbprint = cnf['x5t#S256'];
  if (thumbprint === undefined) return undefined;
  if (typeof thumbprint !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(thumbprint)) {
    throw new TokenRejectedError('claim_invalid', { claim: 'cnf' });
  }
  return thumbprint;
}

function isStringArray(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
