/**
 * A held call's arguments in one short line, for an approver's list: the arguments configured
 * for the tool (`approvals.summaries`), or else the first few, each value cut. The full
 * arguments are what `warden approvals show` prints. The line is not made safe for a terminal
 * here: the shell that prints it does that (`toTerminalText`).
 */
import { isRecord } from '../domain/json-object.js';
import { parseArguments } from './approval-view.js';

/** Arguments shown when no summary is configured for the tool. */
const DEFAULT_KEYS = 3;
/** Longest rendering of one value, in characters. */
const VALUE_LENGTH = 24;

/**
 * `amount=950 currency="EUR" vendor="ACME GmbH"`: each value as JSON, cut to a few characters.
 * `paths` (dot-separated) name the arguments to show; a missing one shows as `(none)`.
 */
export function summarizeArguments(
  argumentsText: string,
  paths: readonly string[] | undefined,
): string {
  const args = parseArguments(argumentsText);
  if (paths !== undefined) {
    return paths.map((path) => `${path}=${renderValue(valueAt(args, path))}`).join(' ');
  }
  if (!isRecord(args)) return renderValue(args);
  const keys = Object.keys(args);
  const shown = keys.slice(0, DEFAULT_KEYS).map((key) => `${key}=${renderValue(args[key])}`);
  if (keys.length > DEFAULT_KEYS) shown.push(`(+${keys.length - DEFAULT_KEYS} more)`);
  return shown.join(' ') || '(no arguments)';
}

function valueAt(args: unknown, path: string): unknown {
  let current = args;
  for (const name of path.split('.')) {
    if (!isRecord(current) || !Object.hasOwn(current, name)) return undefined;
    current = current[name];
  }
  return current;
}

function renderValue(value: unknown): string {
  if (value === undefined) return '(none)';
  const chars = [...(JSON.stringify(value) ?? String(value))];
  return chars.length > VALUE_LENGTH
    ? `${chars.slice(0, VALUE_LENGTH - 1).join('')}…`
    : chars.join('');
}
