/**
 * Why a login through the company's identity provider did not produce a person. Messages name
 * what went wrong and what to do, never the client secret, a code, a token or the provider's
 * free-text error description (which an attacker can choose in a forged callback).
 */
import {
  AuthorizationResponseError,
  ClientError,
  ResponseBodyError,
  WWWAuthenticateChallengeError,
} from 'openid-client';
import { LocalError } from '../../domain/errors.js';

/** Stable codes of every CompanyLoginError; callers branch on these, never on the message. */
export const COMPANY_LOGIN_ERROR_CODES = [
  /** The env var named by `auth.login.oidc.client_secret_env` is unset or empty. */
  'LOGIN_SECRET_MISSING',
  /** The provider's metadata could not be fetched or is not valid for the configured issuer. */
  'LOGIN_DISCOVERY_FAILED',
  /** The callback's `state` is not the one this login sent (CSRF, or another browser's callback). */
  'LOGIN_STATE_MISMATCH',
  /** This login's callback was already used once. */
  'LOGIN_CALLBACK_REPLAYED',
  /** The callback's `iss` names another issuer, or is missing where the provider sends it (mix-up). */
  'LOGIN_ISSUER_MISMATCH',
  /** The provider answered the login with an error (`error=access_denied`, `login_required`, …). */
  'LOGIN_PROVIDER_ERROR',
  /** The provider's token endpoint refused the code (used, expired, PKCE) or the client. */
  'LOGIN_TOKEN_EXCHANGE_FAILED',
  /** The ID token (or user info) failed validation: nonce, issuer, audience, expiry, signature. */
  'LOGIN_ID_TOKEN_INVALID',
  /** The claim naming the person in Warden (`user_claim`) is missing or not a string. */
  'LOGIN_CLAIM_MISSING',
  /** `user_claim` is `email` and the provider says that address is not verified. */
  'LOGIN_EMAIL_UNVERIFIED',
] as const;

export type CompanyLoginErrorCode = (typeof COMPANY_LOGIN_ERROR_CODES)[number];

export class CompanyLoginError extends LocalError {
  declare readonly code: CompanyLoginErrorCode;
  /** The OAuth `error` code the provider sent (`access_denied`, `invalid_grant`), if any. */
  readonly providerError: string | undefined;
  /** openid-client's error code (`OAUTH_JWT_CLAIM_COMPARISON_FAILED`, …), for the log. */
  readonly libraryCode: string | undefined;

  constructor(
    code: CompanyLoginErrorCode,
    message: string,
    details: { providerError?: string | undefined; libraryCode?: string | undefined } = {},
  ) {
    super(code, message);
    this.name = 'CompanyLoginError';
    this.providerError = details.providerError;
    this.libraryCode = details.libraryCode;
  }
}

/**
 * An OAuth error code as sent, if it looks like one (RFC 6749 §5.2 allows only printable ASCII
 * without `"` and `\`); anything else is not repeated, since a forged callback chooses it.
 */
function oauthErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\w.-]{1,64}$/.test(value) ? value : undefined;
}

/**
 * The CompanyLoginError for an error openid-client raised at `stage`. The library's own error is
 * not kept as `cause`: its cause carries response bodies (tokens, claims).
 */
export function toCompanyLoginError(
  error: unknown,
  stage: 'discovery' | 'token' | 'userinfo',
  issuer: string,
): CompanyLoginError {
  if (error instanceof CompanyLoginError) return error;
  if (error instanceof AuthorizationResponseError) {
    const providerError = oauthErrorCode(error.error);
    return new CompanyLoginError(
      'LOGIN_PROVIDER_ERROR',
      `the identity provider ${issuer} ended the login with ${providerError ?? 'an error'}`,
      { providerError, libraryCode: error.code },
    );
  }
  const libraryCode = libraryCodeOf(error);
  if (stage === 'discovery')
    return new CompanyLoginError(
      'LOGIN_DISCOVERY_FAILED',
      `could not discover the identity provider ${issuer} (${libraryCode ?? 'unreachable'}); check auth.login.oidc.issuer and that the provider is up`,
      { libraryCode },
    );
  if (error instanceof ResponseBodyError || error instanceof WWWAuthenticateChallengeError) {
    const providerError = oauthErrorCode(
      error instanceof ResponseBodyError ? error.error : error.cause[0]?.parameters.error,
    );
    return new CompanyLoginError(
      'LOGIN_TOKEN_EXCHANGE_FAILED',
      `the identity provider ${issuer} refused the ${stage === 'token' ? 'authorization code' : 'user info request'} (${providerError ?? 'no error code'}); an invalid_client means auth.login.oidc.client_id or the secret is wrong`,
      { providerError, libraryCode },
    );
  }
  if (
    libraryCode === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' ||
    libraryCode === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED' ||
    libraryCode === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' ||
    libraryCode === 'OAUTH_KEY_SELECTION_FAILED' ||
    libraryCode === 'OAUTH_INVALID_RESPONSE'
  )
    return new CompanyLoginError(
      'LOGIN_ID_TOKEN_INVALID',
      `the identity provider ${issuer} answered with an ID token or user info Warden does not accept (${libraryCode})`,
      { libraryCode },
    );
  return new CompanyLoginError(
    'LOGIN_TOKEN_EXCHANGE_FAILED',
    `the login could not be completed with the identity provider ${issuer} (${libraryCode ?? 'unreachable'})`,
    { libraryCode },
  );
}

function libraryCodeOf(error: unknown): string | undefined {
  if (error instanceof ClientError || error instanceof ResponseBodyError) return error.code;
  if (error instanceof Error && 'code' in error && typeof error.code === 'string')
    return error.code;
  return undefined;
}
