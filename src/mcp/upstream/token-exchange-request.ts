/**
 * One RFC 8693 token exchange request to the upstream's authorization server: Warden
 * authenticates as its client (client_secret_basic) and presents the subject token it signed.
 * Every failure — refused, malformed, unreachable, too slow — is a WardenError
 * WARDEN_UPSTREAM_CREDENTIAL_FAILED, so the call it was for is refused (fail closed).
 */
import type { TokenExchangeConfig } from '../../config/config.js';
import { WardenError } from '../../domain/errors.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** Token types a bearer access token may be issued as (RFC 8693 §3). */
const USABLE_TOKEN_TYPES = new Set([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]);

/** A token response is small; a larger one is refused rather than buffered. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** Why an exchange failed, in `error.data.reason` and the audit record. */
export type TokenExchangeFailure =
  | 'exchange_refused'
  | 'malformed_response'
  | 'authorization_server_unreachable'
  | 'authorization_server_timeout'
  | 'client_secret_missing'
  | 'no_caller'
  | 'no_signer';

export interface ExchangedToken {
  readonly accessToken: string;
  /** Epoch ms; undefined when the authorization server gave no `expires_in`. */
  readonly expiresAt: number | undefined;
}

export function credentialFailure(
  reason: TokenExchangeFailure,
  message: string,
  extra: { readonly cause?: unknown; readonly details?: Record<string, unknown> } = {},
): WardenError {
  return new WardenError('WARDEN_UPSTREAM_CREDENTIAL_FAILED', message, {
    cause: extra.cause,
    details: { reason, ...extra.details },
  });
}

export async function requestTokenExchange(
  config: TokenExchangeConfig,
  subjectToken: string,
  now: () => number,
): Promise<ExchangedToken> {
  const secret = process.env[config.clientSecretEnv]?.trim();
  if (!secret)
    throw credentialFailure(
      'client_secret_missing',
      "Warden's client secret for the upstream's authorization server is not configured.",
    );
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: subjectToken,
    subject_token_type: JWT_TOKEN_TYPE,
    requested_token_type: ACCESS_TOKEN_TYPE,
    audience: config.audience,
  });
  if (config.resource !== undefined) form.set('resource', config.resource);
  if (config.scopes.length > 0) form.set('scope', config.scopes.join(' '));
  // RFC 6749 §2.3.1: the id and secret are form-encoded before they are joined.
  const basic = Buffer.from(
    `${encodeURIComponent(config.clientId)}:${encodeURIComponent(secret)}`,
  ).toString('base64');

  const sentAt = now();
  let status: number;
  let text: string | undefined;
  try {
    const response = await fetch(config.tokenEndpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${basic}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form,
      redirect: 'error',
      signal: AbortSignal.timeout(config.timeoutMs),
    });
    status = response.status;
    text = await readCapped(response);
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    throw credentialFailure(
      timedOut ? 'authorization_server_timeout' : 'authorization_server_unreachable',
      timedOut
        ? "The upstream's authorization server did not answer the token exchange in time."
        : "The upstream's authorization server could not be reached for the token exchange.",
      { cause: error },
    );
  }
  const body = parseObject(text);
  if (status !== 200) {
    const error = oauthErrorCodeOf(body);
    throw credentialFailure(
      'exchange_refused',
      "The upstream's authorization server refused the token exchange for this caller.",
      { details: { status, ...(error !== undefined && { error }) } },
    );
  }
  return readTokenResponse(body, sentAt);
}

/** RFC 8693 §2.2.1: the fields a usable answer must have, checked before the token is used. */
function readTokenResponse(
  body: Record<string, unknown> | undefined,
  sentAt: number,
): ExchangedToken {
  const malformed = (what: string) =>
    credentialFailure(
      'malformed_response',
      `The upstream's authorization server answered the token exchange with ${what}.`,
    );
  if (body === undefined) throw malformed('something that is not a JSON object');
  const accessToken = body['access_token'];
  if (typeof accessToken !== 'string' || accessToken.length === 0 || /[\s\0]/.test(accessToken))
    throw malformed('no usable access_token');
  const tokenType = body['token_type'];
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer')
    throw malformed('a token that is not a Bearer token');
  const issuedType = body['issued_token_type'];
  if (
    issuedType !== undefined &&
    (typeof issuedType !== 'string' || !USABLE_TOKEN_TYPES.has(issuedType))
  )
    throw malformed('a token that is not an access token');
  const expiresIn = body['expires_in'];
  if (expiresIn === undefined) return { accessToken, expiresAt: undefined };
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0)
    throw malformed('an invalid expires_in');
  // Counted from when the request was sent: the token may have been issued any time after.
  return { accessToken, expiresAt: sentAt + expiresIn * 1000 };
}

/**
 * The RFC 6749 §5.2 `error` code of a refusal, as the client may see it in `error.data`: only a
 * code's shape (`invalid_grant`), never free text that could carry a token or a message the
 * authorization server echoed.
 */
function oauthErrorCodeOf(body: Record<string, unknown> | undefined): string | undefined {
  const error = body?.['error'];
  return typeof error === 'string' && /^[a-z][a-z0-9_]{0,63}$/.test(error) ? error : undefined;
}

/** The body as text, or undefined when it is larger than any token response should be. */
async function readCapped(response: Response): Promise<string | undefined> {
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Leaving the loop early cancels the stream: the rest is never read.
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
