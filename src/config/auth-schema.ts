/**
 * The `auth`, `agents` and `listen.tls` parts of warden.yaml: who may call, and how they prove it.
 * Every MCP endpoint is authenticated; a config without a way to authenticate does not load.
 */
import { z } from 'zod';
import { positiveDurationSchema } from './duration.js';
import { enterpriseSchema, loginSchema } from './login-schema.js';

/** Asymmetric algorithms only: a shared-secret (HS*) or `none` token can never be accepted. */
export const ALLOWED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
] as const;

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), compared case-sensitively. */
export const SCOPE_TOKEN_PATTERN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const scopeTokenSchema = z
  .string()
  .regex(SCOPE_TOKEN_PATTERN, 'a scope is printable ASCII without spaces, quotes or backslashes');

const builtinIssuerSchema = z.strictObject({
  builtin: z.strictObject({
    token_ttl: positiveDurationSchema.default(15 * 60_000),
    max_ttl: positiveDurationSchema.default(60 * 60_000),
    rotate_every: positiveDurationSchema.default(30 * 24 * 3_600_000),
    algorithm: z.enum(['ES256', 'EdDSA', 'RS256']).default('ES256'),
  }),
});

const externalIssuerSchema = z.strictObject({
  issuer: z.url({ protocol: /^https?$/ }),
  /** JWKS location; when absent it is discovered from the issuer's metadata. */
  jwks_uri: z.url({ protocol: /^https?$/ }).optional(),
  algorithms: z.array(z.enum(ALLOWED_ALGORITHMS)).min(1).default(['RS256', 'ES256']),
  /** The claim naming the calling agent (RFC 9068 client_id, then azp). */
  agent_claim: z.string().default('client_id'),
  /** The claim that must equal `environment`; tokens of another environment are refused. */
  environment_claim: z.string().default('warden_env'),
});

export const issuerSchema = z.union([builtinIssuerSchema, externalIssuerSchema], {
  error:
    'expected the built-in issuer ({ builtin: {} }) or an external one ({ issuer: https://… })',
});

export const authSchema = z.strictObject({
  /** This gateway's resource URL: the audience every token must carry (RFC 8707). */
  resource: z.url({ protocol: /^https?$/ }),
  issuers: z.array(issuerSchema).default([]),
  /** Scopes every token must carry; a token without them gets 403 insufficient_scope. */
  required_scopes: z.array(scopeTokenSchema).default([]),
  /** Longest token lifetime (exp - iat) accepted from any issuer. */
  max_token_lifetime: positiveDurationSchema.default(60 * 60_000),
  clock_skew: positiveDurationSchema.default(30_000),
  /** Accept a client certificate alone (no token) from agents with an mtls_identity. */
  mtls: z.boolean().default(false),
  /** People log in (authorization code with PKCE) at the built-in issuer: see login-schema.ts. */
  login: loginSchema.optional(),
  /** Enterprise IdPs whose identity assertions (ID-JAG) the built-in issuer accepts. */
  enterprise: enterpriseSchema.optional(),
});

const agentSchema = z.strictObject({
  roles: z.array(z.string().min(1)).default([]),
  /**
   * OAuth scopes the built-in issuer may put in this agent's tokens, besides auth.required_scopes;
   * a token request for any other scope is refused (invalid_scope). Scopes never grant roles.
   */
  scopes: z.array(scopeTokenSchema).default([]),
  tenant: z.string().optional(),
  /** Client ids this agent has at external issuers (matched against agent_claim). */
  client_ids: z.array(z.string().min(1)).default([]),
  /** Hash of the agent's client secret for the built-in token endpoint (`warden agents hash-secret`). */
  secret_hash: z
    .string()
    .regex(/^scrypt\$/, 'use a hash made by `warden agents hash-secret`')
    .optional(),
  /** Public keys for private_key_jwt client authentication at the built-in token endpoint. */
  jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
  /** The client certificate identity (SPIFFE URI SAN or subject CN) that maps to this agent. */
  mtls_identity: z.string().min(1).optional(),
});

export const agentsSchema = z.record(
  z
    .string()
    .regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'agent ids are lowercase letters, digits, ., - and _'),
  agentSchema,
);

/** A SPIFFE trust domain (SPIFFE-ID §2.1): lowercase letters, digits, '.', '-' and '_'. */
const trustDomainSchema = z
  .string()
  .regex(/^[a-z0-9._-]{1,255}$/, 'a trust domain is lowercase letters, digits, ., - and _');

/** A client CA file, optionally with the SPIFFE trust domains its certificates may name. */
const clientCaSchema = z.union([
  z.string().min(1),
  z.strictObject({
    file: z.string().min(1),
    trust_domains: z.array(trustDomainSchema).min(1).optional(),
  }),
]);

export const tlsSchema = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  /**
   * CA(s) that sign client certificates; with them, clients may (or must) present one. A path,
   * or a list of paths and `{ file, trust_domains }`: a trust domain some CA lists may be named
   * only by certificates of the CAs that list it.
   */
  client_ca: z.union([z.string().min(1), z.array(clientCaSchema).min(1)]).optional(),
  /** CRL file(s) (PEM or DER) signed by a client CA; re-read with the certificates. */
  crl: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  client_certificates: z.enum(['required', 'optional']).default('optional'),
});
