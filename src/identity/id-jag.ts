/**
 * Verifies an Identity Assertion JWT Authorization Grant (ID-JAG, draft-ietf-oauth-identity-
 * assertion-authz-grant; MCP SEP-990): a JWT an enterprise IdP signs to vouch that a person lets
 * one client act for them here. It is presented at the token endpoint as an RFC 7523 JWT-bearer
 * grant. The outcome is a value naming the reason, so the endpoint answers `invalid_grant` and
 * records the reason without echoing the assertion or what was wrong with it.
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { ALLOWED_ALGORITHMS } from '../config/auth-schema.js';
import type { IdJagIssuerConfig } from '../config/login-schema.js';
import type { AssertionReplayRepository } from '../store/types.js';
import { createAssertionReplayGuard } from './assertion-replay.js';
import { createRemoteKeySource, JWKS_DEFAULTS } from './jwks-cache.js';
import type { KeySource, RemoteKeySourceOptions } from './jwks-cache.js';
import { userIdFromClaims } from './login/person.js';

/** RFC 7523 §2.1: the grant type an ID-JAG is presented with. */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The `typ` header every ID-JAG carries (RFC 8725 §3.11 explicit typing). */
export const ID_JAG_TYPE = 'oauth-id-jag+jwt';

/** An ID-JAG lives minutes: it is exchanged at once, and a longer one is a stolen one's gift. */
export const MAX_ID_JAG_LIFETIME_MS = 5 * 60_000;

/** Longest accepted assertion, as for access tokens: bounds what is decoded and hashed. */
const MAX_ASSERTION_LENGTH = 16 * 1024;

/** Asymmetric only: an IdP's assertion signed with `none` or a shared key (HS*) is never taken. */
const IDP_ALGORITHMS: readonly string[] = ALLOWED_ALGORITHMS;

/** The longest person id taken from an assertion (as for built-in users). */
const MAX_USER_ID_LENGTH = 256;

/** Stable reasons an ID-JAG was refused; recorded in `auth.failed`, never sent to the client. */
export type IdJagFailure =
  /** Not a compact signed JWT, or too large to be one. */
  | 'id_jag_malformed'
  /** Its `typ` is not `oauth-id-jag+jwt`: an ID token or another JWT offered in its place. */
  | 'id_jag_wrong_type'
  /** `none`, a shared-key (HS*) or another algorithm not accepted for IdP signatures. */
  | 'id_jag_algorithm_refused'
  /** Its `iss` is no configured enterprise IdP. */
  | 'id_jag_unknown_issuer'
  /** The IdP's keys could not be had (fail closed). */
  | 'id_jag_keys_unavailable'
  /** Not signed by a key the IdP publishes. */
  | 'id_jag_signature_invalid'
  /** Its `aud` is not (only) this authorization server's issuer identifier. */
  | 'id_jag_wrong_audience'
  /** Its `client_id` is not the client that authenticated and presents it. */
  | 'id_jag_client_mismatch'
  | 'id_jag_expired'
  /** `exp` too far after `iat` or after now, or `iat` too old or in the future. */
  | 'id_jag_lifetime_too_long'
  /** A claim is missing or of the wrong shape (jti, iat, resource, scope, …). */
  | 'id_jag_claims_invalid'
  /**
   * The claim naming the person (`user_claim`) is missing, empty, too long, or not a plain id
   * (white space around it, control or invisible characters).
   */
  | 'id_jag_no_user'
  /** The person it names is a registered agent: a person cannot pass for an agent. */
  | 'id_jag_user_is_agent'
  /** Its `jti` was used already, on this replica or another. */
  | 'id_jag_replayed';

/** An accepted ID-JAG: who vouched, for whom, and what it allows. */
export interface VerifiedIdJag {
  readonly idp: IdJagIssuerConfig;
  /** The person's Warden user id, read from the IdP's `user_claim`. */
  readonly userId: string;
  /** Every claim, for mapping groups to roles. */
  readonly claims: Readonly<JWTPayload>;
  /** The `resource` claim as a list (empty when absent). */
  readonly resources: readonly string[];
  /** The `scope` claim split (undefined when absent). */
  readonly scopes: readonly string[] | undefined;
}

