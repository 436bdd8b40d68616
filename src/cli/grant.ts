/**
 * `warden grant break-glass|list|revoke`: emergency access to one tool for one agent. A
 * break-glass grant always has a reason and an expiry no later than policy.breakglass_max_ttl;
 * creating and revoking one is recorded in the audit log (`grant.changed`), and every use raises
 * an alert at the gateway (`breakglass.used`). Exit 2 on a usage mistake, 1 when there was no
 * such grant to revoke.
 */
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../config/duration.js';
import { formatTable } from './format-table.js';
import {
  CONFIG_OPTION,
  currentUser,
  exitWithUsageCode,
  runCliAction,
  UsageError,
  withSession,
} from './operator.js';

interface BreakGlassOptions {
  readonly config: string;
  readonly agent: string;
  readonly tool: string;
  readonly ttl: string;
  readonly reason: string;
  readonly by?: string;
}

interface RevokeOptions {
  readonly config: string;
  readonly reason?: string;
  readonly by?: string;
}

export function registerGrantCommand(program: Command): void {
  const grant = program
    .command('grant')
    .description('break-glass grants: short, audited emergency access to one tool')
    .exitOverride(exitWithUsageCode);

  grant
    .command('break-glass')
    .description('let one agent call one tool until the grant expires; every use raises an alert')
    .option(...CONFIG_OPTION)
    .requiredOption('--agent <id>', 'the agent (from `agents:`)')
    .requiredOption('--tool <upstream.tool>', 'the one tool it may call')
    .requiredOption('--ttl <duration>', 'how long, e.g. 1h (at most policy.breakglass_max_ttl)')
    .requiredOption('--reason <text>', 'why, for the audit trail')
    .option('--by <name>', 'who (default: the OS user)')
    .action((options: BreakGlassOptions) => runCliAction(() => breakGlassCommand(options)));

  grant
    .command('list')
    .description('the break-glass grants in force')
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        const active = await withSession(options.config, (session) =>
          session.policy.listBreakGlassGrants(),
        );
        if (active.length === 0) {
          process.stdout.write('no break-glass grants in force\n');
          return;
        }
        const rows = active.map((entry) => [
          entry.id,
          entry.agent,
          entry.tool,
          new Date(entry.expiresAt).toISOString(),
          entry.createdBy,
          entry.reason,
        ]);
        process.stdout.write(
          formatTable([['ID', 'AGENT', 'TOOL', 'EXPIRES', 'BY', 'REASON'], ...rows]),
        );
      }),
    );

  grant
    .command('revoke')
    .description('end a break-glass grant now (exit 1 when none with that id is in force)')
    .argument('<id>', 'the grant id (from `warden grant list`)')
    .option(...CONFIG_OPTION)
    .option('--reason <text>', 'why, for the audit trail')
    .option('--by <name>', 'who (default: the OS user)')
    .action((id: string, options: RevokeOptions) => runCliAction(() => revokeCommand(id, options)));
}

async function breakGlassCommand(options: BreakGlassOptions): Promise<void> {
  const ttlMs = parseDuration(options.ttl);
  if (ttlMs === undefined || ttlMs <= 0) {
    throw new UsageError(`--ttl "${options.ttl}" is not a duration (e.g. 30m, 1h)`);
  }
  const grant = await withSession(options.config, (session) =>
    session.policy.grantBreakGlass({
      agent: options.agent,
      tool: options.tool,
      ttlMs,
      reason: options.reason,
      by: options.by ?? currentUser(),
    }),
  );
  const expires = new Date(grant.expiresAt).toISOString();
  process.stdout.write(
    `break-glass grant ${grant.id}: ${grant.agent} may call ${grant.tool} until ${expires} (${formatDuration(ttlMs)})\n`,
  );
  process.stderr.write(
    `every use raises an alert; end it early with: warden grant revoke ${grant.id}\n`,
  );
}

async function revokeCommand(id: string, options: RevokeOptions): Promise<void> {
  const grant = await withSession(options.config, (session) =>
    session.policy.revokeBreakGlass({
      id,
      ...(options.reason !== undefined && { reason: options.reason }),
      by: options.by ?? currentUser(),
    }),
  );
  process.stdout.write(`revoked break-glass grant ${id} (${grant.agent} → ${grant.tool})\n`);
}
