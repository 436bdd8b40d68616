/**
 * The shape of warden.yaml. Keys are snake_case in YAML and camelCase in the typed Config.
 * Unknown keys are refused everywhere (strict objects), so a typo never silently disables a control.
 */
import { z } from 'zod';
import { approvalsConfigShape } from './approvals-schema.js';
import { SCOPE_TOKEN_PATTERN, agentsSchema, authSchema, tlsSchema } from './auth-schema.js';
import { durationSchema, positiveDurationSchema } from './duration.js';
import { metricsSchema } from './metrics-schema.js';
import { alertsSchema } from './alerts-schema.js';
import { policyConfigShape } from './policy-schema.js';

const upstreamName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'upstream names are lowercase letters, digits, - and _');

/** The log levels `log.level` (and `warden serve --log-level`) accept. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * A token for the caller from the upstream's authorization server (RFC 8693 token exchange): the
 * subject token is one Warden signs naming the person (or the agent), never the client's own.
 */
const tokenExchangeSchema = z.strictObject({
  token_endpoint: z.url({ protocol: /^https?$/ }),
  /** The upstream as its authorization server names it: the exchanged token's `aud`. */
  audience: z.string().min(1),
  resource: z.url().optional(),
  scopes: z
    .array(
      z
        .string()
        .regex(
          SCOPE_TOKEN_PATTERN,
          'a scope is printable ASCII without spaces, quotes or backslashes',
        ),
    )
    .min(1)
    .optional(),
  client_id: z.string().min(1),
  /** The env var holding Warden's client secret at the authorization server. */
  client_secret_env: z.string().min(1),
  /** The subject token's `aud`: the authorization server's issuer; the token endpoint if unset. */
  subject_token_audience: z.string().min(1).optional(),
  subject_token_ttl: positiveDurationSchema.default(60_000),
  /** An exchanged token is used until this long before it expires, then exchanged again. */
  refresh_before: durationSchema.default(30_000),
  /** The most exchanged tokens kept (one per caller); the least recently used go first. */
  cache_size: z.number().int().min(1).default(10_000),
  timeout: positiveDurationSchema.default(10_000),
});

/**
 * Warden's own credential for an upstream, never the client's: a static secret from `env` or
 * `file` (sent in `header`, `authorization` by default, after `scheme`, `Bearer` by default), or
 * a token exchanged per caller (`token_exchange`, always sent as `Authorization: Bearer`).
 */
const credentialSchema = z
  .strictObject({
    env: z.string().min(1).optional(),
    file: z.string().min(1).optional(),
    header: z.string().min(1).optional(),
    scheme: z.string().optional(),
    token_exchange: tokenExchangeSchema.optional(),
  })
  .superRefine((c, context) => {
    if (c.token_exchange === undefined) {
      if ((c.env === undefined) === (c.file === undefined))
        context.addIssue({ code: 'custom', message: 'set exactly one of env or file' });
      return;
    }
    const beside = (['env', 'file', 'header', 'scheme'] as const).filter(
      (key) => c[key] !== undefined,
    );
    if (beside.length > 0)
      context.addIssue({
        code: 'custom',
        message: `token_exchange is the whole credential (sent as Authorization: Bearer); remove ${beside.join(', ')}`,
      });
  });

/** Refuses calls to an upstream at once for `open_for` after `failures` failed calls in a row. */
const circuitBreakerSchema = z.strictObject({
  failures: z.number().int().min(1).default(5),
  open_for: positiveDurationSchema.default(30_000),
});

/**
 * How one tool fails. Closed (refused) is the default; `open` (forwarded even when the audit log
 * cannot record the call first, the record following once it can) only for tools marked
 * non-sensitive, and each fail-open is itself alerted and recorded.
 */
const toolSettingsSchema = z
  .strictObject({
    sensitive: z.boolean().default(true),
    on_failure: z.enum(['closed', 'open']).default('closed'),
  })
  .refine((tool) => tool.on_failure === 'closed' || !tool.sensitive, {
    message: 'on_failure: open is allowed only for tools marked sensitive: false',
    path: ['on_failure'],
  });
const toolsSchema = z.record(z.string().min(1), toolSettingsSchema).default({});

const httpUpstreamSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  credential: credentialSchema.optional(),
  headers: z.record(z.string(), z.string()).optional(),
  timeout: positiveDurationSchema.default(60_000),
  circuit_breaker: circuitBreakerSchema.default(circuitBreakerSchema.parse({})),
  tools: toolsSchema,
});

