/** Loads warden.yaml (or any object) into one frozen, validated Config. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { toApprovalsConfig } from './approvals-schema.js';
import { toMetricsConfig } from './metrics-schema.js';
import { toAlertsConfig } from './alerts-schema.js';
import { checkAgentRoles } from './check-agent-roles.js';
import { findUserIdProblem } from './login-user-ids.js';
import {
  checkEnterpriseConfig,
  checkLoginConfig,
  toEnterpriseConfig,
  toLoginConfig,
} from './login-schema.js';
import { checkApproverRoles } from './check-approver-roles.js';
import { toPolicyConfig } from './policy-config.js';
import { ConfigError } from '../domain/errors.js';
import type {
  ToolSettings,
  AgentConfig,
  AuthConfig,
  CircuitBreakerConfig,
  Config,
  IssuerConfig,
  TlsConfig,
  UpstreamConfig,
  UpstreamCredentialConfig,
} from './config.js';
import { describeConfigIssues } from './describe-issue.js';
import { parseConfigYaml } from './read-yaml.js';
import { configSchema, type RawConfig } from './schema.js';

/** Reads and validates a YAML file; relative paths in it resolve against the file's folder. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [
      `cannot read the file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    ]);
  }
  const parsed = parseConfigYaml(text);
  if (!parsed.ok) throw new ConfigError(path, [parsed.problem]);
  if (parsed.value === null || parsed.value === undefined) {
    throw new ConfigError(path, [
      'the file is empty; a config needs at least upstreams, auth and agents (see the README)',
    ]);
  }
  return parseConfig(parsed.value, path, dirname(resolve(path)));
}

/**
 * What a config was parsed from, kept beside it under a symbol (no section, yet copied by spread,
 * so `warden serve` overrides keep it): a pushed policy bundle is validated against it exactly
 * as loading the file with the bundle's sections would be (see reparseConfig).
 */
/** A verification_failure rule without audit.verify_every re-verifies hourly. */
const DEFAULT_AUDIT_VERIFY_EVERY_MS = 3_600_000;

const PARSED_FROM = Symbol('warden.config.parsedFrom');

interface ParsedFrom {
  readonly raw: unknown;
  readonly baseDir: string;
}

/**
 * Parses again the input `running` was parsed from, with `edit` applied to a copy of it (relative
 * paths still resolve against the file's folder). Throws ConfigError for problems, as loading
 * would, and for a config that parseConfig did not make.
 */
export function reparseConfig(
  running: Config,
  edit: (raw: Record<string, unknown>) => Record<string, unknown>,
  source: string,
): Config {
  const parsedFrom = (running as Config & { [PARSED_FROM]?: ParsedFrom })[PARSED_FROM];
  if (parsedFrom === undefined || !isPlainObject(parsedFrom.raw)) {
    throw new ConfigError(source, [
      `the running configuration (${running.source}) was not loaded from YAML or an object, so nothing can be checked against it`,
    ]);
  }
  return parseConfig(edit(structuredClone(parsedFrom.raw)), source, parsedFrom.baseDir);
}