export type IdJagVerification =
  | { readonly outcome: 'accepted'; readonly grant: VerifiedIdJag }
  | {
      readonly outcome: 'refused';
      readonly reason: IdJagFailure;
      /** The configured IdP that signed it, once known; a claimed stranger is not named. */
      readonly idp: string | undefined;
    };

export interface IdJagVerifier {
  /** Checks `assertion` as presented by the authenticated agent `clientId`. */
  verify(assertion: string, clientId: string): Promise<IdJagVerification>;
}

export interface IdJagVerifierOptions {
  readonly idps: readonly IdJagIssuerConfig[];
  /** This authorization server's issuer identifier: the only accepted `aud`. */
  readonly audience: string;
  /** Registered agent ids: an assertion naming one of them as the person is refused. */
  readonly agentIds: ReadonlySet<string> | ReadonlyMap<string, unknown>;
  readonly clockSkewMs: number;
  readonly now?: () => number;
  readonly maxLifetimeMs?: number;
  readonly fetch?: typeof fetch;
  /** JWKS cache timings; defaults as for external token issuers. */
  readonly jwks?: Partial<
    Pick<RemoteKeySourceOptions, 'timeoutMs' | 'refreshIntervalMs' | 'maxAgeMs' | 'maxStaleMs'>
  >;
  /** Used assertion ids, shared with the other replicas; absent: this process only. */
  readonly assertionReplays?: AssertionReplayRepository | undefined;
  readonly onError?: ((error: unknown) => void) | undefined;
}

interface TrustedIdp {
  readonly config: IdJagIssuerConfig;
  readonly keys: KeySource;
}

export function createIdJagVerifier(options: IdJagVerifierOptions): IdJagVerifier {
  const { audience, agentIds, clockSkewMs } = options;
  const now = options.now ?? Date.now;
  const maxLifetimeMs = options.maxLifetimeMs ?? MAX_ID_JAG_LIFETIME_MS;
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => fetch(input, init));
  const idps = new Map<string, TrustedIdp>();
  for (const config of options.idps) {
    if (idps.has(config.issuer)) throw new TypeError(`ID-JAG issuer ${config.issuer} twice`);
    idps.set(config.issuer, {
      config,
      keys: createRemoteKeySource({
        issuer: config.issuer,
        jwksUri: config.jwksUri,
        fetch: fetchImpl,
        now,
        ...JWKS_DEFAULTS,
        ...options.jwks,
      }),
    });
  }
  const replays = createAssertionReplayGuard({
    repository: options.assertionReplays,
    now,
    clockSkewMs,
    maxRemembered: 10_000,
    onError: options.onError,
  });

  async function verify(assertion: string, clientId: string): Promise<IdJagVerification> {
    const refuse = (reason: IdJagFailure, idp?: TrustedIdp): IdJagVerification => ({
      outcome: 'refused',
      reason,
      idp: idp?.config.issuer,
    });
    if (assertion.length > MAX_ASSERTION_LENGTH) return refuse('id_jag_malformed');
    let header;
    let issuer: unknown;
    try {
      header = decodeProtectedHeader(assertion);
      issuer = decodeJwt(assertion).iss;
    } catch {
      return refuse('id_jag_malformed');
    }
    // The type first: an ID token or access token of a trusted IdP must never pass for a grant.
    if (!isIdJagType(header.typ)) return refuse('id_jag_wrong_type');
    if (typeof header.alg !== 'string' || !IDP_ALGORITHMS.includes(header.alg))
      return refuse('id_jag_algorithm_refused');
    const idp = typeof issuer === 'string' ? idps.get(issuer) : undefined;
    if (!idp) return refuse('id_jag_unknown_issuer');

    let keySet;
    try {
      keySet = await idp.keys.load(header.kid);
    } catch {
      return refuse('id_jag_keys_unavailable', idp);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, keySet.resolveKey, {
        algorithms: [...IDP_ALGORITHMS],
        typ: ID_JAG_TYPE,
        issuer: idp.config.issuer,
        audience,
        requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
        maxTokenAge: Math.floor(maxLifetimeMs / 1000),
        clockTolerance: Math.floor(clockSkewMs / 1000),
        currentDate: new Date(now()),
      }));
    } catch (error) {
      return refuse(failureOf(error), idp);
    }

    // One audience only: an assertion also meant for another server could be spent there too.
    if (Array.isArray(payload.aud) && payload.aud.length !== 1)
      return refuse('id_jag_wrong_audience', idp);
    if (payload['client_id'] !== clientId) return refuse('id_jag_client_mismatch', idp);
    const issuedAt = (payload.iat ?? 0) * 1000;
    const expiresAt = (payload.exp ?? 0) * 1000;
    if (expiresAt - issuedAt > maxLifetimeMs || expiresAt > now() + maxLifetimeMs + clockSkewMs)
      return refuse('id_jag_lifetime_too_long', idp);
    const resources = readResources(payload['resource']);
    const scopes = readScopes(payload['scope']);
    if (typeof payload.jti !== 'string' || payload.jti === '' || !resources || scopes === null)
      return refuse('id_jag_claims_invalid', idp);
    const userId = userIdFromClaims(payload, idp.config);
    if (userId === undefined || userId.length > MAX_USER_ID_LENGTH)
      return refuse('id_jag_no_user', idp);
    if (agentIds.has(userId)) return refuse('id_jag_user_is_agent', idp);
    // Only assertions the IdP signed reach the shared replay set, so strangers cannot fill it.
    if (!(await replays.claim(`id-jag:${idp.config.issuer}`, payload.jti, expiresAt)))
      return refuse('id_jag_replayed', idp);
    return {
      outcome: 'accepted',
      grant: { idp: idp.config, userId, claims: payload, resources, scopes },
    };
  }

  return { verify };
}