const stdioUpstreamSchema = z.strictObject({
  command: z.array(z.string().min(1)).min(1),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  timeout: positiveDurationSchema.default(60_000),
  max_sessions: z.number().int().positive().default(32),
  restart_backoff: positiveDurationSchema.default(250),
  restart_backoff_max: positiveDurationSchema.default(30_000),
  circuit_breaker: circuitBreakerSchema.default(circuitBreakerSchema.parse({})),
  tools: toolsSchema,
});

const upstreamSchema = z.union([httpUpstreamSchema, stdioUpstreamSchema], {
  error: 'expected an HTTP upstream ({ url }) or a stdio upstream ({ command: [...] })',
});

const listenSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
  /** Extra Host header values to accept besides the listen address (e.g. a public name). */
  allowed_hosts: z.array(z.string()).default([]),
  /** Origins browsers may call from; requests with any other Origin are refused. */
  allowed_origins: z.array(z.string()).default([]),
  /** Serve HTTPS (and accept client certificates when client_ca is set). */
  tls: tlsSchema.optional(),
});

const limitsSchema = z.strictObject({
  max_body_bytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  max_sessions: z.number().int().positive().default(10_000),
  /**
   * Sessions one agent may hold on one upstream (its 2026-07-28 requests in flight there count
   * too): well below a stdio upstream's max_sessions, so one agent cannot fill it for the others.
   */
  max_sessions_per_agent: z.number().int().positive().default(8),
  session_idle_timeout: positiveDurationSchema.default(30 * 60_000),
  /** When a stdio upstream is full, a session unused this long gives its child up to a newcomer. */
  reclaim_idle_after: positiveDurationSchema.default(60_000),
  shutdown_grace: durationSchema.default(10_000),
  /** How long a request's headers may take to arrive (at most request_timeout). */
  headers_timeout: positiveDurationSchema.default(10_000),
  /**
   * How long a whole request (headers and body) may take to arrive. Only the arrival is timed:
   * a response that takes longer (a held call, an SSE stream) is not cut.
   */
  request_timeout: positiveDurationSchema.default(30_000),
  /** Deepest nesting of objects and arrays in a client's JSON-RPC message. */
  max_json_depth: z.number().int().min(8).max(1000).default(64),
});

const auditSchema = z.strictObject({
  /** This replica's chain; replicas sharing a store need distinct streams. Default: the host name. */
  stream: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ., - and _')
    .optional(),
  checkpoint_every: z.number().int().positive().default(1000),
  checkpoint_interval: positiveDurationSchema.default(10_000),
  /** Argument paths to redact in the log ('recipient.iban', 'card.*', '**.password'). */
  redact: z.array(z.string().min(1)).default([]),
  /** Bytes of each result kept (redacted) in the log; 0 keeps only its size and hash. */
  result_excerpt_bytes: z.number().int().min(0).max(65_536).default(0),
  /** The HMAC key file for argument hashes (created if missing); keep it out of the store. */
  hash_key_file: z.string().min(1).default('./.warden/audit-hash.key'),
  /**
   * The checkpoint signing key (PKCS#8 PEM, Ed25519) kept outside the store, so that whoever can
   * write the store cannot re-sign a rewritten chain. Unset: a key kept in the store.
   */
  signing_key: z
    .union([
      z.strictObject({ file: z.string().min(1) }),
      z.strictObject({
        env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'),
      }),
    ])
    .optional(),
  /**
   * How often the gateway re-verifies the audit log in the store (chain, signatures, and the
   * witness file when there is one); a failure is recorded as audit.verification_failed and
   * raises the verification_failure alert rules. Unset: every hour when such a rule exists,
   * otherwise never.
   */
  verify_every: positiveDurationSchema.optional(),
  /** Where every checkpoint is also published, outside the store, for verify to compare with. */
  witness: z
    .strictObject({
      /** An append-only JSON-lines file, ideally on another volume or host. */
      file: z.string().min(1).optional(),
      webhook: z
        .strictObject({
          url: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }),
          /** The environment variable holding the HMAC-SHA256 key that signs each POST. */
          secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'),
        })
        .optional(),
    })
    .optional(),
});

/** Several replicas on one PostgreSQL store (see "Running several replicas" in the README). */
const clusterSchema = z.strictObject({
  /** This replica's name among the others. Default: its audit stream. */
  replica: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ., - and _')
    .optional(),
  /**
   * Where the other replicas reach this one to relay a session's exchanges to it, e.g.
   * http://10.0.0.5:8080. Unset: this replica neither publishes its sessions nor relays.
   */
  advertise_url: z
    .url({ protocol: /^https?$/, error: 'an http:// or https:// URL the other replicas can reach' })
    .optional(),
  /** How often this replica tells the store it runs. */
  heartbeat: positiveDurationSchema.default(1_000),
  /** A replica not heard from for this long is dead: its sessions end, its held calls are withdrawn. */
  dead_after: positiveDurationSchema.default(5_000),
});

