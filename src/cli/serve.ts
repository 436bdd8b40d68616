/**
 * `warden serve --config warden.yaml`: run the gateway from a configuration file; `--host`,
 * `--port` and `--log-level` win over its `listen.host`, `listen.port` and `log.level`.
 */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, LocalError } from '../domain/errors.js';
import type { RunningGateway } from '../gateway/app.js';
import type { TlsReloadOutcome } from '../identity/tls-reloader.js';
import { CONFIG_OPTION, UsageError } from './operator.js';
import { applyServeOverrides, type ServeOverrideOptions } from './serve-overrides.js';
import { stopOnSignal } from './run-until-signal.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the gateway')
    .option(...CONFIG_OPTION)
    .option('--host <address>', 'address to bind, over listen.host')
    .option('--port <port>', 'port to bind (0 picks a free one), over listen.port')
    .option('--log-level <level>', 'log level, over log.level')
    .action(async (options: { config: string } & ServeOverrideOptions) => {
      try {
        const config = applyServeOverrides(loadConfigFile(options.config), options);
        const { startGateway } = await import('../gateway/app.js');
        const gateway = await startGateway(config);
        stopOnSignal(gateway);
        // SIGHUP re-reads the file and reloads the policy and agents (the log names any other
        // changed section, which needs a restart); a bad file changes nothing. With
        // policy_source: store it re-reads the newest pushed bundle instead, not the file.
        // It also re-reads the TLS certificate, key, client CAs and CRLs (the paths as started);
        // a bad TLS file keeps the running ones, and the log says why.
        process.on('SIGHUP', () => {
          if (config.listen.tls) reportTlsReload(gateway.reloadTls());
          if (config.policy.source === 'store') {
            void gateway.reloadPolicy(config).then(
              (outcome) => {
                if (!outcome.ok) reportRefusedReload(outcome.problems);
              },
              (error: unknown) => reportRefusedReload([String(error)]),
            );
            return;
          }
          void reloadPolicyAndAgents(gateway, options.config);
        });
      } catch (error) {
        if (error instanceof ConfigError || error instanceof UsageError) {
          process.stderr.write(
            `${error instanceof UsageError ? 'warden: ' : ''}${error.message}\n`,
          );
          process.exit(2);
        }
        // A refusal to start that says why (another live replica on this audit stream or name,
        // a store that cannot be opened): one line, not a stack trace.
        if (error instanceof LocalError) {
          process.stderr.write(`warden: ${error.message}\n`);
          process.exit(1);
        }
        throw error;
      }
    });
}

async function reloadPolicyAndAgents(gateway: RunningGateway, file: string): Promise<void> {
  let config;
  try {
    config = loadConfigFile(file);
  } catch (error) {
    reportRefusedReload(error instanceof ConfigError ? error.issues : [String(error)]);
    return;
  }
  const outcome = await gateway.reloadPolicy(config);
  if (!outcome.ok) reportRefusedReload(outcome.problems);
}

function reportTlsReload(outcome: TlsReloadOutcome): void {
  if (outcome.ok) return;
  process.stderr.write(
    `TLS reload refused; the running certificate, key, CAs and CRLs stay in force:\n${outcome.problems.map((p) => `  - ${p}`).join('\n')}\n`,
  );
}

function reportRefusedReload(problems: readonly string[]): void {
  process.stderr.write(
    `reload refused; the running policy and agents stay in force:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
  );
}
