import { UsageError } from './operator.js';

/** A `--port` value: a whole number from 0 (any free port) to 65535. */
export function parsePortOption(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(`--port must be a port number from 0 to 65535, not "${value}"`);
  }
  return port;
}
