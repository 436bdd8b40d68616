/**
 * The built-in token issuer: mints short-lived RFC 9068 JWT access tokens for registered agents,
 * so the embedded setup needs no identity provider. Tokens are bound to this gateway's resource
 * (`aud`) and environment (`warden_env`), and optionally to a client certificate (RFC 8705).
 */
import { isGatewayAudience } from './jwt-verifier.js';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { SCOPE_TOKEN_PATTERN } from '../config/auth-schema.js';
import type { AgentConfig, AuthConfig, BuiltinIssuerConfig } from '../config/config.js';
import { LocalError } from '../domain/errors.js';
import type { SigningKeyRepository } from '../store/types.js';
import { createSigningKeyring, type SigningKeyringOptions } from './signing-keys.js';
import type { SigningKeyring } from './signing-keys.js';

/** The claim carrying the environment a token is valid in (see ExternalIssuerConfig). */
export const ENVIRONMENT_CLAIM = 'warden_env';

/**
 * The claim naming the registered agent an app acts as, in tokens the built-in issuer mints for
 * apps acting for a person (their `client_id` is the app's). Read only from the built-in issuer.
 */
export const AGENT_CLAIM = 'warden_agent';

export type IssuerErrorCode =
  | 'WARDEN_INVALID_RESOURCE'
  | 'WARDEN_UNKNOWN_AGENT'
  | 'WARDEN_TOKEN_TTL_TOO_LONG'
  | 'WARDEN_INVALID_TOKEN_TTL'
  | 'WARDEN_INVALID_SCOPE'
  | 'WARDEN_SCOPE_NOT_ALLOWED'
  | 'WARDEN_INVALID_USER'
  | 'WARDEN_INVALID_CERTIFICATE_THUMBPRINT';

/**
 * Why a token was not issued. Raised to the token endpoint (which answers with an OAuth error)
 * and to the CLI (which prints it); never sent to a client as is.
 */
export class IssuerError extends LocalError {
  declare readonly code: IssuerErrorCode;

  constructor(code: IssuerErrorCode, message: string) {
    super(code, message);
    this.name = 'IssuerError';
  }
}

export interface IssueTokenRequest {
  readonly agent: AgentConfig;
  /** The human on whose behalf the agent acts; `sub` is the agent itself without one. */
  readonly user?: string;
  /** Requested lifetime; above the issuer's maximum it is refused, not capped. */
  readonly ttlMs?: number;
  /**
   * Defaults to `auth.requiredScopes`. Each must be one of those or one of the agent's configured
   * scopes in the registry (`WARDEN_SCOPE_NOT_ALLOWED` otherwise), whoever asks: the token
   * endpoint or the operator's CLI.
   */
  readonly scopes?: readonly string[];
  /** SHA-256 thumbprint (base64url) of the client certificate to bind the token to. */
  readonly certificateThumbprint?: string;
  /** One endpoint's resource (`<auth.resource>/<upstream>`) to narrow the audience to. */
  readonly resource?: string;
  /**
   * An app acting for `user` (a person who logged in, or whom an enterprise IdP vouched for):
   * the token's `client_id` and `act` name the app, `warden_agent` the registered agent it acts
   * as, and `roles` the roles it acts with (see `actingRoles`). Requires `user`.
   */
  readonly app?: { readonly clientId: string; readonly roles: readonly string[] };
}

export interface IssuedToken {
  readonly token: string;
  readonly tokenId: string;
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  readonly scopes: readonly string[];
}

export interface BuiltinIssuer {
  /** The `iss` of every token it mints. */
  readonly issuer: string;
  /** The audience of every token it mints (`auth.resource`). */
  readonly resource: string;
  /** The longest lifetime a token may be issued with. */
  readonly maxTtlMs: number;
  readonly algorithm: BuiltinIssuerConfig['algorithm'];
  issueToken(request: IssueTokenRequest): Promise<IssuedToken>;
}

export interface BuiltinIssuerOptions {
  readonly config: BuiltinIssuerConfig;
  readonly auth: AuthConfig;
  readonly environment: string;
  /** The agent registry: tokens are issued only to agents in it. */
  readonly agents: ReadonlyMap<string, AgentConfig>;
  readonly keyring: SigningKeyring;
  readonly now?: () => number;
  /** Token ids; defaults to 16 random bytes, base64url. */
  readonly randomId?: () => string;
}

// base64url of a SHA-256 digest: 32 bytes, 43 characters.
const SHA256_THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

