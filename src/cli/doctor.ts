/**
 * `warden doctor --config FILE [--json] [--compare OTHER.yaml] [--url URL]`: checks the
 * configuration, the store and a running gateway against the seed's rollout stages and common
 * mistakes (the checks are in governance/doctor). Exit codes: 0 clean, 1 a warning or worse,
 * 2 could not check (the config does not load, the store or the gateway cannot be reached).
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { loadConfigFile } from '../config/load.js';
import type { GatewayFacts, HostFacts, StoreFacts } from '../governance/doctor/finding.js';
import { gatherStoreFacts } from '../governance/doctor/gather-store-facts.js';
import { sqliteFile } from '../governance/doctor/judge-paths.js';
import { doctorExitCode, runDoctor } from '../governance/doctor/run-doctor.js';
import { formatDoctorReport } from './doctor-report-text.js';
import { CONFIG_OPTION, describeError, withSession } from './operator.js';

interface DoctorOptions {
  readonly config: string;
  readonly json?: boolean;
  readonly compare?: string;
  readonly url?: string;
  readonly days: string;
  readonly store: boolean;
}

/** Something doctor needed could not be read: the verdict would be a guess. */
class CouldNotCheck extends Error {}

const GATEWAY_TIMEOUT_MS = 5000;

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'check the configuration, store and gateway against the rollout stages and common mistakes',
    )
    .option(...CONFIG_OPTION)
    .option('--json', 'print the findings as JSON')
    .option('--compare <file>', "another environment's configuration, to find shared credentials")
    .option('--url <url>', "a running gateway's base URL, to ask /readyz")
    .option('--days <n>', 'the window for "records in the last N days"', '30')
    .option('--no-store', 'check the configuration only, without opening the store')
    .action((options: DoctorOptions) => runDoctorCommand(options));
}

async function runDoctorCommand(options: DoctorOptions): Promise<void> {
  try {
    const windowDays = parseDays(options.days);
    const config = loadForDoctor(options.config);
    const other = options.compare === undefined ? undefined : loadForDoctor(options.compare);
    const now = Date.now();
    const store = options.store ? await readStoreFacts(config, now, windowDays) : undefined;
    const gateway = options.url === undefined ? undefined : await askGateway(options.url);
    const report = runDoctor({
      config,
      now,
      windowDays,
      host: readHostFacts(config),
      store,
      gateway,
      other,
    });
    const exitCode = doctorExitCode(report);
    process.stdout.write(
      options.json === true
        ? `${JSON.stringify({ ...report, exitCode }, null, 2)}\n`
        : formatDoctorReport(report),
    );
    process.exitCode = exitCode;
  } catch (error) {
    const message = error instanceof CouldNotCheck ? error.message : describeError(error);
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify({ error: message, exitCode: 2 }, null, 2)}\n`);
    } else {
      process.stderr.write(`warden doctor: could not check: ${message}\n`);
    }
    process.exitCode = 2;
  }
}

function parseDays(text: string): number {
  const days = Number(text);
  if (!Number.isInteger(days) || days < 1)
    throw new CouldNotCheck(`--days ${text}: expected a whole number of days, 1 or more`);
  return days;
}

function loadForDoctor(file: string): Config {
  try {
    return loadConfigFile(file);
  } catch (error) {
    throw new CouldNotCheck(describeError(error));
  }
}

function readHostFacts(config: Config): HostFacts {
  return {
    temporaryDirs: [...new Set([tmpdir(), '/tmp', '/var/tmp', '/dev/shm'])],
    hashKeyFileExists: existsSync(config.audit.hashKeyFile),
  };
}

async function readStoreFacts(
  config: Config,
  now: number,
  windowDays: number,
): Promise<StoreFacts> {
  // Opening a SQLite store that is not there would create an empty one: say so instead.
  const file = sqliteFile(config.store);
  if (file !== undefined && !existsSync(file)) {
    throw new CouldNotCheck(
      `the store ${file} does not exist (run the gateway once, or pass --no-store)`,
    );
  }
  const hasBuiltinIssuer = config.auth.issuers.some((issuer) => issuer.kind === 'builtin');
  try {
    return await withSession(config, (session) =>
      gatherStoreFacts(
        {
          listSigningKeys: hasBuiltinIssuer ? () => session.identity.listSigningKeys() : undefined,
          listApprovals: () => session.approvals.list(),
          hasAuditRecords: async (query) =>
            (await session.audit.query({ ...query, limit: 1 })).length > 0,
        },
        now,
        windowDays,
      ),
    );
  } catch (error) {
    throw new CouldNotCheck(`the store cannot be read: ${describeError(error)}`);
  }
}

async function askGateway(url: string): Promise<GatewayFacts> {
  const base = url.replace(/\/+$/, '');
  try {
    const response = await fetch(`${base}/readyz`, {
      signal: AbortSignal.timeout(GATEWAY_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return { url: base, readyStatus: response.status };
  } catch (error) {
    throw new CouldNotCheck(`the gateway at ${base} cannot be reached: ${describeError(error)}`);
  }
}
