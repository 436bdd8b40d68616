/**
 * `warden keys rotate|list --config FILE`: the built-in issuer's signing keys, in the store the
 * gateway uses. A running gateway picks a rotation up within seconds; tokens signed by the
 * previous key keep verifying until they expire.
 */
import type { Command } from 'commander';
import { formatTable } from './format-table.js';
import { CONFIG_OPTION, currentUser, runCliAction, withSession } from './operator.js';

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
        const rotation = await withSession(options.config, (session) =>
          session.identity.rotateSigningKeys({ by: `cli:${currentUser()}` }),
        );
        process.stdout.write(`new signing key ${rotation.kid} is active\n`);
        if (rotation.previousKeysUntil !== undefined) {
          process.stdout.write(
            `previous keys stay published until ${formatTime(rotation.previousKeysUntil)}\n`,
          );
        }
      }),
    );

  keys
    .command('list')
    .description('list the signing keys with their state (never their private parts)')
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        const keys = await withSession(options.config, (session) =>
          session.identity.listSigningKeys(),
        );
        if (keys.length === 0) {
          process.stdout.write('no signing keys yet: the first is made when a token is issued\n');
          return;
        }
        const rows = keys.map((key) => [
          key.kid,
          key.algorithm,
          key.state,
          formatTime(key.createdAt),
          formatTime(key.rotatedAt),
          formatTime(key.retireAt),
        ]);
        process.stdout.write(
          formatTable([['KID', 'ALG', 'STATE', 'CREATED', 'ROTATED', 'RETIRES'], ...rows]),
        );
      }),
    );
}

function formatTime(epochMs: number | undefined): string {
  return epochMs === undefined ? '-' : new Date(epochMs).toISOString();
}
