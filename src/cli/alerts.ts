/**
 * `warden alerts test [--rule R]`: sends a sample alert of each configured rule (or of one) to
 * its webhooks and prints each delivery's outcome; exits 1 when any was not delivered.
 */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { AlertDeliveryError } from '../gateway/alerts/errors.js';
import { sendTestAlerts } from '../gateway/alerts/send-test-alerts.js';
import { CONFIG_OPTION, exitWithUsageCode, runCliAction } from './operator.js';

export function registerAlertsCommand(program: Command): void {
  const alerts = program
    .command('alerts')
    .description('alert rules and their webhooks')
    .exitOverride(exitWithUsageCode);

  alerts
    .command('test')
    .description(
      "send a sample alert of each rule (or --rule's) to its webhooks; print the outcome",
    )
    .option(...CONFIG_OPTION)
    .option('--rule <name>', 'only this rule')
    .action((options: { config: string; rule?: string }) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        const outcomes = await sendTestAlerts(config.alerts, {
          ...(options.rule !== undefined && { rule: options.rule }),
        });
        let failed = 0;
        for (const { rule, deliveries } of outcomes) {
          if (deliveries.length === 0) process.stdout.write(`${rule}: no webhook\n`);
          for (const delivery of deliveries) {
            const tries = `${delivery.attempts} attempt${delivery.attempts === 1 ? '' : 's'}`;
            if (!delivery.ok) failed++;
            process.stdout.write(
              delivery.ok
                ? `${rule} -> ${delivery.webhook}: delivered (${tries})\n`
                : `${rule} -> ${delivery.webhook}: FAILED after ${tries}: ${delivery.error ?? ''}\n`,
            );
          }
        }
        if (failed > 0) throw new AlertDeliveryError(`${failed} test alert(s) not delivered`);
      }),
    );
}
