/**
 * The `alerts` key of warden.yaml: rules on audit events, delivered to webhooks a team routes.
 *
 * ```yaml
 * alerts:
 *   webhooks:
 *     - { name: oncall, url: https://hooks.example/warden, format: json, secret_env: ALERTS_HMAC }
 *     - { name: chat, url: https://hooks.slack.com/services/…, format: slack }
 *   rules:
 *     - { kind: breakglass_used }                       # to every webhook
 *     - { kind: denial_rate, threshold: 20, window: 5m, webhooks: [oncall] }
 *     - { kind: auth_failure_burst, threshold: 50, window: 1m, dedup_window: 15m }
 *   retry: { attempts: 4, backoff: 1s }
 * ```
 *
 * `threshold` means "more than N events in `window`", per agent (denial_rate) or per source
 * address (auth_failure_burst). An alert of one rule for one key (agent, source, upstream, …) is
 * sent at most once per `dedup_window`.
 */
import { z } from 'zod';
import { webhookSchema } from './approvals-schema.js';
import { positiveDurationSchema } from './duration.js';

export const ALERT_KINDS = [
  'breakglass_used',
  'tool_definition_changed',
  'approval_expired',
  'breaker_open',
  'denial_rate',
  'auth_failure_burst',
  'audit_unavailable',
  /** The gateway's periodic re-verification of the audit log failed (audit.verify_every). */
  'verification_failure',
] as const;

export type AlertKind = (typeof ALERT_KINDS)[number];

/** The kinds that count events in a window, and so need a threshold. */
const COUNTING_KINDS: readonly AlertKind[] = ['denial_rate', 'auth_failure_burst'];

const webhookName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'names are letters, digits, - and _ (at most 64)');

/** An approvals webhook with a name rules route by; `format: slack` posts `{ text }`. */
const alertWebhookSchema = webhookSchema.extend({ name: webhookName });

const alertRuleSchema = z
  .strictObject({
    /** Defaults to the kind; names the rule in payloads, in `warden alerts test --rule`. */
    name: webhookName.optional(),
    kind: z.enum(ALERT_KINDS),
    /** More than this many events within `window` raise the alert (counting kinds only). */
    threshold: z.number().int().min(0).optional(),
    window: positiveDurationSchema.default(60_000),
    dedup_window: positiveDurationSchema.default(300_000),
    /** The webhooks (by name) this rule goes to; every webhook when left out. */
    webhooks: z.array(webhookName).min(1).optional(),
  })
  .refine((rule) => !COUNTING_KINDS.includes(rule.kind) || rule.threshold !== undefined, {
    message: 'denial_rate and auth_failure_burst need a threshold (more than N in the window)',
  });

export const alertsSchema = z.strictObject({
  webhooks: z.array(alertWebhookSchema).default([]),
  rules: z.array(alertRuleSchema).default([]),
  retry: z
    .strictObject({
      attempts: z.number().int().min(1).max(10).default(3),
      backoff: positiveDurationSchema.default(1000),
    })
    .default({ attempts: 3, backoff: 1000 }),
});

export interface AlertWebhookConfig {
  readonly name: string;
  readonly url: string;
  readonly format: 'json' | 'slack';
  readonly secretEnv: string | undefined;
  readonly timeoutMs: number;
}

export interface AlertRuleConfig {
  readonly name: string;
  readonly kind: AlertKind;
  /** Counting kinds: more than this many in `windowMs`. 0 for the others. */
  readonly threshold: number;
  readonly windowMs: number;
  readonly dedupWindowMs: number;
  /** Webhook names; every webhook when undefined. */
  readonly webhooks: readonly string[] | undefined;
}

export interface AlertsConfig {
  readonly webhooks: readonly AlertWebhookConfig[];
  readonly rules: readonly AlertRuleConfig[];
  /** Attempts per delivery (the first included), and the first wait between them (doubling). */
  readonly retry: { readonly attempts: number; readonly backoffMs: number };
}

export function toAlertsConfig(raw: z.output<typeof alertsSchema>, issues: string[]): AlertsConfig {
  const names = new Set<string>();
  for (const webhook of raw.webhooks) {
    if (names.has(webhook.name)) issues.push(`alerts.webhooks: "${webhook.name}" is named twice`);
    names.add(webhook.name);
  }
  const ruleNames = new Set<string>();
  const rules = raw.rules.map((rule, index): AlertRuleConfig => {
    const name = rule.name ?? rule.kind;
    if (ruleNames.has(name)) {
      issues.push(`alerts.rules[${index}]: a rule is named "${name}" twice (give it a name)`);
    }
    ruleNames.add(name);
    for (const webhook of rule.webhooks ?? []) {
      if (!names.has(webhook)) {
        issues.push(`alerts.rules[${index}].webhooks: no webhook is named "${webhook}"`);
      }
    }
    return {
      name,
      kind: rule.kind,
      threshold: rule.threshold ?? 0,
      windowMs: rule.window,
      dedupWindowMs: rule.dedup_window,
      webhooks: rule.webhooks,
    };
  });
  return {
    webhooks: raw.webhooks.map((webhook) => ({
      name: webhook.name,
      url: webhook.url,
      format: webhook.format,
      secretEnv: webhook.secret_env,
      timeoutMs: webhook.timeout,
    })),
    rules,
    retry: { attempts: raw.retry.attempts, backoffMs: raw.retry.backoff },
  };
}
