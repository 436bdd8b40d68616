/**
 * What every `warden` subcommand shares: the `--config` option, the operator session it opens
 * (the operations, bound to the configured store), who runs it, and how its errors end it. Exit codes, for every command: 0 ok, 1 a "no" answer (a failed
 * check, an approval refused by its rules, nothing to act on) or an unavailable store or issuer,
 * 2 a usage mistake, a configuration error or a policy that does not load.
 */
import { userInfo } from 'node:os';
import type { CommanderError } from 'commander';
import type { Config } from '../config/config.js';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, LocalError, OperationError, WardenError } from '../domain/errors.js';
import type { OperatorSession } from '../gateway/operator-session.js';
import { PolicyLoadError } from '../policy/policy-load-error.js';

export const DEFAULT_CONFIG_FILE = 'warden.yaml';

/** `--config FILE`, as every command that reads warden.yaml takes it. */
export const CONFIG_OPTION = [
  '-c, --config <file>',
  'configuration file',
  DEFAULT_CONFIG_FILE,
] as const;

/** A mistake in how a command was called; printed without a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Runs a subcommand's action; the errors an operator can act on are printed as one line and set
 * the exit code (see the top of this file). Anything else is a bug and keeps its stack.
 */
export async function runCliAction(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (
      error instanceof UsageError ||
      error instanceof PolicyLoadError ||
      (error instanceof OperationError && error.code === 'OPERATION_INVALID')
    ) {
      process.stderr.write(`warden: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    // Store, audit, approval, issuer and other operation errors: a "no" or an unavailable store.
    if (error instanceof LocalError) {
      process.stderr.write(`warden: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (error instanceof WardenError) {
      // Its message is the summary a client would see; the cause says what failed underneath.
      process.stderr.write(`warden: ${describeError(error)}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

/** Commander's own usage errors (a missing required option, say) exit 2, as ours do. */
export function exitWithUsageCode(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : 2);
}

/** An error's message, and its cause's when it has one. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}

/**
 * Reads the config file, opens an operator session on its store (see gateway/operator-session.ts),
 * runs `work`, and closes the session whatever happens.
 */
export async function withSession<T>(
  configOrFile: Config | string,
  work: (session: OperatorSession) => Promise<T>,
): Promise<T> {
  const config = typeof configOrFile === 'string' ? loadConfigFile(configOrFile) : configOrFile;
  // Loaded here, not at start-up: `warden --help` or `policy validate` never open a store.
  const { withOperatorSession } = await import('../gateway/operator-session.js');
  return withOperatorSession(config, work, {
    onError: (error, message) =>
      process.stderr.write(`warden: ${message}: ${describeError(error)}\n`),
  });
}

/** Who is running the command (the OS user), for `--by` defaults and the audit trail. */
export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