/** A copy: the caller may change its object later. One that cannot be copied is not kept. */
function keepParsedFrom(input: unknown, baseDir: string): ParsedFrom | undefined {
  try {
    return { raw: structuredClone(input), baseDir };
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Validates an already-parsed config object. `baseDir` anchors relative paths. */
export function parseConfig(raw: unknown, source: string, baseDir = process.cwd()): Config {
  const input = raw ?? {};
  const result = configSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(source, describeConfigIssues(result.error.issues, input, configSchema));
  }
  const issues: string[] = [];
  const config = toConfig(result.data, source, baseDir, issues);
  checkAgentRoles(config.agents, new Set(config.policy.roles.keys()), issues);
  checkApproverRoles(config.policy.grants, config.approvals.approvers, issues);
  const hasBuiltinIssuer = config.auth.issuers.some((issuer) => issuer.kind === 'builtin');
  checkLoginConfig(config.auth.login, config.agents, hasBuiltinIssuer, issues);
  const userIdProblem = config.auth.login && findUserIdProblem(config.auth.login.users.keys());
  if (userIdProblem) issues.push(userIdProblem.message);
  checkEnterpriseConfig(config.auth.enterprise, hasBuiltinIssuer, issues);
  checkTokenExchangeIssuer(config, issues);
  if (issues.length > 0) throw new ConfigError(source, issues);
  return freezeDeep(Object.assign(config, { [PARSED_FROM]: keepParsedFrom(input, baseDir) }));
}

function toConfig(raw: RawConfig, source: string, baseDir: string, issues: string[]): Config {
  const stream =
    raw.audit.stream ??
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 64);
  const upstreams = new Map<string, UpstreamConfig>();
  for (const [name, upstream] of Object.entries(raw.upstreams)) {
    upstreams.set(name, toUpstreamConfig(name, upstream, baseDir));
  }
  return {
    source,
    environment: raw.environment,
    listen: {
      host: raw.listen.host,
      port: raw.listen.port,
      allowedHosts: raw.listen.allowed_hosts,
      allowedOrigins: raw.listen.allowed_origins,
      tls: raw.listen.tls === undefined ? undefined : toTlsConfig(raw.listen.tls, baseDir),
    },
    store: resolveStore(raw.store, baseDir),
    log: { level: raw.log.level },
    limits: {
      maxBodyBytes: raw.limits.max_body_bytes,
      maxSessions: raw.limits.max_sessions,
      maxSessionsPerAgent: raw.limits.max_sessions_per_agent,
      sessionIdleTimeoutMs: raw.limits.session_idle_timeout,
      reclaimIdleAfterMs: raw.limits.reclaim_idle_after,
      shutdownGraceMs: raw.limits.shutdown_grace,
      headersTimeoutMs: raw.limits.headers_timeout,
      requestTimeoutMs: raw.limits.request_timeout,
      maxJsonDepth: raw.limits.max_json_depth,
    },
    upstreams,
    auth: toAuthConfig(raw.auth),
    audit: {
      stream,
      checkpointEvery: raw.audit.checkpoint_every,
      checkpointIntervalMs: raw.audit.checkpoint_interval,
      redactPaths: raw.audit.redact,
      resultExcerptBytes: raw.audit.result_excerpt_bytes,
      hashKeyFile: resolve(baseDir, raw.audit.hash_key_file),
      signingKey:
        raw.audit.signing_key === undefined
          ? undefined
          : 'file' in raw.audit.signing_key
            ? { kind: 'file', path: resolve(baseDir, raw.audit.signing_key.file) }
            : { kind: 'env', name: raw.audit.signing_key.env },
      verifyEveryMs:
        raw.audit.verify_every ??
        (raw.alerts.rules.some((rule) => rule.kind === 'verification_failure')
          ? DEFAULT_AUDIT_VERIFY_EVERY_MS
          : undefined),
      witness:
        raw.audit.witness === undefined
          ? undefined
          : {
              file:
                raw.audit.witness.file === undefined
                  ? undefined
                  : resolve(baseDir, raw.audit.witness.file),
              webhook:
                raw.audit.witness.webhook === undefined
                  ? undefined
                  : {
                      url: raw.audit.witness.webhook.url,
                      secretEnv: raw.audit.witness.webhook.secret_env,
                    },
            },
    },
    cluster: {
      replica: raw.cluster.replica ?? stream,
      advertiseUrl: raw.cluster.advertise_url?.replace(/\/$/, ''),
      heartbeatMs: raw.cluster.heartbeat,
      deadAfterMs: raw.cluster.dead_after,
    },
    agents: toAgents(raw.agents),
    policy: toPolicyConfig(raw, [...upstreams.keys()], (file) => resolve(baseDir, file), issues),
    approvals: toApprovalsConfig(raw.approvals, [...upstreams.keys()], issues),
    metrics: toMetricsConfig(raw.metrics),
    alerts: toAlertsConfig(raw.alerts, issues),
  };
}

function toAuthConfig(raw: RawConfig['auth']): AuthConfig {
  const builtinIssuer = new URL(raw.resource).origin;
  return {
    resource: raw.resource.replace(/\/$/, ''),
    requiredScopes: raw.required_scopes,
    maxTokenLifetimeMs: raw.max_token_lifetime,
    clockSkewMs: raw.clock_skew,
    mtls: raw.mtls,
    login: raw.login && toLoginConfig(raw.login),
    enterprise: toEnterpriseConfig(raw.enterprise ?? { id_jag: [] }),
    issuers: raw.issuers.map((issuer): IssuerConfig =>
      'builtin' in issuer
        ? {
            kind: 'builtin',
            issuer: builtinIssuer,
            tokenTtlMs: issuer.builtin.token_ttl,
            maxTtlMs: issuer.builtin.max_ttl,
            rotateEveryMs: issuer.builtin.rotate_every,
            algorithm: issuer.builtin.algorithm,
          }
        : {
            kind: 'external',
            issuer: issuer.issuer,
            jwksUri: issuer.jwks_uri,
            algorithms: issuer.algorithms,
            agentClaim: issuer.agent_claim,
            environmentClaim: issuer.environment_claim,
          },
    ),
  };
}

function toAgents(raw: RawConfig['agents']): Map<string, AgentConfig> {
  return new Map(
    Object.entries(raw).map(([id, agent]) => [
      id,
      {
        id,
        roles: agent.roles,
        scopes: agent.scopes,
        tenant: agent.tenant,
        clientIds: agent.client_ids,
        secretHash: agent.secret_hash,
        jwks: agent.jwks,
        mtlsIdentity: agent.mtls_identity,
      },
    ]),
  );
}

type RawCredential = NonNullable<
  Extract<RawConfig['upstreams'][string], { url: string }>['credential']
>;

