/**
 * `warden policy push FILE` and `warden policy status`: store a new version of the policy and
 * agents for every replica with `policy_source: store`, and show which version each replica runs.
 * The operations (policy/push-policy-bundle.ts, policy/read-policy-status.ts) check, write and
 * record; this file parses, calls and prints.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { toTerminalText } from '../audit/terminal-text.js';
import { formatDuration } from '../config/duration.js';
import { loadConfigFile } from '../config/load.js';
import type { PolicyStatus } from '../policy/read-policy-status.js';
import { formatTable } from './format-table.js';
import { CONFIG_OPTION, currentUser, runCliAction, UsageError, withSession } from './operator.js';

export function registerPolicyBundleCommands(policy: Command): void {
  policy
    .command('push')
    .description(
      'store FILE (a warden.yaml, or just its policy sections and agents) as the newest policy bundle; replicas with policy_source: store apply it within 2 s',
    )
    .argument('<file>', 'YAML holding the policy sections (roles, scopes, …) and agents')
    .option(...CONFIG_OPTION)
    .action((file: string, options: { config: string }) =>
      runCliAction(async () => {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (error) {
          throw new UsageError(
            `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          );
        }
        const config = loadConfigFile(options.config);
        const pushed = await withSession(config, (session) =>
          session.policy.pushPolicyBundle({
            text,
            file,
            by: `${currentUser()}@${hostname()}`,
          }),
        );
        const { bundle } = pushed;
        if (pushed.ignored.length > 0) {
          process.stdout.write(`not part of a bundle, left out: ${pushed.ignored.join(', ')}\n`);
        }
        process.stdout.write(
          pushed.created
            ? `pushed policy bundle #${bundle.id}, version ${bundle.policyVersion.slice(0, 12)}\n`
            : `unchanged: the newest bundle #${bundle.id} (pushed ${new Date(bundle.pushedAt).toISOString()} by ${toTerminalText(bundle.pushedBy)}) holds this content already; nothing was stored\n`,
        );
        if (config.policy.source !== 'store') {
          process.stdout.write(
            `note: ${config.source} has no policy_source: store, so replicas started from it do not apply pushed bundles\n`,
          );
        }
      }),
    );

  policy
    .command('status')
    .description(
      'each replica with the policy version it runs, the pushed bundles, and where live replicas disagree (exit 1)',
    )
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        const status = await withSession(options.config, (session) =>
          session.policy.readPolicyStatus(),
        );
        process.stdout.write(describePolicyStatus(status));
        process.exitCode = status.problems.length > 0 ? 1 : 0;
      }),
    );
}

function describePolicyStatus(status: PolicyStatus): string {
  const replicas =
    status.replicas.length === 0
      ? 'no replica has run on this store\n'
      : formatTable(
          [
            ['REPLICA', 'ALIVE', 'POLICY VERSION', 'BUNDLE', 'CONFIG', 'LAST SEEN'],
            ...status.replicas.map((replica) => [
              replica.id,
              replica.alive ? 'yes' : 'no',
              replica.policyVersion.slice(0, 12),
              replica.bundle === undefined ? '-' : `#${replica.bundle}`,
              replica.configDigest.slice(0, 12),
              `${formatDuration(replica.seenMsAgo)} ago`,
            ]),
          ].map((row) => row.map(toTerminalText)),
        );
  const bundles =
    status.bundles.length === 0
      ? 'no policy bundle has been pushed\n'
      : formatTable(
          [
            ['BUNDLE', 'POLICY VERSION', 'CONTENT', 'PUSHED', 'BY'],
            ...status.bundles.map((bundle) => [
              `#${bundle.id}`,
              bundle.policyVersion.slice(0, 12),
              bundle.contentHash.slice(0, 12),
              new Date(bundle.pushedAt).toISOString(),
              bundle.pushedBy,
            ]),
          ].map((row) => row.map(toTerminalText)),
        );
  const verdict =
    status.problems.length === 0
      ? 'live replicas agree\n'
      : status.problems.map((problem) => `PROBLEM: ${problem}\n`).join('');
  return `${replicas}\n${bundles}\n${verdict}`;
}
