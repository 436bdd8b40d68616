/**
 * `warden serve --host --port --log-level`: values that win over the config file's `listen.host`,
 * `listen.port` and `log.level`, checked as the file's own values are.
 */
import type { Config } from '../config/config.js';
import { LOG_LEVELS } from '../config/schema.js';
import { UsageError } from './operator.js';
import { parsePortOption } from './parse-port.js';

export interface ServeOverrideOptions {
  readonly host?: string;
  readonly port?: string;
  readonly logLevel?: string;
}

/** The config with the given overrides applied, as a new frozen object; the rest is shared. */
export function applyServeOverrides(config: Config, options: ServeOverrideOptions): Config {
  const { host, port, logLevel } = options;
  if (host !== undefined && host.trim() === '') throw new UsageError('--host must not be empty');
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not "${logLevel}"`);
  }
  return Object.freeze({
    ...config,
    listen: Object.freeze({
      ...config.listen,
      ...(host !== undefined && { host }),
      ...(port !== undefined && { port: parsePortOption(port) }),
    }),
    log: Object.freeze({ level: logLevel ?? config.log.level }),
  });
}
