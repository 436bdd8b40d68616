/**
 * Sends alerts to their webhooks: each rule+key at most once per its dedup window, each delivery
 * retried with doubling backoff up to the configured attempts, and its outcome recorded in the
 * audit log (`alert.sent` / `alert.failed`; those records never raise alerts, see
 * match-alert-rules.ts). Never throws and never holds up the caller; at most `maxQueued`
 * deliveries wait, so a dead receiver cannot grow memory without bound.
 */
import type { Dispatcher } from 'undici';
import type { AlertRuleConfig, AlertsConfig } from '../../config/alerts-schema.js';
import type { AuditEntry } from '../../domain/audit-record.js';
import { ConfigError } from '../../domain/errors.js';
import type { Alert } from './alert.js';
import { alertMessage } from './alert-message.js';
import { postAlert, type AlertTarget } from './post-alert.js';

const DEFAULT_MAX_QUEUED = 1000;

export interface AlertSenderOptions {
  readonly config: AlertsConfig;
  /** Records a delivery's outcome; must not wait for, nor raise, other alerts. */
  readonly record: (entry: Omit<AuditEntry, 'time'>) => void;
  readonly onError: (error: unknown, message: string) => void;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
  /** Waits between attempts; injected so tests do not wait out real backoff. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly maxQueued?: number;
  readonly dispatcher?: Dispatcher;
}

/** What one delivery came to; `warden alerts test` prints these. */
export interface AlertDelivery {
  readonly webhook: string;
  readonly ok: boolean;
  readonly attempts: number;
  readonly error?: string;
}

export interface AlertSender {
  /** Sends the alert unless its rule+key was sent within the rule's dedup window. */
  send(alert: Alert): void;
  /** Sends at once, without deduplication, and resolves with each webhook's outcome. */
  sendNow(alert: Alert, test: boolean): Promise<AlertDelivery[]>;
  /** Resolves once every queued delivery has ended. */
  idle(): Promise<void>;
  /** Stops retrying (one attempt each from now) and waits for what is under way. */
  close(): Promise<void>;
}

/**
 * Throws a ConfigError when a webhook's `secret_env` is unset: unsigned deliveries to a receiver
 * that expects signatures would only look like working.
 */
export function createAlertSender(options: AlertSenderOptions): AlertSender {
  const { config } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const targets = readTargets(config, options.env ?? process.env);
  const rules = new Map(config.rules.map((rule) => [rule.name, rule]));
  const lastSent = new Map<string, number>();
  const running = new Set<Promise<unknown>>();
  let closing = false;

  const targetsOf = (rule: AlertRuleConfig | undefined): AlertTarget[] =>
    rule?.webhooks === undefined
      ? targets
      : targets.filter((target) => rule.webhooks?.includes(target.webhook.name));

  const deliver = async (
    target: AlertTarget,
    alert: Alert,
    test: boolean,
  ): Promise<AlertDelivery> => {
    const message = alertMessage(alert, target.webhook.format, test);
    let attempts = 0;
    let lastError: unknown;
    while (attempts < config.retry.attempts) {
      attempts++;
      try {
        await postAlert(target, message, now, options.dispatcher);
        options.record(outcomeEntry('alert.sent', alert, target, attempts, undefined, test));
        return { webhook: target.webhook.name, ok: true, attempts };
      } catch (error) {
        lastError = error;
        if (closing || attempts >= config.retry.attempts) break;
        await sleep(config.retry.backoffMs * 2 ** (attempts - 1));
      }
    }
    const reason = lastError instanceof Error ? lastError.message : String(lastError);
    options.record(outcomeEntry('alert.failed', alert, target, attempts, reason, test));
    options.onError(
      lastError,
      `alert ${alert.rule} (${alert.key}) not delivered to ${target.webhook.name}`,
    );
    return { webhook: target.webhook.name, ok: false, attempts, error: reason };
  };

  const track = <T>(work: Promise<T>): Promise<T> => {
    running.add(work);
    void work.finally(() => running.delete(work)).catch(() => undefined);
    return work;
  };

  return {
    send(alert) {
      const rule = rules.get(alert.rule);
      const dedupKey = `${alert.rule}\u0000${alert.key}`;
      const at = now();
      const last = lastSent.get(dedupKey);
      if (last !== undefined && at - last < (rule?.dedupWindowMs ?? 0)) return;
      lastSent.set(dedupKey, at);
      for (const target of targetsOf(rule)) {
        if (running.size >= maxQueued) {
          options.onError(
            new Error(`${running.size} alert deliveries are under way already`),
            `dropped alert ${alert.rule}`,
          );
          continue;
        }
        void track(deliver(target, alert, false));
      }
    },
    sendNow(alert, test) {
      return track(
        Promise.all(targetsOf(rules.get(alert.rule)).map((target) => deliver(target, alert, test))),
      );
    },
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
    async close() {
      closing = true;
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}

function readTargets(
  config: AlertsConfig,
  env: Readonly<Record<string, string | undefined>>,
): AlertTarget[] {
  const issues: string[] = [];
  const targets = config.webhooks.map((webhook, index) => {
    if (webhook.secretEnv === undefined) return { webhook, secret: undefined };
    const value = env[webhook.secretEnv];
    if (value === undefined || value === '') {
      issues.push(
        `alerts.webhooks[${index}].secret_env: the environment variable ${webhook.secretEnv} is not set`,
      );
    }
    return { webhook, secret: Buffer.from(value ?? '', 'utf8') };
  });
  if (issues.length > 0) throw new ConfigError('environment', issues);
  return targets;
}

function outcomeEntry(
  event: 'alert.sent' | 'alert.failed',
  alert: Alert,
  target: AlertTarget,
  attempts: number,
  error: string | undefined,
  test: boolean,
): Omit<AuditEntry, 'time'> {
  return {
    event,
    ...(error !== undefined && { errorCode: 'WARDEN_ALERT_DELIVERY_FAILED' }),
    details: {
      rule: alert.rule,
      kind: alert.kind,
      key: alert.key,
      webhook: target.webhook.name,
      attempts,
      ...(error !== undefined && { error }),
      ...(test && { test }),
    },
  };
}
