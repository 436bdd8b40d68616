/**
 * DNS rebinding protection: a browser tricked into calling a local gateway sends a foreign Host
 * or Origin. Only the names the gateway is configured to answer to are accepted.
 */
import { WardenError } from '../domain/errors.js';

export interface OriginGuard {
  /** Throws WARDEN_FORBIDDEN_HOST / WARDEN_FORBIDDEN_ORIGIN for a request from elsewhere. */
  check(host: string | undefined, origin: string | undefined): void;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

export function createOriginGuard(options: {
  listenHost: string;
  port: number;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}): OriginGuard {
  const hosts = new Set<string>(options.allowedHosts.map((h) => h.toLowerCase()));
  const names =
    isWildcard(options.listenHost) || isLoopback(options.listenHost)
      ? LOOPBACK_NAMES
      : [bracketIpv6(options.listenHost)];
  for (const name of names) {
    hosts.add(`${name}:${options.port}`.toLowerCase());
    if (options.port === 80 || options.port === 443) hosts.add(name.toLowerCase());
  }
  const origins = new Set<string>(
    options.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')),
  );
  for (const host of hosts) {
    origins.add(`http://${host}`);
    origins.add(`https://${host}`);
  }
  return {
    check(host, origin) {
      if (host === undefined || !hosts.has(host.toLowerCase()))
        throw new WardenError('WARDEN_FORBIDDEN_HOST');
      if (origin !== undefined && !origins.has(origin.toLowerCase()))
        throw new WardenError('WARDEN_FORBIDDEN_ORIGIN');
    },
  };
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function bracketIpv6(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
