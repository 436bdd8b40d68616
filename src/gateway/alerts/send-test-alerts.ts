/**
 * `warden alerts test`: a sample alert of each rule (or one) sent at once to the rule's webhooks,
 * signed and retried as a real one, without deduplication. Nothing is recorded: the command runs
 * beside the gateway, which alone writes its audit stream.
 */
import type { Dispatcher } from 'undici';
import type { AlertsConfig } from '../../config/alerts-schema.js';
import { ConfigError } from '../../domain/errors.js';
import { createAlertSender, type AlertDelivery } from './alert-sender.js';

export interface TestAlertOutcome {
  readonly rule: string;
  readonly deliveries: readonly AlertDelivery[];
}

export async function sendTestAlerts(
  config: AlertsConfig,
  options: {
    readonly rule?: string;
    readonly env?: Readonly<Record<string, string | undefined>>;
    readonly now?: () => number;
    readonly sleep?: (ms: number) => Promise<void>;
    readonly dispatcher?: Dispatcher;
  } = {},
): Promise<TestAlertOutcome[]> {
  const rules =
    options.rule === undefined
      ? config.rules
      : config.rules.filter((rule) => rule.name === options.rule);
  if (rules.length === 0) {
    const known = config.rules.map((rule) => rule.name).join(', ') || '(none)';
    throw new ConfigError('alerts', [
      options.rule === undefined
        ? 'alerts.rules: no rule is configured'
        : `alerts.rules: no rule is named "${options.rule}" (rules: ${known})`,
    ]);
  }
  const sender = createAlertSender({
    config,
    record: () => undefined,
    onError: () => undefined,
    ...options,
  });
  const now = options.now ?? Date.now;
  const outcomes: TestAlertOutcome[] = [];
  for (const rule of rules) {
    const deliveries = await sender.sendNow(
      {
        rule: rule.name,
        kind: rule.kind,
        key: 'test',
        summary: `test alert of rule ${rule.name} (${rule.kind}) from warden alerts test`,
        time: new Date(now()).toISOString(),
        facts: {},
      },
      true,
    );
    outcomes.push({ rule: rule.name, deliveries });
  }
  return outcomes;
}