/**
 * RFC 7515 §4.1.9: `typ` is a media type, compared case-insensitively, and the `application/`
 * prefix may be left out.
 */
function isIdJagType(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const normalized = typ.toLowerCase();
  return normalized === ID_JAG_TYPE || normalized === `application/${ID_JAG_TYPE}`;
}

function failureOf(error: unknown): IdJagFailure {
  const { code, claim } = error as { code?: unknown; claim?: unknown };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'id_jag_expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
    case 'ERR_JWS_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'id_jag_signature_invalid';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'id_jag_algorithm_refused';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'aud') return 'id_jag_wrong_audience';
      if (claim === 'iat') return 'id_jag_lifetime_too_long';
      if (claim === 'typ') return 'id_jag_wrong_type';
      return 'id_jag_claims_invalid';
    default:
      return 'id_jag_claims_invalid';
  }
}

/** `resource`: one URI or an array of them (RFC 8707 §2); null when it is neither. */
function readResources(claim: unknown): readonly string[] | null {
  if (claim === undefined) return [];
  if (typeof claim === 'string') return [claim];
  if (Array.isArray(claim) && claim.length > 0 && claim.every((item) => typeof item === 'string'))
    return claim as string[];
  return null;
}

/** `scope`: space-separated scope tokens (RFC 6749 §3.3); null when malformed. */
function readScopes(claim: unknown): readonly string[] | undefined | null {
  if (claim === undefined) return undefined;
  if (typeof claim !== 'string') return null;
  const scopes = claim.split(' ');
  return scopes.some((scope) => scope === '') ? null : scopes;
}

/** RFC 8414 metadata that also lists the jwt-bearer grant, offered with an enterprise IdP. */
export function advertiseJwtBearerGrant(
  metadata: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const listed: unknown = metadata['grant_types_supported'];
  const grants = Array.isArray(listed) ? (listed as unknown[]) : [];
  return {
    ...metadata,
    grant_types_supported: [...new Set([...grants, JWT_BEARER_GRANT_TYPE])],
  };
}
