/**
 * The approvals part of warden.yaml: who may approve held calls (by user id, with the approver
 * roles a grant's `approvers:` names), where new requests are announced (webhooks), and how often
 * a held call looks for decisions made in another process (the CLI, another replica).
 *
 * ```yaml
 * approvals:
 *   approvers:
 *     carol@example.com: { roles: [finance_approver] }
 *   webhooks:
 *     - { url: https://hooks.example/approvals, format: json, secret_env: APPROVALS_HMAC, timeout: 5s }
 *   poll_interval: 250ms
 * ```
 */
import { z } from 'zod';
import { positiveDurationSchema } from './duration.js';

const roleName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'names are letters, digits, - and _ (at most 64)');

const approverSchema = z.strictObject({
  /** Approver roles this person holds; a grant's `approvers:` lists the roles it accepts. */
  roles: z.array(roleName).min(1),
});

const webhookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** `json`: Warden's own payload; `slack`: `{ text, blocks }` for a Slack incoming webhook. */
  format: z.enum(['json', 'slack']).default('json'),
  /** The environment variable holding the HMAC key that signs each delivery. */
  secret_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
    .optional(),
  timeout: positiveDurationSchema.default(5000),
});

const approvalsSchema = z.strictObject({
  /** By user id (a token's `sub`); nobody else can approve, whatever a token claims. */
  approvers: z.record(z.string().min(1).max(256), approverSchema).default({}),
  webhooks: z.array(webhookSchema).default([]),
  poll_interval: positiveDurationSchema.default(250),
  /** How often a held call sends a progress notification (to a client that asked for progress). */
  progress_interval: positiveDurationSchema.default(5000),
});

/** Top-level keys this file adds to warden.yaml. */
export const approvalsConfigShape = {
  approvals: approvalsSchema.default(approvalsSchema.parse({})),
};

export interface ApproverConfig {
  /** The user id (token `sub`) this entry is keyed by. */
  readonly user: string;
  readonly roles: readonly string[];
}

export interface ApprovalWebhookConfig {
  readonly url: string;
  readonly format: 'json' | 'slack';
  /** Name of the environment variable with the HMAC key; unsigned when undefined. */
  readonly secretEnv: string | undefined;
  readonly timeoutMs: number;
}

export interface ApprovalsConfig {
  /** The approver registry, by user id. */
  readonly approvers: ReadonlyMap<string, ApproverConfig>;
  readonly webhooks: readonly ApprovalWebhookConfig[];
  /** How often a held call reads its request from the store, for decisions made elsewhere. */
  readonly pollIntervalMs: number;
  readonly progressIntervalMs: number;
}

/** The typed form of the `approvals:` section. */
export function toApprovalsConfig(raw: z.output<typeof approvalsSchema>): ApprovalsConfig {
  return {
    approvers: new Map(
      Object.entries(raw.approvers).map(([user, approver]) => [
        user,
        { user, roles: approver.roles },
      ]),
    ),
    webhooks: raw.webhooks.map((webhook) => ({
      url: webhook.url,
      format: webhook.format,
      secretEnv: webhook.secret_env,
      timeoutMs: webhook.timeout,
    })),
    pollIntervalMs: raw.poll_interval,
    progressIntervalMs: raw.progress_interval,
  };
}
