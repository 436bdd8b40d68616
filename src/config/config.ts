/** The typed, frozen configuration every other module receives. */
import type { ApprovalsConfig } from './approvals-schema.js';
import type { EnterpriseConfig, LoginConfig } from './login-schema.js';
import type { MetricsConfig } from './metrics-schema.js';
import type { AlertsConfig } from './alerts-schema.js';
import type { PolicyConfig } from './policy-config.js';

export type { ApprovalsConfig } from './approvals-schema.js';
export type { MetricsConfig } from './metrics-schema.js';

export type { PolicyConfig } from './policy-config.js';

export interface UpstreamCredentialConfig {
  readonly source:
    | { readonly kind: 'env'; readonly name: string }
    | { readonly kind: 'file'; readonly path: string }
    | TokenExchangeConfig;
  readonly header: string;
  readonly scheme: string;
}

/** RFC 8693 token exchange at the upstream's authorization server, once per caller (cached). */
export interface TokenExchangeConfig {
  readonly kind: 'token_exchange';
  readonly tokenEndpoint: string;
  /** The `audience` parameter: the upstream as its authorization server names it. */
  readonly audience: string;
  /** The `resource` parameter (RFC 8707), when the authorization server wants one. */
  readonly resource: string | undefined;
  readonly scopes: readonly string[];
  readonly clientId: string;
  /** The env var holding Warden's client secret; read at each exchange, so it can rotate. */
  readonly clientSecretEnv: string;
  /** The `aud` of the subject token Warden signs: the authorization server's issuer. */
  readonly subjectTokenAudience: string;
  readonly subjectTokenTtlMs: number;
  /** An exchanged token is exchanged again this long before it expires. */
  readonly refreshBeforeMs: number;
  readonly cacheSize: number;
  readonly timeoutMs: number;
}

/** After `failures` failed calls in a row, calls are refused at once for `openForMs`. */
export interface CircuitBreakerConfig {
  readonly failures: number;
  readonly openForMs: number;
}

/** Per-tool failure handling (see `upstreams.<name>.tools` in warden.yaml). */
export interface ToolSettings {
  readonly sensitive: boolean;
  readonly onFailure: 'closed' | 'open';
}

export interface HttpUpstreamConfig {
  readonly kind: 'http';
  readonly name: string;
  readonly url: string;
  readonly credential: UpstreamCredentialConfig | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Tools with settings of their own; any other tool is sensitive and fails closed. */
  readonly tools: ReadonlyMap<string, ToolSettings>;
  readonly circuitBreaker: CircuitBreakerConfig;
}

export interface StdioUpstreamConfig {
  readonly kind: 'stdio';
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string | undefined;
  readonly timeoutMs: number;
  readonly maxSessions: number;
  readonly restartBackoffMs: number;
  readonly restartBackoffMaxMs: number;
  readonly tools: ReadonlyMap<string, ToolSettings>;
  readonly circuitBreaker: CircuitBreakerConfig;
}

export type UpstreamConfig = HttpUpstreamConfig | StdioUpstreamConfig;

export interface Config {
  /** Where the config came from (a file path, or a label such as "demo"). */
  readonly source: string;
  readonly environment: string;
  readonly listen: {
    readonly host: string;
    readonly port: number;
    readonly allowedHosts: readonly string[];
    readonly allowedOrigins: readonly string[];
    readonly tls: TlsConfig | undefined;
  };
  readonly store: string;
  readonly log: { readonly level: string };
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxSessions: number;
    /** Sessions (and bridged 2026-07-28 requests in flight) one agent may hold on one upstream. */
    readonly maxSessionsPerAgent: number;
    readonly sessionIdleTimeoutMs: number;
    /** When a stdio upstream is full, how long a session must be unused to give up its child. */
    readonly reclaimIdleAfterMs: number;
    readonly shutdownGraceMs: number;
    /** How long a request's headers may take to arrive. */
    readonly headersTimeoutMs: number;
    /** How long a whole request may take to arrive (not how long its answer may take). */
    readonly requestTimeoutMs: number;
    /** Deepest nesting of objects and arrays in a client message. */
    readonly maxJsonDepth: number;
  };
  readonly upstreams: ReadonlyMap<string, UpstreamConfig>;
  readonly auth: AuthConfig;
  readonly audit: AuditConfig;
  readonly cluster: ClusterConfig;
  /** The agent registry: every caller is one of these. */
  readonly agents: ReadonlyMap<string, AgentConfig>;
  /** Roles, grants, scopes and the rest of what policy decides with. */
  readonly policy: PolicyConfig;
  /** Who may approve held calls, and where new requests are announced. */
  readonly approvals: ApprovalsConfig;
  /** Prometheus metrics at /metrics; off unless enabled. */
  readonly metrics: MetricsConfig;
  /** Alert rules on audit events and the webhooks they go to; none by default. */
  readonly alerts: AlertsConfig;
}

