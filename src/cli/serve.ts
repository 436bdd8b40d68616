/** `warden serve --config warden.yaml`: run the gateway from a configuration file. */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../domain/errors.js';
import { startGateway } from '../gateway/app.js';
import { stopOnSignal } from './run-until-signal.js';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the gateway')
    .option('-c, --config <file>', 'configuration file', 'warden.yaml')
    .action(async (options: { config: string }) => {
      try {
        const config = loadConfigFile(options.config);
        const gateway = await startGateway(config);
        stopOnSignal(gateway);
      } catch (error) {
        if (error instanceof ConfigError) {
          process.stderr.write(`${error.message}\n`);
          process.exit(2);
        }
        throw error;
      }
    });
}