export function createBuiltinIssuer(options: BuiltinIssuerOptions): BuiltinIssuer {
  const { config, auth, environment, agents, keyring } = options;
  const now = options.now ?? Date.now;
  const randomId = options.randomId ?? (() => randomBytes(16).toString('base64url'));
  // Never mint a token the gateway's own verifier would refuse as too long-lived.
  const maxTtlMs = maxTtlOf(config, auth);
  const defaultTtlMs = Math.min(config.tokenTtlMs, maxTtlMs);

  return Object.freeze({
    issuer: config.issuer,
    resource: auth.resource,
    maxTtlMs,
    algorithm: config.algorithm,

    async issueToken(request: IssueTokenRequest): Promise<IssuedToken> {
      const agent = agents.get(request.agent.id);
      if (!agent)
        throw new IssuerError(
          'WARDEN_UNKNOWN_AGENT',
          `"${request.agent.id}" is not in the agent registry`,
        );
      const ttlMs = checkTtl(request.ttlMs ?? defaultTtlMs, maxTtlMs);
      // The registry's agent, not the caller's copy: only the config decides what it may hold.
      const scopes = checkScopes(request.scopes ?? auth.requiredScopes, agent, auth);
      if (request.user !== undefined && request.user.trim() === '')
        throw new IssuerError('WARDEN_INVALID_USER', 'the user must be a non-empty string');
      if (request.app !== undefined && request.user === undefined)
        throw new IssuerError(
          'WARDEN_INVALID_USER',
          'a token for an app names the person it acts for',
        );
      const thumbprint = request.certificateThumbprint;
      if (thumbprint !== undefined && !SHA256_THUMBPRINT.test(thumbprint))
        throw new IssuerError(
          'WARDEN_INVALID_CERTIFICATE_THUMBPRINT',
          'the certificate thumbprint must be a base64url SHA-256 digest (x5t#S256)',
        );

      const audience = request.resource ?? auth.resource;
      if (!isGatewayAudience(audience, auth.resource))
        throw new IssuerError(
          'WARDEN_INVALID_RESOURCE',
          'the resource is not served by this gateway',
        );
      const key = await keyring.currentKey();
      const issuedAtSeconds = Math.floor(now() / 1000);
      const expiresAtSeconds = issuedAtSeconds + Math.floor(ttlMs / 1000);
      const tokenId = randomId();
      const claims: Record<string, unknown> = {
        client_id: agent.id,
        [ENVIRONMENT_CLAIM]: environment,
      };
      if (request.app !== undefined) {
        claims['client_id'] = request.app.clientId;
        claims[AGENT_CLAIM] = agent.id;
        claims['act'] = { sub: request.app.clientId };
        claims['roles'] = [...request.app.roles];
      }
      if (scopes.length > 0) claims['scope'] = scopes.join(' ');
      if (thumbprint !== undefined) claims['cnf'] = { 'x5t#S256': thumbprint };

      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: key.algorithm, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(config.issuer)
        .setAudience(audience)
        .setSubject(request.user ?? agent.id)
        .setJti(tokenId)
        .setIssuedAt(issuedAtSeconds)
        .setExpirationTime(expiresAtSeconds)
        .sign(key.privateKey);
      return {
        token,
        tokenId,
        issuedAt: issuedAtSeconds * 1000,
        expiresAt: expiresAtSeconds * 1000,
        scopes,
      };
    },
  });
}

/** Never mint a token the gateway's own verifier would refuse as too long-lived. */
function maxTtlOf(config: BuiltinIssuerConfig, auth: AuthConfig): number {
  return Math.min(config.maxTtlMs, auth.maxTokenLifetimeMs);
}

function checkTtl(ttlMs: number, maxTtlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs < 1000)
    throw new IssuerError('WARDEN_INVALID_TOKEN_TTL', 'the token lifetime must be at least 1s');
  if (ttlMs > maxTtlMs)
    throw new IssuerError(
      'WARDEN_TOKEN_TTL_TOO_LONG',
      `the requested lifetime ${ttlMs} ms exceeds the maximum of ${maxTtlMs} ms`,
    );
  return ttlMs;
}

/**
 * The scopes to issue, deduplicated: each a valid scope token (RFC 6749 §3.3), and each one the
 * gateway requires of every token or one configured for the agent. Scopes are compared exactly,
 * as RFC 6749 §3.3 says they are case-sensitive: `Warden_Admin` is not `warden_admin`.
 */
function checkScopes(
  scopes: readonly string[],
  agent: AgentConfig,
  auth: AuthConfig,
): readonly string[] {
  for (const scope of scopes)
    if (!SCOPE_TOKEN_PATTERN.test(scope))
      throw new IssuerError('WARDEN_INVALID_SCOPE', `"${scope}" is not a valid scope token`);
  const allowed = new Set([...auth.requiredScopes, ...(agent.scopes ?? [])]);
  for (const scope of scopes)
    if (!allowed.has(scope))
      throw new IssuerError(
        'WARDEN_SCOPE_NOT_ALLOWED',
        `scope "${scope}" is not configured for agent "${agent.id}" (add it to agents.${agent.id}.scopes)`,
      );
  return Object.freeze([...new Set(scopes)]);
}

/**
 * The keyring of a configured built-in issuer. Gateway and CLI both build it here, so they agree
 * on how long a rotated key stays published: the longest token lifetime the gateway accepts from
 * this issuer, plus the clock skew its verifier allows.
 */
export function createBuiltinKeyring(options: {
  readonly repository: SigningKeyRepository;
  readonly config: BuiltinIssuerConfig;
  readonly auth: AuthConfig;
  readonly now?: () => number;
  readonly onRotated?: SigningKeyringOptions['onRotated'];
}): SigningKeyring {
  const { config, auth } = options;
  return createSigningKeyring({
    repository: options.repository,
    algorithm: config.algorithm,
    rotateEveryMs: config.rotateEveryMs,
    maxTokenTtlMs: maxTtlOf(config, auth) + auth.clockSkewMs,
    ...(options.now !== undefined && { now: options.now }),
    ...(options.onRotated !== undefined && { onRotated: options.onRotated }),
  });
}

/** The built-in issuer in the auth config, if one is configured. */
export function findBuiltinIssuerConfig(auth: AuthConfig): BuiltinIssuerConfig | undefined {
  return auth.issuers.find((issuer): issuer is BuiltinIssuerConfig => issuer.kind === 'builtin');
}
