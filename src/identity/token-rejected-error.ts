/**
 * Why an access token was refused. Each reason is stable (tests, audit records and the error
 * catalogue key on it); the message is safe to show a client and never names keys or URLs.
 */

/** The RFC 6750 §3.1 error code a refusal maps to in `WWW-Authenticate`. */
export type OAuthErrorCode = 'invalid_token' | 'insufficient_scope' | 'invalid_request';

const MESSAGES = {
  token_too_large: 'The access token is larger than this gateway accepts.',
  token_malformed: 'The access token is not a well-formed JWS compact serialization.',
  algorithm_refused: 'The access token is signed with an algorithm this issuer may not use.',
  key_header_refused:
    'The access token names or embeds its own verification key (jku, x5u, jwk, x5c).',
  crit_refused: 'The access token declares critical header extensions, which are not supported.',
  kid_invalid: 'The access token key id (kid) is malformed.',
  kid_required: 'The access token must name its signing key (kid): the issuer publishes several.',
  type_refused: 'The token is not a JWT access token (typ must be at+jwt).',
  issuer_unknown:
    'The access token was issued by an authorization server this gateway does not trust.',
  key_unknown: "The access token's signing key is not among the issuer's published keys.",
  jwks_unavailable:
    "The issuer's signing keys could not be obtained; the token cannot be verified now.",
  signature_invalid: 'The access token signature is invalid.',
  audience_mismatch: 'The access token is not meant for this resource (aud).',
  expiry_missing: 'The access token has no expiry (exp).',
  token_expired: 'The access token has expired.',
  token_not_yet_valid: 'The access token is not valid yet (nbf).',
  issued_in_future: 'The access token claims to be issued in the future (iat).',
  lifetime_exceeded: 'The access token lives longer than this gateway accepts.',
  environment_mismatch: 'The access token was issued for another environment.',
  claim_missing: 'The access token lacks a required claim.',
  claim_invalid: 'The access token has a claim of the wrong type or shape.',
  binding_unsupported: 'The access token is bound to a proof this gateway cannot check (cnf).',
  scope_insufficient: 'The access token lacks a scope this resource requires.',
} as const satisfies Record<string, string>;

export type TokenRejectionReason = keyof typeof MESSAGES;

/** A refused access token. `reason` is stable; `oauthError` is what the client is told. */
export class TokenRejectedError extends Error {
  readonly reason: TokenRejectionReason;
  readonly oauthError: OAuthErrorCode;
  /** The claim or header parameter at fault, when there is one. */
  readonly claim: string | undefined;

  constructor(
    reason: TokenRejectionReason,
    options?: { readonly claim?: string; readonly cause?: unknown },
  ) {
    super(MESSAGES[reason], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenRejectedError';
    this.reason = reason;
    this.oauthError = reason === 'scope_insufficient' ? 'insufficient_scope' : 'invalid_token';
    this.claim = options?.claim;
  }
}
