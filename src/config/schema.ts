/**
 * The shape of warden.yaml. Keys are snake_case in YAML and camelCase in the typed Config.
 * Unknown keys are refused everywhere (strict objects), so a typo never silently disables a control.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `"${value}" is not a duration (e.g. 500ms, 30s, 15m, 2h)`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A wait that must end: 0 would disable an upstream timeout, or restart a crashing child in a tight loop. */
const positiveDuration = duration.refine((ms) => ms > 0, { message: 'must be longer than 0' });

const upstreamName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'upstream names are lowercase letters, digits, - and _');

/** Warden's own credential for an upstream: never the client's. */
const credentialSchema = z
  .strictObject({
    env: z.string().min(1).optional(),
    file: z.string().min(1).optional(),
    header: z.string().min(1).default('authorization'),
    scheme: z.string().default('Bearer'),
  })
  .refine((c) => (c.env === undefined) !== (c.file === undefined), {
    message: 'set exactly one of env or file',
  });

const httpUpstreamSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  credential: credentialSchema.optional(),
  headers: z.record(z.string(), z.string()).optional(),
  timeout: positiveDuration.default(60_000),
});

const stdioUpstreamSchema = z.strictObject({
  command: z.array(z.string().min(1)).min(1),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  timeout: positiveDuration.default(60_000),
  max_sessions: z.number().int().positive().default(32),
  restart_backoff: positiveDuration.default(250),
  restart_backoff_max: positiveDuration.default(30_000),
});

/** The key that tells each kind of upstream apart, in the order of upstreamSchema's options. */
export const UPSTREAM_KIND_KEYS = ['url', 'command'] as const;
const upstreamSchema = z.union([httpUpstreamSchema, stdioUpstreamSchema]);

const listenSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
  /** Extra Host header values to accept besides the listen address (e.g. a public name). */
  allowed_hosts: z.array(z.string()).default([]),
  /** Origins browsers may call from; requests with any other Origin are refused. */
  allowed_origins: z.array(z.string()).default([]),
});

const limitsSchema = z.strictObject({
  max_body_bytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  max_sessions: z.number().int().positive().default(10_000),
  session_idle_timeout: positiveDuration.default(30 * 60_000),
  shutdown_grace: duration.default(10_000),
});

export const configSchema = z.strictObject({
  environment: z.string().default('development'),
  listen: listenSchema.default(listenSchema.parse({})),
  store: z
    .string()
    .regex(/^(sqlite:|postgres:\/\/|postgresql:\/\/)/, 'use sqlite:PATH or postgres://…')
    .default('sqlite:./.warden/warden.db'),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .default({ level: 'info' }),
  limits: limitsSchema.default(limitsSchema.parse({})),
  upstreams: z.record(upstreamName, upstreamSchema).refine((u) => Object.keys(u).length > 0, {
    message: 'configure at least one upstream',
  }),
});

export type RawConfig = z.output<typeof configSchema>;
