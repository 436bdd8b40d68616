/**
 * `warden keys rotate|list --config FILE`: the built-in issuer's signing keys, in the store the
 * gateway uses. A running gateway picks a rotation up within seconds; tokens signed by the
 * previous key keep verifying until they expire.
 */
import { recordOnce } from '../audit/record-once.js';
import type { Command } from 'commander';
import type { BuiltinIssuerConfig, Config } from '../config/config.js';
import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../domain/errors.js';
import {
  createBuiltinKeyring,
  findBuiltinIssuerConfig,
  IssuerError,
} from '../identity/builtin-issuer.js';
import type { SigningKeyring } from '../identity/signing-keys.js';
import { StoreError } from '../store/errors.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/types.js';

const CONFIG_OPTION = ['-c, --config <file>', 'configuration file', 'warden.yaml'] as const;

export function registerKeysCommand(program: Command): void {
  const keys = program
    .command('keys')
    .description("manage the built-in token issuer's signing keys");

  keys
    .command('rotate')
    .description(
      'make a new signing key active; the previous ones stay published until their tokens expire',
    )
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        await withBuiltinKeyring(config, async ({ keyring, store }) => {
          const { kid } = await keyring.rotate();
          await recordOnce(store.audit, {
            event: 'key.rotated',
            time: new Date().toISOString(),
            environment: config.environment,
            details: { kid, scheduled: false, by: 'warden keys rotate' },
          });
          const rotated = (await keyring.listKeys()).filter((key) => key.state === 'rotated');
          const until = Math.max(0, ...rotated.map((key) => key.retireAt ?? 0));
          process.stdout.write(`new signing key ${kid} is active\n`);
          if (until > 0)
            process.stdout.write(`previous keys stay published until ${formatTime(until)}\n`);
        });
      }),
    );

  keys
    .command('list')
    .description('list the signing keys with their state (never their private parts)')
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        await withBuiltinKeyring(config, async ({ keyring }) => {
          const rows = (await keyring.listKeys()).map((key) => [
            key.kid,
            key.algorithm,
            key.state,
            formatTime(key.createdAt),
            formatTime(key.rotatedAt),
            formatTime(key.retireAt),
          ]);
          if (rows.length === 0) {
            process.stdout.write('no signing keys yet: the first is made when a token is issued\n');
            return;
          }
          process.stdout.write(
            formatTable([['KID', 'ALG', 'STATE', 'CREATED', 'ROTATED', 'RETIRES'], ...rows]),
          );
        });
      }),
    );
}

export interface BuiltinIssuerContext {
  readonly issuerConfig: BuiltinIssuerConfig;
  readonly store: Store;
  readonly keyring: SigningKeyring;
}

/** Opens the configured store for the built-in issuer, runs `work`, and closes the store. */
export async function withBuiltinKeyring(
  config: Config,
  work: (context: BuiltinIssuerContext) => Promise<void>,
): Promise<void> {
  const issuerConfig = findBuiltinIssuerConfig(config.auth);
  if (!issuerConfig)
    throw new ConfigError(config.source, [
      'auth.issuers: no built-in issuer is configured (add `- builtin: {}`)',
    ]);
  await withStore(config, (store) =>
    work({
      issuerConfig,
      store,
      keyring: createBuiltinKeyring({
        repository: store.signingKeys,
        config: issuerConfig,
        auth: config.auth,
      }),
    }),
  );
}

/** Opens the configured store, runs `work`, and closes the store whatever happens. */
export async function withStore(
  config: Config,
  work: (store: Store) => Promise<void>,
): Promise<void> {
  const store = await openStore(config.store);
  try {
    await work(store);
  } finally {
    await store.close();
  }
}

/** A mistake in how a command was called; printed without a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Runs a subcommand's action; the errors an operator can act on are printed as one line and set
 * the exit code (2 for configuration, 1 otherwise). Anything else is a bug and keeps its stack.
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
      error instanceof IssuerError ||
      error instanceof StoreError
    ) {
      process.stderr.write(`warden: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

function formatTime(epochMs: number | undefined): string {
  return epochMs === undefined ? '-' : new Date(epochMs).toISOString();
}

function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? '').length)),
  );
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths?.[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}
