/**
 * `warden token issue|revoke --config FILE`: mint a token from the built-in issuer for a
 * registered agent (e.g. for a script or a test), or revoke tokens by id, agent or user.
 */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { RevocationKind } from '../identity/revoke-credential.js';
import { CONFIG_OPTION, currentUser, runCliAction, UsageError, withSession } from './operator.js';

interface IssueOptions {
  readonly config: string;
  readonly agent: string;
  readonly user?: string;
  readonly ttl?: string;
  readonly scope: readonly string[];
}

interface RevokeOptions {
  readonly config: string;
  readonly jti?: string;
  readonly agent?: string;
  readonly user?: string;
  readonly reason: string;
}

export function registerTokenCommand(program: Command): void {
  const token = program.command('token').description('issue and revoke access tokens');

  token
    .command('issue')
    .description('print an access token from the built-in issuer for a registered agent')
    .option(...CONFIG_OPTION)
    .requiredOption('--agent <id>', 'the agent (from `agents:` in the config)')
    .option('--user <id>', 'the user on whose behalf the agent acts (token sub)')
    .option('--ttl <duration>', 'lifetime, e.g. 15m (at most the issuer max_ttl)')
    .option(
      '--scope <scopes>',
      'scopes, space-separated; may repeat; each one of auth.required_scopes or agents.<id>.scopes',
      collectScopes,
      [],
    )
    .action((options: IssueOptions) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        const agent = config.agents.get(options.agent);
        if (!agent)
          throw new UsageError(
            `agent "${options.agent}" is not in the agent registry of ${config.source}`,
          );
        const ttlMs = options.ttl === undefined ? undefined : parseDuration(options.ttl);
        if (ttlMs === undefined && options.ttl !== undefined)
          throw new UsageError(`--ttl "${options.ttl}" is not a duration (e.g. 30s, 15m, 1h)`);

        const issued = await withSession(config, (session) =>
          session.identity.issueToken({
            agent,
            ...(options.user !== undefined && { user: options.user }),
            ...(ttlMs !== undefined && { ttlMs }),
            ...(options.scope.length > 0 && { scopes: options.scope }),
          }),
        );
        // The token alone on stdout, so `TOKEN=$(warden token issue …)` works.
        process.stdout.write(`${issued.token}\n`);
        process.stderr.write(
          `token ${issued.tokenId} for ${agent.id} expires ${new Date(issued.expiresAt).toISOString()}\n`,
        );
      }),
    );

  token
    .command('revoke')
    .description(
      'revoke one token (--jti), or every token issued so far to an agent or a user; to shut an agent out for good, remove it from the config',
    )
    .option(...CONFIG_OPTION)
    .option('--jti <id>', 'the token id')
    .option('--agent <id>', 'every token of this agent issued until now')
    .option('--user <id>', 'every token for this user issued until now')
    .option('--reason <text>', 'why, for the audit trail', 'revoked with warden token revoke')
    .action((options: RevokeOptions) =>
      runCliAction(async () => {
        const target = chooseRevocationTarget(options);
        await withSession(options.config, (session) =>
          session.identity.revokeCredential({
            ...target,
            reason: options.reason,
            by: `cli:${currentUser()}`,
          }),
        );
        process.stdout.write(`revoked ${target.kind} ${target.subject}\n`);
      }),
    );
}

function collectScopes(value: string, previous: readonly string[]): string[] {
  return [...previous, ...value.split(/\s+/).filter((scope) => scope !== '')];
}

function chooseRevocationTarget(options: RevokeOptions): {
  kind: RevocationKind;
  subject: string;
} {
  const targets = (
    [
      ['token', options.jti],
      ['agent', options.agent],
      ['user', options.user],
    ] as const
  ).filter((entry): entry is readonly [(typeof entry)[0], string] => entry[1] !== undefined);
  const [target] = targets;
  if (targets.length !== 1 || !target || target[1] === '')
    throw new UsageError('name exactly one of --jti, --agent or --user');
  return { kind: target[0], subject: target[1] };
}
