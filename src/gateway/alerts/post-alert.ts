/**
 * One POST of an alert to a webhook, signed as approval webhooks are (http/post-signed-json.ts),
 * so a receiver verifies both with one function.
 */
import type { Dispatcher } from 'undici';
import type { AlertWebhookConfig } from '../../config/alerts-schema.js';
import { postSignedJson } from '../../http/post-signed-json.js';
import { AlertDeliveryError } from './errors.js';

export interface AlertTarget {
  readonly webhook: AlertWebhookConfig;
  /** The HMAC key from `secret_env`; unsigned without it. */
  readonly secret: Buffer | undefined;
}

/** Posts the message; rejects with AlertDeliveryError unless the webhook answers 2xx. */
export async function postAlert(
  target: AlertTarget,
  message: unknown,
  now: () => number,
  dispatcher?: Dispatcher,
): Promise<void> {
  const { webhook } = target;
  const where = new URL(webhook.url).origin; // the path may itself be a secret (Slack)
  let status: number;
  try {
    status = await postSignedJson({
      url: webhook.url,
      message,
      secret: target.secret,
      timeoutMs: webhook.timeoutMs,
      userAgent: 'warden-alerts',
      now,
      dispatcher,
    });
  } catch (error) {
    throw new AlertDeliveryError(`the webhook at ${where} could not be reached`, { cause: error });
  }
  if (status < 200 || status > 299) {
    throw new AlertDeliveryError(`the webhook at ${where} answered HTTP ${status}`);
  }
}
