/**
 * Announces each new approval request to the configured webhooks, so approvers learn of it
 * without watching the console. Delivery is best effort and never holds up the call: failures
 * go to `onError`, the request stays pending (and visible in the CLI and the admin API) either
 * way. At most `maxConcurrent` deliveries run at once; beyond `maxQueued` waiting deliveries new
 * ones are dropped (and reported), so a dead receiver cannot grow memory without bound.
 *
 * `format: json` posts Warden's payload (with the full arguments: approvers must see what they
 * approve); `format: slack` posts `{ text, blocks }` for a Slack incoming webhook. With
 * `secret_env`, each delivery is signed:
 *   x-warden-timestamp: <unix seconds>
 *   x-warden-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">
 * The timestamp is inside the signed text so a receiver can refuse replays of old deliveries
 * (e.g. older than 5 minutes); compare signatures in constant time.
 */
import type { Dispatcher } from 'undici';
import type { ApprovalWebhookConfig } from '../config/approvals-schema.js';
import { postSignedJson } from '../http/post-signed-json.js';
import { ConfigError } from '../domain/errors.js';
import type { ApprovalRequest } from '../store/types.js';
import { approvalCommands, isoTime, parseArguments } from './approval-view.js';

const DEFAULT_MAX_CONCURRENT = 4;
const DEFAULT_MAX_QUEUED = 1000;
/** Slack refuses section text longer than 3000 characters. */
const SLACK_SECTION_LIMIT = 3000;
const SLACK_ARGUMENTS_LIMIT = 2400;

export interface ApprovalNotifierOptions {
  readonly webhooks: readonly ApprovalWebhookConfig[];
  /** Where `secret_env` names are looked up; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
  readonly onError: (error: unknown, message: string) => void;
  readonly maxConcurrent?: number;
  readonly maxQueued?: number;
  /** For tests and custom TLS; undici's global dispatcher otherwise. */
  readonly dispatcher?: Dispatcher;
}

export interface ApprovalNotifier {
  /** Queues one delivery per webhook; returns at once and never throws. */
  notify(request: ApprovalRequest): void;
  /**
   * Tells the webhooks that a request announced earlier can no longer be decided (the policy or
   * the tool definition changed); same delivery rules as `notify`.
   */
  notifyInvalidated(request: ApprovalRequest, reason: string): void;
  /** Resolves once every queued delivery has ended (for tests and graceful shutdown). */
  idle(): Promise<void>;
}

/** Warden's webhook payload (`format: json`). */
export interface ApprovalWebhookPayload {
  readonly type: 'approval.requested';
  readonly id: string;
  readonly requestId: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly user: string | null;
  readonly agent: string;
  readonly model: string | null;
  readonly upstream: string;
  readonly tool: string;
  readonly arguments: unknown;
  readonly argumentsHash: string;
  readonly grants: readonly string[];
  readonly scopes: readonly string[];
  readonly approverRoles: readonly string[];
  readonly approvalsRequired: number;
  readonly approve: string;
  readonly deny: string;
}

/** Warden's payload when an announced request is invalidated (`format: json`). */
export interface ApprovalInvalidatedPayload {
  readonly type: 'approval.invalidated';
  readonly id: string;
  readonly requestId: string;
  readonly upstream: string;
  readonly tool: string;
  readonly reason: string;
}

interface Target {
  readonly webhook: ApprovalWebhookConfig;
  readonly secret: Buffer | undefined;
}

/**
 * Creates the notifier. Throws a ConfigError when a webhook's `secret_env` names an unset or
 * empty variable: sending unsigned deliveries to a receiver that expects signatures would only
 * look like working.
 */
