/**
 * `auth.login` and `auth.enterprise` in warden.yaml: how people (not only agents) get tokens.
 * People log in at the built-in authorization server (authorization code with PKCE), as a
 * built-in user or through the company's identity provider; an enterprise IdP may instead vouch
 * for a person with an identity assertion (ID-JAG). Every logged-in app acts as one registered
 * agent, and with no more than the roles both the person and that agent hold.
 *
 *   auth:
 *     login:
 *       agent: desktop-apps
 *       users:
 *         alice: { password_hash: "scrypt$…", roles: [payments-clerk], name: Alice Doe }
 *       oidc:
 *         issuer: https://login.example.com
 *         client_id: warden
 *         client_secret_env: WARDEN_LOGIN_SECRET
 *         roles_by_group: { finance: [payments-clerk] }
 *     enterprise:
 *       id_jag:
 *         - issuer: https://idp.example.com
 *           jwks_uri: https://idp.example.com/jwks
 */
import { z } from 'zod';
import { positiveDurationSchema } from './duration.js';

const roleListSchema = z.array(z.string().min(1)).default([]);

const builtinUserSchema = z.strictObject({
  /** `scrypt$…`, made by `warden users hash-password`. */
  password_hash: z.string().regex(/^scrypt\$/, 'use a hash made by `warden users hash-password`'),
  roles: roleListSchema,
  name: z.string().min(1).optional(),
  email: z.string().min(1).optional(),
});

const companyLoginSchema = z.strictObject({
  /** The company's OpenID Provider; its metadata is discovered from here. */
  issuer: z.url({ protocol: /^https?$/ }),
  client_id: z.string().min(1),
  /** Env var holding the client secret Warden authenticates to the provider with. */
  client_secret_env: z.string().min(1),
  scopes: z.array(z.string().min(1)).default(['openid', 'email', 'profile']),
  /** The ID token claim that names the person in Warden (their user id). */
  user_claim: z.string().min(1).default('email'),
  /** The claim listing the person's groups. */
  groups_claim: z.string().min(1).default('groups'),
  /** Group → Warden roles; a person holds the union for the groups they are in. */
  roles_by_group: z.record(z.string().min(1), z.array(z.string().min(1))).default({}),
});

const clientMetadataDocumentsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Fetch documents from loopback, private or link-local addresses (tests, labs); never in production. */
  allow_private_addresses: z.boolean().default(false),
  max_bytes: z.number().int().min(256).max(1_048_576).default(5120),
  timeout: positiveDurationSchema.default(5000),
});

export const loginSchema = z.strictObject({
  /** The registered agent every logged-in app acts as; its roles cap the person's. */
  agent: z.string().min(1),
  users: z.record(z.string().min(1).max(256), builtinUserSchema).default({}),
  oidc: companyLoginSchema.optional(),
  /** Dynamic Client Registration (RFC 7591), the fallback for apps without a metadata document. */
  registration: z.boolean().default(true),
  client_metadata_documents: clientMetadataDocumentsSchema.default(
    clientMetadataDocumentsSchema.parse({}),
  ),
  /** How long a login session at the authorization server lasts (the browser cookie). */
  session_ttl: positiveDurationSchema.default(8 * 3_600_000),
  /** A refresh token's lifetime; each use rotates it, a reuse revokes its whole family. */
  refresh_token_ttl: positiveDurationSchema.default(14 * 24 * 3_600_000),
});

const idJagIssuerSchema = z.strictObject({
  issuer: z.url({ protocol: /^https?$/ }),
  /** Where its keys are; undefined means discover them from the issuer's metadata. */
  jwks_uri: z.url({ protocol: /^https?$/ }).optional(),
  /** The assertion claim that names the person in Warden. */
  user_claim: z.string().min(1).default('sub'),
  groups_claim: z.string().min(1).default('groups'),
  roles_by_group: z.record(z.string().min(1), z.array(z.string().min(1))).default({}),
});

export const enterpriseSchema = z.strictObject({
  /** Identity Assertion JWT Authorization Grants (SEP-990) accepted from these IdPs. */
  id_jag: z.array(idJagIssuerSchema).default([]),
});

export interface BuiltinUserConfig {
  readonly id: string;
  readonly passwordHash: string;
  readonly roles: readonly string[];
  readonly name: string | undefined;
  readonly email: string | undefined;
}

/** How claims from an identity provider become a Warden person. */
export interface ClaimMappingConfig {
  readonly userClaim: string;
  readonly groupsClaim: string;
  /** Group → roles. */
  readonly rolesByGroup: ReadonlyMap<string, readonly string[]>;
}

