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
import { createBuiltinKeyring, findBuiltinIssuerConfig } from '../identity/builtin-issuer.js';
import type { SigningKeyring } from '../identity/signing-keys.js';
import type { Store } from '../store/types.js';
import { formatTable } from './format-table.js';
import { CONFIG_OPTION, runCliAction, withStore } from './operator.js';

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

function formatTime(epochMs: number | undefined): string {
  return epochMs === undefined ? '-' : new Date(epochMs).toISOString();
}