export function createApprovalNotifier(options: ApprovalNotifierOptions): ApprovalNotifier {
  const env = options.env ?? process.env;
  const now = options.now ?? Date.now;
  const maxConcurrent = options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const issues: string[] = [];
  const targets: Target[] = options.webhooks.map((webhook, index) => {
    if (webhook.secretEnv === undefined) return { webhook, secret: undefined };
    const value = env[webhook.secretEnv];
    if (value === undefined || value === '') {
      issues.push(
        `approvals.webhooks[${index}].secret_env: the environment variable ${webhook.secretEnv} is not set`,
      );
    }
    return { webhook, secret: Buffer.from(value ?? '', 'utf8') };
  });
  if (issues.length > 0) throw new ConfigError('environment', issues);

  const queue: (() => Promise<void>)[] = [];
  let active = 0;
  let idleWaiters: (() => void)[] = [];

  const pump = (): void => {
    while (active < maxConcurrent) {
      const job = queue.shift();
      if (job === undefined) break;
      active++;
      void job().finally(() => {
        active--;
        pump();
      });
    }
    if (active === 0 && queue.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  const deliver = async (
    target: Target,
    request: ApprovalRequest,
    message: (format: ApprovalWebhookConfig['format']) => unknown,
  ): Promise<void> => {
    const { webhook } = target;
    const where = new URL(webhook.url).origin; // the path may itself be a secret (Slack)
    try {
      const status = await postSignedJson({
        url: webhook.url,
        message: message(webhook.format),
        secret: target.secret,
        timeoutMs: webhook.timeoutMs,
        userAgent: 'warden-approvals',
        now,
        dispatcher: options.dispatcher,
      });
      if (status < 200 || status > 299) {
        throw new Error(`the webhook at ${where} answered HTTP ${status}`);
      }
    } catch (error) {
      options.onError(error, `announcing approval ${request.id} to the webhook at ${where} failed`);
    }
  };

  const enqueue = (
    request: ApprovalRequest,
    message: (format: ApprovalWebhookConfig['format']) => unknown,
  ): void => {
    for (const target of targets) {
      if (queue.length >= maxQueued) {
        options.onError(
          new Error(`${queue.length} webhook deliveries are waiting already`),
          `dropped the announcement of approval ${request.id}`,
        );
        continue;
      }
      queue.push(() => deliver(target, request, message));
    }
    pump();
  };

  return {
    notify(request) {
      enqueue(request, (format) =>
        format === 'slack' ? slackApprovalMessage(request) : approvalWebhookPayload(request),
      );
    },
    notifyInvalidated(request, reason) {
      enqueue(request, (format) =>
        format === 'slack'
          ? slackInvalidatedMessage(request, reason)
          : approvalInvalidatedPayload(request, reason),
      );
    },
    idle() {
      if (active === 0 && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}

export function approvalWebhookPayload(request: ApprovalRequest): ApprovalWebhookPayload {
  return {
    type: 'approval.requested',
    id: request.id,
    requestId: request.requestId,
    createdAt: isoTime(request.createdAt),
    expiresAt: isoTime(request.expiresAt),
    user: request.user ?? null,
    agent: request.agent,
    model: request.model ?? null,
    upstream: request.upstream,
    tool: request.tool,
    arguments: parseArguments(request.arguments),
    argumentsHash: request.argumentsHash,
    grants: request.grants,
    scopes: request.scopes,
    approverRoles: request.approverRoles,
    approvalsRequired: request.approvalsRequired,
    ...approvalCommands(request.id),
  };
}

/**
 * A Slack message announcing the request. Every value the caller chose is escaped for mrkdwn,
 * so an agent cannot ping a channel (`<!channel>`), forge a link, or close the code block its
 * arguments are shown in.
 */
export function slackApprovalMessage(request: ApprovalRequest): {
  text: string;
  blocks: unknown[];
} {
  const required =
    request.approvalsRequired > 1 ? ` (${request.approvalsRequired} approvers needed)` : '';
  const text = `Approval needed${required}: ${request.agent} wants to call ${request.upstream}.${request.tool}`;
  let args = JSON.stringify(parseArguments(request.arguments), null, 2);
  if (args.length > SLACK_ARGUMENTS_LIMIT) {
    args = `${args.slice(0, SLACK_ARGUMENTS_LIMIT)}\n… (cut; warden approvals show ${request.id} has all of it)`;
  }
  const commands = approvalCommands(request.id);
  const facts = [
    `*Approval needed*${required} for ${inlineCode(`${request.upstream}.${request.tool}`)}`,
    `*Agent:* ${mrkdwn(request.agent)}`,
    `*User:* ${mrkdwn(request.user ?? '(none)')}`,
    ...(request.model === undefined ? [] : [`*Model (declared):* ${mrkdwn(request.model)}`]),
    `*Approver roles:* ${mrkdwn(request.approverRoles.join(', ') || '(none)')}`,
    `*Expires:* ${isoTime(request.expiresAt)}`,
    `*Approval id:* ${mrkdwn(request.id)} (request ${mrkdwn(request.requestId)})`,
  ].join('\n');
  const section = (body: string) => ({
    type: 'section',
    text: { type: 'mrkdwn', text: body.slice(0, SLACK_SECTION_LIMIT) },
  });
  return {
    text: mrkdwn(text),
    blocks: [
      section(facts),
      section(`*Arguments:*\n\`\`\`${mrkdwn(args).replaceAll('```', "'''")}\`\`\``),
      section(`Approve: ${inlineCode(commands.approve)}\nDeny: ${inlineCode(commands.deny)}`),
    ],
  };
}

export function approvalInvalidatedPayload(
  request: ApprovalRequest,
  reason: string,
): ApprovalInvalidatedPayload {
  return {
    type: 'approval.invalidated',
    id: request.id,
    requestId: request.requestId,
    upstream: request.upstream,
    tool: request.tool,
    reason,
  };
}

/** A Slack message saying an announced request can no longer be decided, and why. */
export function slackInvalidatedMessage(
  request: ApprovalRequest,
  reason: string,
): { text: string } {
  return {
    text: mrkdwn(
      `Approval ${request.id} for ${request.upstream}.${request.tool} (${request.agent}) no longer needs a decision: ${reason}. The call was refused.`,
    ),
  };
}

function inlineCode(text: string): string {
  return `\`${mrkdwn(text).replaceAll('`', "'")}\``;
}

/** Slack's three control characters; with them escaped no mention or link can be formed. */
function mrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
