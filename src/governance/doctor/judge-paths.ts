/** Small judgements about addresses, paths and environments that several checks share. */
import { resolve, sep } from 'node:path';
import type { Config } from '../../config/config.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `prod`, `production`, `prod-eu`: an environment whose mistakes are errors, not warnings. */
export function isProduction(config: Config): boolean {
  return /^prod/i.test(config.environment);
}

export function isUnderAny(path: string, dirs: readonly string[]): boolean {
  const absolute = resolve(path);
  return dirs.some((dir) => {
    const folder = resolve(dir);
    return absolute === folder || absolute.startsWith(folder.endsWith(sep) ? folder : folder + sep);
  });
}

/** The file of a `sqlite:PATH` store; undefined for PostgreSQL and `sqlite::memory:`. */
export function sqliteFile(store: string): string | undefined {
  if (!store.startsWith('sqlite:')) return undefined;
  const path = store.slice('sqlite:'.length);
  return path === ':memory:' ? undefined : path;
}

/** Replicas share a store only on PostgreSQL; an advertised URL says this one relays to others. */
export function isCluster(config: Config): boolean {
  return !config.store.startsWith('sqlite:') || config.cluster.advertiseUrl !== undefined;
}

const DAY_MS = 86_400_000;

export function formatDuration(ms: number): string {
  if (ms >= DAY_MS && ms % DAY_MS === 0) return `${ms / DAY_MS}d`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms}ms`;
}
