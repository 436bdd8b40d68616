// Runs the official MCP conformance CLI (@modelcontextprotocol/conformance) against a server
// URL and reads back the per-scenario checks it writes.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

export interface ConformanceIssue {
  /** The check's id, e.g. `server-sse-priming-event`. */
  readonly id: string;
  readonly errorMessage: string;
}

/**
 * One scenario's outcome. `passed` means no check reported FAILURE — the same rule as the
 * CLI's exit status. WARNING checks (a SHOULD left unmet, e.g. no SSE priming event) do not
 * fail a scenario; they are listed in `warnings` so a caller can hold a stricter line, as
 * the direct fixture test does by requiring none.
 */
export interface ScenarioResult {
  readonly scenario: string;
  readonly passed: boolean;
  /** How many of its checks reported SUCCESS (the CLI's "passed" count). */
  readonly successes: number;
  readonly failures: readonly ConformanceIssue[];
  readonly warnings: readonly ConformanceIssue[];
}

/**
 * The protocol revision a run targets (`--spec-version`): the CLI picks the scenarios that
 * apply to it and speaks its wire, the sessionful handshake or the stateless `_meta` envelope.
 */
export type ConformanceSpecVersion = '2025-11-25' | '2026-07-28';

export interface ConformanceRunOptions {
  readonly specVersion: ConformanceSpecVersion;
  /** Scenarios to run; if omitted, every server scenario of the revision (`--suite all`). */
  readonly scenarios?: readonly string[];
  /** Upper bound for the whole run; scenarios unfinished by then count as failed. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_TAIL_CHARS = 4000;

const requireFromHere = createRequire(import.meta.url);
const CLI_PATH = requireFromHere.resolve('@modelcontextprotocol/conformance/dist/index.js');
// Node 20 lacks fs.globSync, which the CLI imports; this loader supplies it.
const SHIM_URL = new URL('./conformance-shim/register.mjs', import.meta.url).href;

const checksSchema = z.array(
  z.looseObject({
    id: z.string(),
    description: z.string().optional(),
    status: z.string(),
    errorMessage: z.string().optional(),
  }),
);

/** Names of every server scenario the CLI runs for a revision, in its order (`list --server`). */
export async function listServerScenarios(
  specVersion: ConformanceSpecVersion,
  timeoutMs = 30_000,
): Promise<string[]> {
  const run = await runCli(
    ['list', '--server', '--spec-version', specVersion],
    tmpdir(),
    Date.now() + timeoutMs,
  );
  if (run.exitCode !== 0) {
    throw new Error(`conformance list failed (${describeExit(run)}):\n${run.stderr}`);
  }
  return run.stdout
    .split('\n')
    .map((line) => /^\s+-\s+(\S+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

/**
 * Runs the conformance CLI's server scenarios against `url` in a temporary directory and
 * returns one result per requested scenario, keyed by scenario name. A scenario that left no
 * checks (CLI crash, timeout) is reported as failed, with the CLI's output in the message.
 */
export async function runConformanceServerSuite(
  url: string,
  options: ConformanceRunOptions,
): Promise<Map<string, ScenarioResult>> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const workDir = await mkdtemp(join(tmpdir(), 'warden-conformance-'));
  const outputDir = join(workDir, 'results');
  try {
    const expected = options.scenarios ?? (await listServerScenarios(options.specVersion));
    // One CLI process for the whole suite is much cheaper than one per scenario.
    const runs: Array<{ args: string[]; scenarios: readonly string[] }> =
      options.scenarios === undefined
        ? [{ args: ['--suite', 'all'], scenarios: expected }]
        : expected.map((name) => ({ args: ['--scenario', name], scenarios: [name] }));

    const results = new Map<string, ScenarioResult>();
    for (const { args, scenarios } of runs) {
      const run =
        Date.now() < deadline
          ? await runCli(
              [
                'server',
                '--url',
                url,
                '--spec-version',
                options.specVersion,
                '--output-dir',
                outputDir,
                ...args,
              ],
              workDir,
              deadline,
            )
          : undefined;
      const found = await readScenarioChecks(outputDir);
      for (const scenario of scenarios) {
        const checks = found.get(scenario);
        results.set(
          scenario,
          checks === undefined ? missingResult(scenario, run) : summarise(scenario, checks),
        );
      }
    }
    return results;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * A failure message listing, per scenario, the issues of the given kinds (scenarios without
 * any are left out).
 */
export function describeIssues(
  results: Iterable<ScenarioResult>,
  kinds: ReadonlyArray<'failures' | 'warnings'> = ['failures', 'warnings'],
): string {
  return [...results]
    .map((result) => ({ result, issues: kinds.flatMap((kind) => result[kind]) }))
    .filter(({ issues }) => issues.length > 0)
    .map(
      ({ result, issues }) =>
        `${result.scenario}:\n` +
        issues.map((issue) => `  - ${issue.id}: ${issue.errorMessage}`).join('\n'),
    )
    .join('\n');
}

type Check = z.infer<typeof checksSchema>[number];

function summarise(scenario: string, checks: readonly Check[]): ScenarioResult {
  const issues = (status: string): ConformanceIssue[] =>
    checks
      .filter((check) => check.status === status)
      .map((check) => ({
        id: check.id,
        errorMessage: check.errorMessage ?? check.description ?? '(no message)',
      }));
  const failures = issues('FAILURE');
  return {
    scenario,
    passed: failures.length === 0,
    successes: checks.filter((check) => check.status === 'SUCCESS').length,
    failures,
    warnings: issues('WARNING'),
  };
}

function missingResult(scenario: string, run: CliRun | undefined): ScenarioResult {
  const why =
    run === undefined
      ? 'not run: the time budget was spent before it started'
      : `no checks.json written (${describeExit(run)})\n--- stdout (end) ---\n${run.stdout.slice(-OUTPUT_TAIL_CHARS)}\n--- stderr (end) ---\n${run.stderr}`;
  return {
    scenario,
    passed: false,
    successes: 0,
    failures: [{ id: 'scenario-missing', errorMessage: why }],
    warnings: [],
  };
}

// The CLI writes <output-dir>/server-<scenario>-<ISO time with ':' and '.' as '-'>/checks.json.
const RESULT_DIR = /^server-(.+)-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z)$/;

async function readScenarioChecks(outputDir: string): Promise<Map<string, Check[]>> {
  const found = new Map<string, Check[]>();
  let entries: string[];
  try {
    entries = (await readdir(outputDir)).sort();
  } catch {
    return found;
  }
  for (const entry of entries) {
    const scenario = RESULT_DIR.exec(entry)?.[1];
    if (scenario === undefined) continue;
    try {
      const raw: unknown = JSON.parse(
        await readFile(join(outputDir, entry, 'checks.json'), 'utf8'),
      );
      found.set(scenario, checksSchema.parse(raw));
    } catch {
      // A directory without readable checks counts as missing.
    }
  }
  return found;
}

interface CliRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** All of stdout (`list` is parsed from it). */
  readonly stdout: string;
  /** The last OUTPUT_TAIL_CHARS of stderr. */
  readonly stderr: string;
}

function describeExit(run: CliRun): string {
  if (run.timedOut) return 'timed out and was killed';
  return run.signal !== null ? `killed by ${run.signal}` : `exit code ${run.exitCode}`;
}

async function runCli(args: readonly string[], cwd: string, deadline: number): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', SHIM_URL, CLI_PATH, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-OUTPUT_TAIL_CHARS);
  });
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      child.kill('SIGKILL');
    },
    Math.max(0, deadline - Date.now()),
  );
  try {
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
      (resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code, sig) => resolve([code, sig]));
      },
    );
    return { exitCode, signal, timedOut, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}