/** The gateway's own token issuer, so the embedded setup needs no identity provider. */
export interface BuiltinIssuerConfig {
  readonly kind: 'builtin';
  /** The `iss` of tokens it mints: the origin of `auth.resource`. */
  readonly issuer: string;
  readonly tokenTtlMs: number;
  readonly maxTtlMs: number;
  readonly rotateEveryMs: number;
  readonly algorithm: 'ES256' | 'EdDSA' | 'RS256';
}

/** An external OAuth 2.1 authorization server whose JWT access tokens are accepted. */
export interface ExternalIssuerConfig {
  readonly kind: 'external';
  readonly issuer: string;
  /** Where its keys are; undefined means discover them from the issuer's metadata. */
  readonly jwksUri: string | undefined;
  readonly algorithms: readonly string[];
  readonly agentClaim: string;
  readonly environmentClaim: string;
}

export type IssuerConfig = BuiltinIssuerConfig | ExternalIssuerConfig;

export interface AuthConfig {
  /** This gateway's resource URL: the audience every token must carry. */
  readonly resource: string;
  readonly issuers: readonly IssuerConfig[];
  readonly requiredScopes: readonly string[];
  readonly maxTokenLifetimeMs: number;
  readonly clockSkewMs: number;
  /** A client certificate alone authenticates agents that have an mtlsIdentity. */
  readonly mtls: boolean;
  /** Interactive login at the built-in issuer; undefined when people do not log in. */
  readonly login?: LoginConfig | undefined;
  /** Absent means no enterprise IdP is trusted. */
  readonly enterprise?: EnterpriseConfig | undefined;
}

export interface AgentConfig {
  readonly id: string;
  readonly roles: readonly string[];
  /**
   * OAuth scopes the built-in issuer may grant this agent besides `auth.requiredScopes`
   * (`agents.<id>.scopes`); absent means none. Scopes never grant roles.
   */
  readonly scopes?: readonly string[];
  readonly tenant: string | undefined;
  readonly clientIds: readonly string[];
  /** `scrypt$…` hash of the client secret for the built-in token endpoint. */
  readonly secretHash: string | undefined;
  /** Public JWKS for private_key_jwt at the built-in token endpoint. */
  readonly jwks: { readonly keys: readonly Readonly<Record<string, unknown>>[] } | undefined;
  readonly mtlsIdentity: string | undefined;
}

export interface TlsConfig {
  /** Paths of PEM files. */
  readonly cert: string;
  readonly key: string;
  /** The CAs that sign client certificates; empty: clients are not asked for one. */
  readonly clientCas: readonly ClientCaConfig[];
  /** CRL files (PEM or DER), each signed by one of the client CAs. */
  readonly crls: readonly string[];
  readonly clientCertificates: 'required' | 'optional';
}

export interface ClientCaConfig {
  /** PEM file of one or more CA certificates. */
  readonly file: string;
  /**
   * The SPIFFE trust domains its certificates may name. Undefined: any trust domain no other CA
   * lists, and subject CN identities (a CA limited to trust domains identifies no one by CN).
   */
  readonly trustDomains: readonly string[] | undefined;
}

/** This replica among the others on one store. */
export interface ClusterConfig {
  readonly replica: string;
  /** Where the other replicas relay this replica's sessions to; undefined: no relaying. */
  readonly advertiseUrl: string | undefined;
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
}

export interface AuditConfig {
  /** This replica's chain in the shared store. */
  readonly stream: string;
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
  readonly redactPaths: readonly string[];
  readonly resultExcerptBytes: number;
  /** Absolute path of the HMAC key for argument hashes. */
  readonly hashKeyFile: string;
  /** The checkpoint signing key outside the store; undefined: the key kept in the store. */
  readonly signingKey: AuditSigningKeySource | undefined;
  /** How often the gateway re-verifies the log in the store; undefined: never. */
  readonly verifyEveryMs: number | undefined;
  /** Where checkpoints are published outside the store; undefined: nowhere. */
  readonly witness: AuditWitnessConfig | undefined;
}

/** Where the audit signing key (PKCS#8 PEM, Ed25519) is read from. */
export type AuditSigningKeySource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'env'; readonly name: string };

export interface AuditWitnessConfig {
  /** Absolute path of the append-only JSON-lines witness file. */
  readonly file: string | undefined;
  readonly webhook: { readonly url: string; readonly secretEnv: string } | undefined;
}