function toCredentialConfig(raw: RawCredential, baseDir: string): UpstreamCredentialConfig {
  const exchange = raw.token_exchange;
  if (exchange !== undefined) {
    return {
      source: {
        kind: 'token_exchange',
        tokenEndpoint: exchange.token_endpoint,
        audience: exchange.audience,
        resource: exchange.resource,
        scopes: exchange.scopes ?? [],
        clientId: exchange.client_id,
        clientSecretEnv: exchange.client_secret_env,
        subjectTokenAudience: exchange.subject_token_audience ?? exchange.token_endpoint,
        subjectTokenTtlMs: exchange.subject_token_ttl,
        refreshBeforeMs: exchange.refresh_before,
        cacheSize: exchange.cache_size,
        timeoutMs: exchange.timeout,
      },
      header: 'authorization',
      scheme: 'Bearer',
    };
  }
  return {
    source:
      raw.env !== undefined
        ? { kind: 'env', name: raw.env }
        : { kind: 'file', path: resolve(baseDir, raw.file ?? '') },
    header: (raw.header ?? 'authorization').toLowerCase(),
    scheme: raw.scheme ?? 'Bearer',
  };
}

/**
 * Token exchange needs the built-in issuer: Warden signs the subject token with its keys, which
 * the upstream's authorization server checks at /.well-known/jwks.json.
 */
function checkTokenExchangeIssuer(config: Config, issues: string[]): void {
  if (config.auth.issuers.some((issuer) => issuer.kind === 'builtin')) return;
  for (const upstream of config.upstreams.values()) {
    if (upstream.kind === 'http' && upstream.credential?.source.kind === 'token_exchange')
      issues.push(
        `upstreams.${upstream.name}.credential.token_exchange: needs the built-in issuer, whose keys sign the subject token the authorization server verifies; add { builtin: {} } to auth.issuers`,
      );
  }
}

function toTlsConfig(raw: NonNullable<RawConfig['listen']['tls']>, baseDir: string): TlsConfig {
  return {
    cert: resolve(baseDir, raw.cert),
    key: resolve(baseDir, raw.key),
    clientCas: (typeof raw.client_ca === 'string' ? [raw.client_ca] : (raw.client_ca ?? [])).map(
      (ca) =>
        typeof ca === 'string'
          ? { file: resolve(baseDir, ca), trustDomains: undefined }
          : { file: resolve(baseDir, ca.file), trustDomains: ca.trust_domains },
    ),
    crls: (typeof raw.crl === 'string' ? [raw.crl] : (raw.crl ?? [])).map((crl) =>
      resolve(baseDir, crl),
    ),
    clientCertificates: raw.client_certificates,
  };
}

function toUpstreamConfig(
  name: string,
  upstream: RawConfig['upstreams'][string],
  baseDir: string,
): UpstreamConfig {
  if ('url' in upstream) {
    const credential = upstream.credential;
    return {
      kind: 'http',
      name,
      url: upstream.url,
      headers: upstream.headers ?? {},
      timeoutMs: upstream.timeout,
      circuitBreaker: toCircuitBreakerConfig(upstream.circuit_breaker),
      tools: toToolSettings(upstream.tools),
      credential: credential && toCredentialConfig(credential, baseDir),
    };
  }
  const [command, ...args] = upstream.command;
  return {
    kind: 'stdio',
    name,
    command: command ?? '',
    args,
    env: upstream.env ?? {},
    cwd: upstream.cwd === undefined ? undefined : resolve(baseDir, upstream.cwd),
    timeoutMs: upstream.timeout,
    maxSessions: upstream.max_sessions,
    restartBackoffMs: upstream.restart_backoff,
    restartBackoffMaxMs: upstream.restart_backoff_max,
    circuitBreaker: toCircuitBreakerConfig(upstream.circuit_breaker),
    tools: toToolSettings(upstream.tools),
  };
}

function toToolSettings(
  raw: RawConfig['upstreams'][string]['tools'],
): ReadonlyMap<string, ToolSettings> {
  return new Map(
    Object.entries(raw).map(([name, tool]) => [
      name,
      { sensitive: tool.sensitive, onFailure: tool.on_failure },
    ]),
  );
}

function toCircuitBreakerConfig(
  raw: RawConfig['upstreams'][string]['circuit_breaker'],
): CircuitBreakerConfig {
  return { failures: raw.failures, openForMs: raw.open_for };
}

function resolveStore(store: string, baseDir: string): string {
  if (!store.startsWith('sqlite:')) return store;
  const path = store.slice('sqlite:'.length);
  return path === ':memory:' ? store : `sqlite:${resolve(baseDir, path)}`;
}

function freezeDeep<T>(value: T): T {
  if (value instanceof Map) {
    for (const entry of value.values()) freezeDeep(entry);
    return freezeMap(value) as T;
  }
  if (value !== null && typeof value === 'object') {
    for (const entry of Object.values(value)) freezeDeep(entry);
    return Object.freeze(value);
  }
  return value;
}

/** Object.freeze does not stop Map#set, so a frozen map refuses its mutators itself. */
function freezeMap<K, V>(map: Map<K, V>): Map<K, V> {
  const refuse = (): never => {
    throw new TypeError('the configuration is frozen');
  };
  for (const method of ['set', 'delete', 'clear']) {
    Object.defineProperty(map, method, { value: refuse });
  }
  return Object.freeze(map);
}
