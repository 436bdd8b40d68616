/**
 * `warden grant break-glass|list|revoke`: emergency access to one tool for one agent. A
 * break-glass grant always has a reason and an expiry no later than policy.breakglass_max_ttl;
 * creating and revoking one is recorded in the audit log (`grant.changed`), and every use raises
 * an alert at the gateway (`breakglass.used`). Exit 2 on a usage mistake, 1 when there was no
 * such grant to revoke.
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { recordOnce } from '../audit/record-once.js';
import { parseDuration } from '../config/duration.js';
import { loadConfigFile } from '../config/load.js';
import type { BreakGlassGrant } from '../store/types.js';
import { formatTable } from './format-table.js';
import {
  CONFIG_OPTION,
  currentUser,
  exitWithUsageCode,
  runCliAction,
  UsageError,
  withStore,
} from './operator.js';
import { formatDuration, parseTarget } from './policy.js';

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
        const config = loadConfigFile(options.config);
        await withStore(config, async (store) => {
          const active = await store.breakGlass.listActive(Date.now());
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
        });
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
  if (options.reason.trim() === '') throw new UsageError('--reason must say why');
  const config = loadConfigFile(options.config);
  const ttlMs = parseDuration(options.ttl);
  if (ttlMs === undefined || ttlMs <= 0) {
    throw new UsageError(`--ttl "${options.ttl}" is not a duration (e.g. 30m, 1h)`);
  }
  const maxMs = config.policy.breakglassMaxTtlMs;
  if (ttlMs > maxMs) {
    throw new UsageError(
      `--ttl ${options.ttl} is longer than policy.breakglass_max_ttl (${formatDuration(maxMs)}); a break-glass grant must be short`,
    );
  }
  const agent = config.agents.get(options.agent);
  if (agent === undefined) {
    throw new UsageError(
      `agent "${options.agent}" is not in the agent registry of ${config.source}`,
    );
  }
  const target = parseTarget('tool', options.tool, config);
  if (target.name.includes('*')) {
    throw new UsageError('a break-glass grant names one tool exactly, never a wildcard');
  }
  const by = options.by ?? currentUser();
  const createdAt = Date.now();
  const grant: BreakGlassGrant = {
    id: randomUUID(),
    agent: agent.id,
    tool: target.label,
    reason: options.reason,
    createdBy: by,
    createdAt,
    expiresAt: createdAt + ttlMs,
    revokedAt: undefined,
  };
  const expires = new Date(grant.expiresAt).toISOString();
  await withStore(config, async (store) => {
    await store.breakGlass.add(grant);
    await recordOnce(store.audit, {
      event: 'grant.changed',
      time: new Date(createdAt).toISOString(),
      environment: config.environment,
      agent: agent.id,
      upstream: target.upstream,
      tool: target.name,
      details: {
        kind: 'breakglass',
        id: grant.id,
        agent: grant.agent,
        tool: grant.tool,
        expiresAt: expires,
        reason: grant.reason,
        by,
      },
    });
  });
  process.stdout.write(
    `break-glass grant ${grant.id}: ${agent.id} may call ${grant.tool} until ${expires} (${formatDuration(ttlMs)})\n`,
  );
  process.stderr.write(
    `every use raises an alert; end it early with: warden grant revoke ${grant.id}\n`,
  );
}

async function revokeCommand(id: string, options: RevokeOptions): Promise<void> {
  const config = loadConfigFile(options.config);
  const by = options.by ?? currentUser();
  const at = Date.now();
  await withStore(config, async (store) => {
    const grant = (await store.breakGlass.listActive(at)).find((entry) => entry.id === id);
    if (grant === undefined || !(await store.breakGlass.revoke(id, at))) {
      process.stderr.write(`warden: no break-glass grant ${id} is in force\n`);
      process.exitCode = 1;
      return;
    }
    const dot = grant.tool.indexOf('.');
    await recordOnce(store.audit, {
      event: 'grant.changed',
      time: new Date(at).toISOString(),
      environment: config.environment,
      agent: grant.agent,
      upstream: grant.tool.slice(0, dot),
      tool: grant.tool.slice(dot + 1),
      details: {
        kind: 'breakglass',
        id,
        agent: grant.agent,
        tool: grant.tool,
        revoked: true,
        ...(options.reason !== undefined && { reason: options.reason }),
        by,
      },
    });
    process.stdout.write(`revoked break-glass grant ${id} (${grant.agent} → ${grant.tool})\n`);
  });
}
