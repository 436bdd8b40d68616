/**
 * The `metrics` key of warden.yaml: Prometheus metrics at `/metrics`, never public.
 *
 *   metrics:
 *     enabled: true
 *     listen: { host: 127.0.0.1, port: 9464 }   # a listener of their own (loopback by default)
 *     token_env: WARDEN_METRICS_TOKEN           # and/or a bearer secret the scraper sends
 *
 * On the main listener a token is required: anyone who can reach the gateway could read them.
 */
import { z } from 'zod';

export const metricsSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Serve /metrics on this address only (not on the main listener). */
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9464),
      })
      .optional(),
    /** The environment variable holding the bearer secret a scraper must send. */
    token_env: z.string().min(1).optional(),
  })
  .refine((metrics) => !metrics.enabled || metrics.listen !== undefined || metrics.token_env, {
    message:
      'metrics on the main listener need token_env (a bearer secret), or set metrics.listen to serve them on an address of their own',
  });

export interface MetricsConfig {
  readonly enabled: boolean;
  /** A listener of their own; undefined: /metrics on the main listener. */
  readonly listen: { readonly host: string; readonly port: number } | undefined;
  /** The environment variable holding the bearer secret; undefined: no token asked. */
  readonly tokenEnv: string | undefined;
}

export function toMetricsConfig(raw: z.output<typeof metricsSchema>): MetricsConfig {
  return {
    enabled: raw.enabled,
    listen: raw.listen && { host: raw.listen.host, port: raw.listen.port },
    tokenEnv: raw.token_env,
  };
}
