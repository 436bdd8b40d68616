/**
 * `warden config validate`: checks the whole configuration file, not only its policy: every
 * section's keys and values and the references between them, the policy they compile to, and
 * what the file names outside itself (TLS files, upstream credentials, webhook signing keys).
 * Every problem is printed (exit 2); a valid file prints a one-line summary (exit 0).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createApprovalNotifier } from '../approvals/approval-notifier.js';
import type { Config } from '../config/config.js';
import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../domain/errors.js';
import { buildTlsServerOptions } from '../identity/tls-options.js';
import { PolicyLoadError } from '../policy/policy-load-error.js';
import { CONFIG_OPTION, exitWithUsageCode, runCliAction } from './operator.js';

export function registerConfigCommand(program: Command): void {
  const config = program
    .command('config')
    .description('check the configuration file')
    .exitOverride(exitWithUsageCode);

  config
    .command('validate')
    .description(
      'check every section of the file, the policy it compiles to, and the files and environment variables it names; print every problem (exit 2)',
    )
    .option(...CONFIG_OPTION)
    .action((options: { config: string }) =>
      runCliAction(async () => {
        // A file that does not load is reported as the loader found it: every key at fault.
        const loaded = loadConfigFile(options.config);
        const problems = await findProblems(loaded);
        if (problems.length > 0) throw new ConfigError(options.config, problems);
        process.stdout.write(`${options.config}: ok (${describeConfig(loaded)})\n`);
      }),
    );
}

/** What would stop this (well-formed) config from serving, each problem naming its key. */
async function findProblems(config: Config): Promise<string[]> {
  return [
    ...(await policyProblems(config)),
    ...problemsOf(
      () => config.listen.tls !== undefined && buildTlsServerOptions(config.listen.tls),
    ),
    // Built only to check its settings (signing keys in the environment); it delivers nothing.
    ...problemsOf(() =>
      createApprovalNotifier({ webhooks: config.approvals.webhooks, onError: () => undefined }),
    ),
    ...credentialProblems(config),
  ];
}

async function policyProblems(config: Config): Promise<readonly string[]> {
  try {
    const { createPolicyEngine } = await import('../policy/policy-engine.js');
    createPolicyEngine(config.policy);
    return [];
  } catch (error) {
    if (error instanceof PolicyLoadError) return error.problems;
    throw error;
  }
}

/** The issues of the ConfigError `check` throws, if it does. */
function problemsOf(check: () => unknown): readonly string[] {
  try {
    check();
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
}

/** Warden's own upstream credentials: each environment variable set, each file readable. */
function credentialProblems(config: Config): string[] {
  const problems: string[] = [];
  for (const upstream of config.upstreams.values()) {
    const source = upstream.kind === 'http' ? upstream.credential?.source : undefined;
    const key = `upstreams.${upstream.name}.credential`;
    if (source?.kind === 'env' && !process.env[source.name]?.trim()) {
      problems.push(`${key}.env: the environment variable ${source.name} is not set`);
    }
    if (source?.kind === 'file') {
      try {
        if (readFileSync(source.path, 'utf8').trim() === '') {
          problems.push(`${key}.file: ${source.path} is empty`);
        }
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? String(error);
        problems.push(`${key}.file: cannot read ${source.path} (${code})`);
      }
    }
  }
  return problems;
}

function describeConfig(config: Config): string {
  const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
  return [
    count(config.upstreams.size, 'upstream'),
    count(config.agents.size, 'agent'),
    count(config.policy.roles.size, 'role'),
    count(config.approvals.approvers.size, 'approver'),
  ].join(', ');
}