export interface CompanyLoginConfig extends ClaimMappingConfig {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecretEnv: string;
  readonly scopes: readonly string[];
}

export interface LoginConfig {
  readonly agent: string;
  readonly users: ReadonlyMap<string, BuiltinUserConfig>;
  readonly oidc: CompanyLoginConfig | undefined;
  readonly registration: boolean;
  readonly clientMetadataDocuments: {
    readonly enabled: boolean;
    readonly allowPrivateAddresses: boolean;
    readonly maxBytes: number;
    readonly timeoutMs: number;
  };
  readonly sessionTtlMs: number;
  readonly refreshTokenTtlMs: number;
}

export interface IdJagIssuerConfig extends ClaimMappingConfig {
  readonly issuer: string;
  readonly jwksUri: string | undefined;
}

export interface EnterpriseConfig {
  readonly idJag: readonly IdJagIssuerConfig[];
}

export function toLoginConfig(raw: z.output<typeof loginSchema>): LoginConfig {
  return {
    agent: raw.agent,
    users: new Map(
      Object.entries(raw.users).map(([id, user]) => [
        id,
        {
          id,
          passwordHash: user.password_hash,
          roles: user.roles,
          name: user.name,
          email: user.email,
        },
      ]),
    ),
    oidc: raw.oidc && {
      issuer: raw.oidc.issuer,
      clientId: raw.oidc.client_id,
      clientSecretEnv: raw.oidc.client_secret_env,
      scopes: raw.oidc.scopes,
      userClaim: raw.oidc.user_claim,
      groupsClaim: raw.oidc.groups_claim,
      rolesByGroup: new Map(Object.entries(raw.oidc.roles_by_group)),
    },
    registration: raw.registration,
    clientMetadataDocuments: {
      enabled: raw.client_metadata_documents.enabled,
      allowPrivateAddresses: raw.client_metadata_documents.allow_private_addresses,
      maxBytes: raw.client_metadata_documents.max_bytes,
      timeoutMs: raw.client_metadata_documents.timeout,
    },
    sessionTtlMs: raw.session_ttl,
    refreshTokenTtlMs: raw.refresh_token_ttl,
  };
}

export function toEnterpriseConfig(raw: z.output<typeof enterpriseSchema>): EnterpriseConfig {
  return {
    idJag: raw.id_jag.map((idp) => ({
      issuer: idp.issuer,
      jwksUri: idp.jwks_uri,
      userClaim: idp.user_claim,
      groupsClaim: idp.groups_claim,
      rolesByGroup: new Map(Object.entries(idp.roles_by_group)),
    })),
  };
}

/**
 * Config mistakes that load but would fail at the first login: the login agent must be
 * registered, and login needs the built-in issuer (it mints the tokens).
 */
export function checkLoginConfig(
  login: LoginConfig | undefined,
  agents: ReadonlyMap<string, unknown>,
  hasBuiltinIssuer: boolean,
  issues: string[],
): void {
  if (!login) return;
  if (!agents.has(login.agent))
    issues.push(
      `auth.login.agent: "${login.agent}" is not a registered agent; add it under agents: (the roles logged-in apps may act with)`,
    );
  if (!hasBuiltinIssuer)
    issues.push('auth.login needs the built-in issuer: add { builtin: {} } to auth.issuers');
  if (login.oidc !== undefined && !isSecureIssuer(login.oidc.issuer))
    issues.push(
      `auth.login.oidc.issuer: "${login.oidc.issuer}" must be https (plain http only on loopback, for tests): the login's codes and tokens travel there`,
    );
  if (login.users.size === 0 && login.oidc === undefined)
    issues.push('auth.login: nobody can log in; add users: or oidc:');
}

/** ID-JAGs are exchanged for tokens the built-in issuer mints: without it they go nowhere. */
export function checkEnterpriseConfig(
  enterprise: EnterpriseConfig | undefined,
  hasBuiltinIssuer: boolean,
  issues: string[],
): void {
  if (enterprise !== undefined && enterprise.idJag.length > 0 && !hasBuiltinIssuer)
    issues.push(
      'auth.enterprise.id_jag needs the built-in issuer (it mints the tokens): add { builtin: {} } to auth.issuers',
    );
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function isSecureIssuer(issuer: string): boolean {
  const url = new URL(issuer);
  return url.protocol === 'https:' || LOOPBACK_HOSTS.has(url.hostname);
}
