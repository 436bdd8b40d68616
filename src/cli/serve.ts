/** `warden serve --config warden.yaml`: run the gateway from a configuration file. */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../domain/errors.js';
import type { RunningGateway } from '../gateway/app.js';
import { CONFIG_OPTION } from './operator.js';
import { stopOnSignal } from './run-until-signal.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the gateway')
    .option(...CONFIG_OPTION)
    .action(async (options: { config: string }) => {
      try {
        const config = loadConfigFile(options.config);
        const { startGateway } = await import('../gateway/app.js');
        const gateway = await startGateway(config);
        stopOnSignal(gateway);
        // SIGHUP re-reads the file and reloads the policy; a bad file changes nothing.
        process.on('SIGHUP', () => {
          void reloadPolicy(gateway, options.config);
        });
      } catch (error) {
        if (error instanceof ConfigError) {
          process.stderr.write(`${error.message}\n`);
          process.exit(2);
        }
        throw error;
      }
    });
}

async function reloadPolicy(gateway: RunningGateway, file: string): Promise<void> {
  let config;
  try {
    config = loadConfigFile(file);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.issues : [String(error)];
    process.stderr.write(
      `policy reload refused; the running policy stays in force:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
    );
    return;
  }
  const outcome = await gateway.reloadPolicy(config);
  if (!outcome.ok) {
    process.stderr.write(
      `policy reload refused; the running policy stays in force:\n${outcome.problems.map((p) => `  - ${p}`).join('\n')}\n`,
    );
  }
}
