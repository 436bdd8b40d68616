/**
 * The approvals part of warden.yaml: who may approve held calls (by user id, with the approver
 * roles a grant's `approvers:` names), where new requests are announced (webhooks), how often
 * a held call looks for decisions made in another process (the CLI, another replica), which
 * arguments an approver's list shows per tool, and whether the CLI may decide at all.
 *
 * ```yaml
 * approvals:
 *   approvers:
 *     carol@example.com: { roles: [finance_approver] }
 *   webhooks:
 *     - { url: https://hooks.example/approvals, format: json, secret_env: APPROVALS_HMAC, timeout: 5s }
 *   poll_interval: 250ms
 *   summaries:
 *     payments.issue_payment: [amount, currency, vendor]
 *   cli_decisions: false
 *   delivery: auto
 * ```
 *
 * The summaries live here, not on grants: they only shape what approvers read (several grants
 * may hold the same tool), and a request is summarised when it is shown, so a changed summary
 * applies to the requests already waiting.
 */
import { z } from 'zod';
import { positiveDurationSchema } from './duration.js';
import { argumentPath } from './policy-schema.js';

const roleName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'names are letters, digits, - and _ (at most 64)');

const approverSchema = z.strictObject({
  /** Approver roles this person holds; a grant's `approvers:` lists the roles it accepts. */
  roles: z.array(roleName).min(1),
});

/** A webhook as approvals and alerts both configure one. */
export const webhookSchema = z.strictObject({
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

/** `payments.issue_payment`: the upstream (as named under `upstreams:`) and the tool. */
const toolKey = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,62}\.[^\s.][^\s]{0,127}$/,
    'a key is upstream.tool, e.g. payments.issue_payment',
  );

const summarySchema = z
  .array(argumentPath)
  .min(1)
  .max(8)
  .refine((paths) => new Set(paths).size === paths.length, 'an argument is listed twice');

const approvalsSchema = z.strictObject({
  /** By user id (a token's `sub`); nobody else can approve, whatever a token claims. */
  approvers: z.record(z.string().min(1).max(256), approverSchema).default({}),
  webhooks: z.array(webhookSchema).default([]),
  poll_interval: positiveDurationSchema.default(250),
  /** How often a held call sends a progress notification (to a client that asked for progress). */
  progress_interval: positiveDurationSchema.default(5000),
  /** Per tool, the arguments `warden approvals list` shows (others: the first few, cut). */
  summaries: z.record(toolKey, summarySchema).default({}),
  /**
   * `false`: `warden approvals approve|deny` refuse to decide; only the admin API (where the
   * approver is the token's user, not a claim) does.
   */
  cli_decisions: z.boolean().default(true),
  /**
   * How a held call reaches its caller. `hold`: the call waits (stock clients give up after 60 s).
   * `retry`: answered at once with a pending result; the same call made again once approved goes.
   * `task`: an MCP task (2025-11-25, task-augmented `tools/call`) for a client that asks for
   * one (`params.task`); `retry` for any other. `auto`: the same as `task`.
   */
  delivery: z.enum(['auto', 'hold', 'retry', 'task']).default('auto'),
  /**
   * A call held open (`hold`) for a client that declared elicitation: the person is told, by an
   * elicitation request, that the call waits for an approval (nothing is asked of them).
   */
  notify_elicitation: z.boolean().default(true),
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

/** How an approval-gated call waits for its approval (`approvals.delivery`). */
export type ApprovalDelivery = 'auto' | 'hold' | 'retry' | 'task';

export interface ApprovalsConfig {
  /** The approver registry, by user id. */
  readonly approvers: ReadonlyMap<string, ApproverConfig>;
  readonly webhooks: readonly ApprovalWebhookConfig[];
  /** How often a held call reads its request from the store, for decisions made elsewhere. */
  readonly pollIntervalMs: number;
  readonly progressIntervalMs: number;
  /** Per `upstream.tool`, the argument paths an approver's list shows. */
  readonly summaries: ReadonlyMap<string, readonly string[]>;
  /** Whether an approver named on the command line (`--as`) may decide. */
  readonly cliDecisions: boolean;
  readonly delivery: ApprovalDelivery;
  /** Tell a person whose client elicits that their held call waits for approval. */
  readonly notifyElicitation: boolean;
}

/**
 * The typed form of the `approvals:` section. A summary of a tool on an upstream that is not
 * configured is a typo that would go unnoticed: it is added to `issues`.
 */
export function toApprovalsConfig(
  raw: z.output<typeof approvalsSchema>,
  upstreams: readonly string[],
  issues: string[],
): ApprovalsConfig {
  for (const key of Object.keys(raw.summaries)) {
    const upstream = key.slice(0, key.indexOf('.'));
    if (!upstreams.includes(upstream)) {
      issues.push(
        `approvals.summaries.${key}: no upstream is named "${upstream}" (upstreams: ${upstreams.join(', ')})`,
      );
    }
  }
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
    summaries: new Map(Object.entries(raw.summaries)),
    cliDecisions: raw.cli_decisions,
    delivery: raw.delivery,
    notifyElicitation: raw.notify_elicitation,
  };
}
