/**
 * `warden serve --host --port --log-level`: values that win over the config file's `listen.host`,
 * `listen.port` and `log.level`, checked as the file's own values are. And what differs between
 * replicas started from one file (one ConfigMap): WARDEN_AUDIT_STREAM, WARDEN_REPLICA and
 * WARDEN_ADVERTISE_URL from the environment win over `audit.stream`, `cluster.replica` and
 * `cluster.advertise_url`.
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
export function applyServeOverrides(
  config: Config,
  options: ServeOverrideOptions,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const { host, port, logLevel } = options;
  const stream = replicaName(env, 'WARDEN_AUDIT_STREAM');
  const replica = replicaName(env, 'WARDEN_REPLICA');
  const advertiseUrl = advertisedUrl(env);
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
    audit: Object.freeze({ ...config.audit, stream: stream ?? config.audit.stream }),
    cluster: Object.freeze({
      ...config.cluster,
      // A replica is named after its stream unless named otherwise.
      replica:
        replica ??
        (stream !== undefined && config.cluster.replica === config.audit.stream
          ? stream
          : config.cluster.replica),
      advertiseUrl: advertiseUrl ?? config.cluster.advertiseUrl,
    }),
  });
}

function replicaName(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    throw new UsageError(`${name} must be 1 to 64 letters, digits, ., - and _, not "${value}"`);
  }
  return value;
}

function advertisedUrl(env: NodeJS.ProcessEnv): string | undefined {
  const value = env['WARDEN_ADVERTISE_URL'];
  if (value === undefined || value === '') return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`WARDEN_ADVERTISE_URL must be an http:// or https:// URL, not "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`WARDEN_ADVERTISE_URL must be an http:// or https:// URL, not "${value}"`);
  }
  return value.replace(/\/$/, '');
}
