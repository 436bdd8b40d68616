/**
 * An alert as a webhook receives it: Warden's JSON payload, or `{ text }` for a Slack incoming
 * webhook. Values from agents and upstreams are escaped for Slack's mrkdwn so they cannot ping a
 * channel or forge a link.
 */
import type { Alert } from './alert.js';

export interface AlertWebhookPayload {
  readonly type: 'warden.alert';
  readonly rule: string;
  readonly kind: string;
  readonly key: string;
  readonly summary: string;
  readonly time: string;
  readonly facts: Readonly<Record<string, unknown>>;
  /** True for `warden alerts test`: no event happened. */
  readonly test: boolean;
}

export function alertMessage(
  alert: Alert,
  format: 'json' | 'slack',
  test: boolean,
): AlertWebhookPayload | { text: string } {
  if (format === 'slack') {
    const prefix = test ? '[test] ' : '';
    return {
      text: `${prefix}:rotating_light: *Warden alert ${escapeMrkdwn(alert.rule)}*: ${escapeMrkdwn(alert.summary)} (${alert.time})`,
    };
  }
  return { type: 'warden.alert', ...alert, test };
}

/** Slack's three control characters; with them escaped no mention or link can be formed. */
function escapeMrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