export const configSchema = z
  .strictObject({
    environment: z.string().default('development'),
    listen: listenSchema.default(listenSchema.parse({})),
    store: z
      .string()
      .regex(/^(sqlite:|postgres:\/\/|postgresql:\/\/)/, 'use sqlite:PATH or postgres://…')
      .default('sqlite:./.warden/warden.db'),
    log: z
      .strictObject({
        level: z.enum(LOG_LEVELS).default('info'),
      })
      .default({ level: 'info' }),
    limits: limitsSchema.default(limitsSchema.parse({})),
    upstreams: z.record(upstreamName, upstreamSchema).refine((u) => Object.keys(u).length > 0, {
      message: 'configure at least one upstream',
    }),
    auth: authSchema,
    audit: auditSchema.default(auditSchema.parse({})),
    cluster: clusterSchema.default(clusterSchema.parse({})),
    agents: agentsSchema.refine((agents) => Object.keys(agents).length > 0, {
      message: 'register at least one agent: nobody could call otherwise',
    }),
    ...policyConfigShape,
    /**
     * Where policy and agents come from: `file` (this file; SIGHUP re-reads it) or `store` (the
     * newest bundle pushed with `warden policy push`, applied by every replica within 2 s).
     */
    policy_source: z.enum(['file', 'store']).default('file'),
    ...approvalsConfigShape,
    /** Prometheus metrics at /metrics (a token, or a listener of their own). */
    metrics: metricsSchema.default({ enabled: false }),
    /** Rules on audit events, delivered to webhooks (signed, retried, deduplicated). */
    alerts: alertsSchema.default({
      webhooks: [],
      rules: [],
      retry: { attempts: 3, backoff: 1000 },
    }),
  })
  .superRefine(checkAuthenticationCoverage);

/**
 * Every MCP endpoint is authenticated: a config that would let anyone in, or lock everyone out
 * without saying so, does not load.
 */
function checkAuthenticationCoverage(
  config: {
    listen: { tls?: { client_ca?: unknown; client_certificates: string } | undefined };
    auth: z.output<typeof authSchema>;
    agents: z.output<typeof agentsSchema>;
  },
  ctx: z.RefinementCtx,
): void {
  const { auth, agents, listen } = config;
  const builtins = auth.issuers.filter((issuer) => 'builtin' in issuer);
  if (builtins.length > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'issuers'],
      message: 'at most one builtin issuer',
    });
  }
  for (const issuer of builtins) {
    if ('builtin' in issuer && issuer.builtin.max_ttl > auth.max_token_lifetime) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'issuers'],
        message:
          'builtin.max_ttl is longer than auth.max_token_lifetime: its tokens would be refused',
      });
    }
  }
  const mtlsAgents = Object.values(agents).filter((agent) => agent.mtls_identity !== undefined);
  if (auth.mtls && listen.tls?.client_ca === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'mtls'],
      message: 'needs listen.tls.client_ca to verify client certificates',
    });
  }
  if (listen.tls?.client_certificates === 'required' && listen.tls.client_ca === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['listen', 'tls', 'client_certificates'],
      message: 'required needs client_ca',
    });
  }
  if (auth.issuers.length === 0 && !(auth.mtls && mtlsAgents.length > 0)) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth'],
      message:
        'no way to authenticate: configure auth.issuers, or auth.mtls with agents that have an mtls_identity',
    });
  }
  const seen = new Map<string, string>();
  for (const [id, agent] of Object.entries(agents)) {
    if (agent.mtls_identity === undefined) continue;
    const other = seen.get(agent.mtls_identity);
    if (other !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['agents', id, 'mtls_identity'],
        message: `is also the identity of agent "${other}"; each certificate identity maps to one agent`,
      });
    }
    seen.set(agent.mtls_identity, id);
  }
  // An external token names its agent by client id: two agents with one id would be a coin toss.
  const clientIds = new Map<string, string>();
  for (const [id, agent] of Object.entries(agents)) {
    for (const clientId of agent.client_ids) {
      const other = clientIds.get(clientId);
      if (other !== undefined && other !== id) {
        ctx.addIssue({
          code: 'custom',
          path: ['agents', id, 'client_ids'],
          message: `"${clientId}" is also a client id of agent "${other}"; each client id maps to one agent`,
        });
      }
      clientIds.set(clientId, id);
    }
  }
}

export type RawConfig = z.output<typeof configSchema>;
