/**
 * `npm run bench:replicas`: tools/call throughput and latency through one and through several
 * `warden serve` replicas on one PostgreSQL store, behind a round-robin balancer with no session
 * affinity, against calling the echo server directly, all measured in one run on this machine.
 *
 *   node --import tsx bench/replicas-bench.ts [--calls 2000] [--warmup 300] [--rounds 3]
 *     [--concurrency 1,8] [--replicas 3] [--postgres postgres://root@127.0.0.1:5432/test]
 *
 * Paths: `direct` (client → echo server), `balanced-1` (client → balancer → one replica → echo
 * server: the baseline) and `balanced-N` (client → balancer → N replicas → echo server). Every
 * replica is a `node dist/cli/main.js serve` process with its own audit stream and advertised
 * hop address (WARDEN_AUDIT_STREAM, WARDEN_ADVERTISE_URL) on one fresh PostgreSQL schema, dropped
 * afterwards; all N run throughout, so the baseline's idle replicas only heartbeat. The balancer
 * is the tests' (bench/balancer-process.ts), one copy per client session, so each request's
 * replica is known: a request that reached a replica other than its session's owner was relayed
 * over the signed hop, and the report gives that share.
 *
 * Clients are real SDK 1.x Clients over StreamableHTTPClientTransport, one client and session per
 * concurrent caller, each authenticated with a bearer token from `warden token issue`. Every path
 * first runs one untimed round; then each round measures every path in a rotating order, and a
 * row is the median of its rounds. CPU per call is read from /proc for the replicas, the balancer
 * and the echo server; "other load" is the CPU the rest of the machine used meanwhile, which on a
 * shared machine takes cores the measurement needed. Results go to bench/results/replicas.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import pg from 'pg';
import { findFreePort, waitForPort } from '../test/support/processes.js';
import { runLoad, type LoadResult } from './load.js';
import { readMachineCpuTimeMs } from './peers.js';

interface Settings {
  readonly calls: number;
  readonly warmupCalls: number;
  readonly rounds: number;
  readonly concurrencies: readonly number[];
  readonly replicas: number;
  readonly postgresUrl: string;
}

/** Where a path's clients connect, and which processes serve it. */
interface Path {
  readonly name: string;
  readonly summary: string;
  /** One URL per client slot: a balancer copy each, or the echo server for every slot. */
  readonly urls: readonly string[];
  readonly authorization: string | undefined;
  /** The processes whose CPU the path costs (gateway replicas, balancer, echo server). */
  readonly pids: readonly number[];
  /** Empties the balancer's routing log and returns it, one array per copy; none for direct. */
  readonly takeRouted: (() => Promise<number[][]>) | undefined;
}

interface Measurement extends LoadResult {
  readonly round: number;
  readonly path: string;
  /** Requests after initialize that reached another replica than their session's owner. */
  readonly hopped: number | undefined;
  readonly requestsAfterInitialize: number | undefined;
  /** CPU of the path's processes (replicas, balancer, echo server) per measured call, ms. */
  readonly serverCpuMsPerCall: number | undefined;
  readonly clientCpuMsPerCall: number;
  /** Cores' worth of CPU other processes on the machine used during the measurement. */
  readonly otherLoadCores: number | undefined;
}

interface Row {
  readonly path: string;
  readonly summary: string;
  readonly concurrency: number;
  readonly rounds: number;
  readonly callsPerSecond: number;
  readonly callsPerSecondMin: number;
  readonly callsPerSecondMax: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly hoppedShare: number | undefined;
  readonly serverCpuMsPerCall: number | undefined;
  readonly clientCpuMsPerCall: number;
  readonly otherLoadCoresMax: number | undefined;
  readonly failures: number;
}

const ECHO_TEXT = 'hello from the warden replicas benchmark';
const BENCH_AGENT = 'bench-agent';
const MAX_COUNT = 1_000_000;
const STARTUP_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 12_000;
const USER_HZ = 100;
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const ECHO_SERVER = fileURLToPath(new URL('echo-server.ts', import.meta.url));
/** `node --import tsx <file>`: the bench's TypeScript helpers run without a build step. */
const NODE_TS = ['--import', 'tsx'];
const BALANCER = fileURLToPath(new URL('balancer-process.ts', import.meta.url));
const RESULTS_FILE = fileURLToPath(new URL('results/replicas.json', import.meta.url));

const settings = readSettings();
const machine = {
  cpu: cpus()[0]?.model.trim() ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
};
const benchStarted = Date.now();
const directory = mkdtempSync(join(tmpdir(), 'warden-replicas-bench-'));
const schema = `warden_replicas_bench_${process.pid}`;
const admin = new pg.Client({ connectionString: settings.postgresUrl });
const children: Child[] = [];
const measurements: Measurement[] = [];
let paths: Path[] = [];

await admin.connect();
try {
  await admin.query(`CREATE SCHEMA "${schema}"`);
  paths = await startPaths();
  for (const path of paths) {
    for (const concurrency of settings.concurrencies) {
      process.stderr.write(`warm-up round ${describe(await measure(path, concurrency, 0))}\n`);
    }
  }
  for (let round = 1; round <= settings.rounds; round += 1) {
    const order = paths.map((_, i) => paths[(i + round) % paths.length]);
    for (const path of order) {
      if (!path) continue;
      for (const concurrency of settings.concurrencies) {
        const measured = await measure(path, concurrency, round);
        process.stderr.write(`round ${round}/${settings.rounds} ${describe(measured)}\n`);
        measurements.push(measured);
      }
    }
  }
} finally {
  // Replicas first: a replica that stops forgets its sessions in the store.
  for (const child of children.reverse()) await child.stop();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
  rmSync(directory, { recursive: true, force: true });
}

const rows = summarise(measurements);
const report = {
  date: new Date().toISOString(),
  machine,
  settings,
  durationSeconds: Math.round((Date.now() - benchStarted) / 1000),
  rows,
  measurements,
};
mkdirSync(fileURLToPath(new URL('results/', import.meta.url)), { recursive: true });
writeFileSync(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(renderMarkdown(rows));
process.stdout.write(
  `\nResults written to bench/results/replicas.json (whole run ${report.durationSeconds} s).\n`,
);
if (rows.some((row) => row.failures > 0)) process.exitCode = 1;

/**
 * Starts the echo server, the replicas on one schema, a balancer over the first replica and one
 * over all of them (a copy per client slot each), and issues the bench agent's token.
 */
async function startPaths(): Promise<Path[]> {
  const slots = Math.max(...settings.concurrencies);
  const echo = await startChild([...NODE_TS, ECHO_SERVER, 'http', '0']);
  const replicaPorts = await Promise.all(
    Array.from({ length: settings.replicas }, () => findFreePort()),
  );
  const replicaUrls = replicaPorts.map((port) => `http://127.0.0.1:${port}`);
  const one = await startBalancer(slots, replicaUrls.slice(0, 1));
  const all = await startBalancer(slots, replicaUrls);
  const config = join(directory, 'warden.yaml');
  writeFileSync(config, JSON.stringify(replicaConfig(echo.line, [...one.urls, ...all.urls])));
  const replicaPids: number[] = [];
  for (const [index, port] of replicaPorts.entries()) {
    // One at a time: the first creates the signing keys and the schema the others use.
    const replica = await startChild(
      [CLI, 'serve', '--config', config, '--port', String(port)],
      port,
      {
        WARDEN_AUDIT_STREAM: `bench-r${index + 1}`,
        WARDEN_ADVERTISE_URL: replicaUrls[index] ?? '',
      },
    );
    replicaPids.push(replica.pid);
  }
  const authorization = `Bearer ${await issueToken(config)}`;
  const echoPid = [echo.pid];
  return [
    {
      name: 'direct',
      summary: 'client → echo server (Streamable HTTP, SDK 1.x)',
      urls: [echo.line],
      authorization: undefined,
      pids: echoPid,
      takeRouted: undefined,
    },
    {
      name: 'balanced-1',
      summary: 'client → round-robin balancer → 1 Warden replica → echo server',
      urls: one.urls.map((url) => `${url}/mcp/bench`),
      authorization,
      pids: [replicaPids[0] ?? 0, one.pid, ...echoPid],
      takeRouted: one.takeRouted,
    },
    {
      name: `balanced-${settings.replicas}`,
      summary: `client → round-robin balancer → ${settings.replicas} Warden replicas (hop to the session's owner) → echo server`,
      urls: all.urls.map((url) => `${url}/mcp/bench`),
      authorization,
      pids: [...replicaPids, all.pid, ...echoPid],
      takeRouted: all.takeRouted,
    },
  ];
}

/** What every replica runs: the single-replica bench gateway (bench/warden-process.ts) on PostgreSQL. */
function replicaConfig(echoUrl: string, balancerUrls: readonly string[]): Record<string, unknown> {
  const storeUrl = `${settings.postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    // The port comes from --port; clients name the balancers' addresses.
    listen: {
      host: '127.0.0.1',
      port: 8080,
      allowed_hosts: balancerUrls.map((url) => new URL(url).host),
    },
    store: storeUrl,
    log: { level: 'warn' },
    audit: { hash_key_file: join(directory, 'audit-hash.key') },
    auth: {
      resource: 'https://warden.bench/mcp',
      issuers: [{ builtin: { token_ttl: '1h', max_ttl: '1h' } }],
    },
    agents: { [BENCH_AGENT]: { roles: ['bench'] } },
    limits: { max_sessions_per_agent: 64 },
    roles: { bench: { grants: [{ tool: 'bench.echo' }] } },
    upstreams: { bench: { url: echoUrl } },
  };
}

async function issueToken(config: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [CLI, 'token', 'issue', '--agent', BENCH_AGENT, '--ttl', '1h', '--config', config],
    { cwd: directory, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let errors = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`warden token issue failed (${String(code)}): ${errors}`);
  return output.trim();
}

interface Balancer {
  readonly urls: readonly string[];
  readonly pid: number;
  takeRouted(): Promise<number[][]>;
}

async function startBalancer(copies: number, backends: readonly string[]): Promise<Balancer> {
  const child = await startChild([...NODE_TS, BALANCER, String(copies), ...backends]);
  const { urls } = JSON.parse(child.line) as { urls: string[] };
  return {
    urls,
    pid: child.pid,
    takeRouted: async () => {
      const answer = child.nextLine();
      child.process.stdin?.write('routed\n');
      return (JSON.parse(await answer) as { routed: number[][] }).routed;
    },
  };
}

/** Connects one client per slot, warms up over them, then measures `settings.calls` calls. */
async function measure(path: Path, concurrency: number, round: number): Promise<Measurement> {
  await path.takeRouted?.();
  const clients = await Promise.all(
    Array.from({ length: concurrency }, (_, slot) =>
      connectClient(path.urls[slot % path.urls.length] ?? '', path.authorization),
    ),
  );
  let result: LoadResult;
  let serverCpuMs: number | undefined;
  let machineCpuMs: number | undefined;
  let clientCpuMs: number;
  try {
    const call = (slot: number) => callEcho(clients[slot]!.client);
    await runLoad(call, { calls: settings.warmupCalls, concurrency });
    const machineBefore = readMachineCpuTimeMs();
    const serverBefore = readCpuTimeMs(path.pids);
    const clientBefore = process.cpuUsage();
    result = await runLoad(call, { calls: settings.calls, concurrency });
    const clientCpu = process.cpuUsage(clientBefore);
    clientCpuMs = (clientCpu.user + clientCpu.system) / 1000;
    serverCpuMs = difference(serverBefore, readCpuTimeMs(path.pids));
    machineCpuMs = difference(machineBefore, readMachineCpuTimeMs());
  } finally {
    await Promise.all(clients.map(({ client, transport }) => disconnect(client, transport)));
  }
  const hops = path.takeRouted === undefined ? undefined : countHops(await path.takeRouted());
  return {
    round,
    path: path.name,
    ...result,
    hopped: hops?.hopped,
    requestsAfterInitialize: hops?.requests,
    serverCpuMsPerCall: serverCpuMs === undefined ? undefined : serverCpuMs / result.calls,
    clientCpuMsPerCall: clientCpuMs / result.calls,
    otherLoadCores:
      machineCpuMs === undefined || serverCpuMs === undefined
        ? undefined
        : Math.max(0, machineCpuMs - serverCpuMs - clientCpuMs) / result.elapsedMs,
  };
}

/**
 * Each balancer copy served one session: its first request was the initialize, so that replica
 * owns the session, and any later request routed elsewhere hopped to it.
 */
function countHops(routed: readonly (readonly number[])[]): { hopped: number; requests: number } {
  let hopped = 0;
  let requests = 0;
  for (const [owner, ...rest] of routed) {
    requests += rest.length;
    hopped += rest.filter((replica) => replica !== owner).length;
  }
  return { hopped, requests };
}

/** As bench/run.ts: a per-request signal, so undici does not warn of listeners on every call. */
function fetchWithOwnSignal(...[url, init]: Parameters<FetchLike>): ReturnType<FetchLike> {
  return fetch(url, init?.signal ? { ...init, signal: AbortSignal.any([init.signal]) } : init);
}

async function connectClient(
  url: string,
  authorization: string | undefined,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'warden-replicas-bench', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: fetchWithOwnSignal,
    ...(authorization !== undefined && { requestInit: { headers: { authorization } } }),
  });
  await client.connect(transport);
  const { tools } = await client.listTools();
  if (!tools.some((tool) => tool.name === 'echo')) throw new Error(`${url} has no echo tool`);
  return { client, transport };
}

async function callEcho(client: Client): Promise<void> {
  const result = await client.callTool({ name: 'echo', arguments: { text: ECHO_TEXT } });
  const [first] = Array.isArray(result.content) ? (result.content as unknown[]) : [];
  if (result.isError === true || (first as { text?: unknown } | undefined)?.text !== ECHO_TEXT) {
    throw new Error(`unexpected echo result: ${JSON.stringify(result).slice(0, 200)}`);
  }
}

async function disconnect(client: Client, transport: StreamableHTTPClientTransport): Promise<void> {
  await transport.terminateSession().catch(() => undefined);
  await client.close().catch(() => undefined);
}

interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** The first line it printed on stdout, or '' for a child waited on by port. */
  readonly line: string;
  /** The next line it prints on stdout after that. */
  nextLine(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` and waits until it serves: until it prints a line (which `nextLine` then
 * returns) or, given `port`, until that port accepts connections. Registered for stopping at the
 * end, last started first.
 */
async function startChild(
  args: readonly string[],
  port?: number,
  env: Record<string, string> = {},
): Promise<Child> {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: string) => {
    output = (output + chunk).slice(-4000);
  };
  child.stderr.setEncoding('utf8').on('data', keep);
  const waiting: ((line: string) => void)[] = [];
  const printed: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter(line);
    // A replica's stdout is its log: kept for a failure report only.
    else if (port === undefined) printed.push(line);
    else keep(`${line}\n`);
  });
  const nextLine = () =>
    new Promise<string>((resolve) => {
      const line = printed.shift();
      if (line === undefined) waiting.push(resolve);
      else resolve(line);
    });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };
  children.push({ process: child, pid: child.pid ?? 0, line: '', nextLine, stop });
  let timer: NodeJS.Timeout | undefined;
  try {
    const line = await Promise.race([
      port === undefined ? nextLine() : waitForPort(port, STARTUP_TIMEOUT_MS).then(() => ''),
      once(child, 'exit').then(([code]) => {
        throw new Error(`exited with code ${String(code)}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('did not start in time')), STARTUP_TIMEOUT_MS);
      }),
    ]);
    child.once('exit', (code, signal) => {
      if (code !== 0 || signal !== null) {
        process.stderr.write(
          `${args.join(' ')} exited with ${String(code ?? signal)}:\n${output}\n`,
        );
      }
    });
    return { process: child, pid: child.pid ?? 0, line, nextLine, stop };
  } catch (error) {
    throw new Error(`${args.join(' ')}: ${(error as Error).message}\n${output}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/** CPU time (user + system, ms) of the given processes, from /proc; undefined elsewhere. */
function readCpuTimeMs(pids: readonly number[]): number | undefined {
  try {
    let ticks = 0;
    for (const pid of pids) {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return (ticks * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

function difference(before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined ? undefined : after - before;
}

function summarise(all: readonly Measurement[]): Row[] {
  return paths.flatMap((path) =>
    settings.concurrencies.flatMap((concurrency): Row[] => {
      const rounds = all.filter((m) => m.path === path.name && m.concurrency === concurrency);
      if (rounds.length === 0) return [];
      const throughputs = rounds.map((m) => m.callsPerSecond);
      const defined = (values: readonly (number | undefined)[]): number[] =>
        values.flatMap((value) => (value === undefined ? [] : [value]));
      const serverCpu = defined(rounds.map((m) => m.serverCpuMsPerCall));
      const otherLoad = defined(rounds.map((m) => m.otherLoadCores));
      const hopped = defined(rounds.map((m) => m.hopped)).reduce((a, b) => a + b, 0);
      const requests = defined(rounds.map((m) => m.requestsAfterInitialize)).reduce(
        (a, b) => a + b,
        0,
      );
      return [
        {
          path: path.name,
          summary: path.summary,
          concurrency,
          rounds: rounds.length,
          callsPerSecond: median(throughputs),
          callsPerSecondMin: Math.min(...throughputs),
          callsPerSecondMax: Math.max(...throughputs),
          p50Ms: median(rounds.map((m) => m.p50Ms)),
          p99Ms: median(rounds.map((m) => m.p99Ms)),
          hoppedShare:
            path.takeRouted === undefined || requests === 0 ? undefined : hopped / requests,
          serverCpuMsPerCall: serverCpu.length > 0 ? median(serverCpu) : undefined,
          clientCpuMsPerCall: median(rounds.map((m) => m.clientCpuMsPerCall)),
          otherLoadCoresMax: otherLoad.length > 0 ? Math.max(...otherLoad) : undefined,
          failures: rounds.reduce((sum, m) => sum + m.failures, 0),
        },
      ];
    }),
  );
}

function renderMarkdown(all: readonly Row[]): string {
  const find = (path: string, concurrency: number) =>
    all.find((row) => row.path === path && row.concurrency === concurrency);
  const several = `balanced-${settings.replicas}`;
  const pairs: ReadonlyArray<[string, string]> = [
    [several, 'balanced-1'],
    ['balanced-1', 'direct'],
    [several, 'direct'],
  ];
  const comparisons = settings.concurrencies.flatMap((concurrency) =>
    pairs.flatMap(([ours, theirs]) => {
      const a = find(ours, concurrency);
      const b = find(theirs, concurrency);
      if (!a || !b) return [];
      return [
        `| ${concurrency} | ${ours} | ${theirs} | ${(a.callsPerSecond / b.callsPerSecond).toFixed(2)}x | ${signed(a.p50Ms - b.p50Ms)} | ${a.serverCpuMsPerCall !== undefined && b.serverCpuMsPerCall !== undefined ? `${(a.serverCpuMsPerCall / b.serverCpuMsPerCall).toFixed(2)}x` : '–'} |`,
      ];
    }),
  );
  const lines = [
    '',
    `tools/call on an SDK 1.x echo server through \`warden serve\` replicas on one PostgreSQL ` +
      `store behind a round-robin balancer (no affinity); one SDK 1.x client and session per ` +
      `concurrent caller. Each row is the median of ${settings.rounds} rounds of ${settings.calls} ` +
      `calls, each after ${settings.warmupCalls} warm-up calls; every path ran one untimed round first.`,
    `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node} (${machine.platform}). ` +
      'Client, balancer, replicas, echo server and PostgreSQL share these cores. Server CPU/call ' +
      'is the replicas’, balancer’s and echo server’s (not PostgreSQL’s); other load is the CPU ' +
      'the rest of the machine used meanwhile (the worst of a row’s rounds). Hopped: share of a ' +
      'session’s requests after initialize that reached another replica than its owner and were ' +
      'relayed to it.',
    '',
    '| path | concurrency | calls/s (min–max) | p50 ms | p99 ms | hopped | server CPU ms/call | client CPU ms/call | other load, cores | failures |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...all.map(
      (row) =>
        `| ${row.summary} | ${row.concurrency} | ${row.callsPerSecond.toFixed(0)} (${row.callsPerSecondMin.toFixed(0)}–${row.callsPerSecondMax.toFixed(0)}) | ${row.p50Ms.toFixed(2)} | ${row.p99Ms.toFixed(2)} | ${row.hoppedShare === undefined ? '–' : `${(row.hoppedShare * 100).toFixed(0)}%`} | ${row.serverCpuMsPerCall?.toFixed(3) ?? '–'} | ${row.clientCpuMsPerCall.toFixed(3)} | ${row.otherLoadCoresMax?.toFixed(2) ?? '–'} | ${row.failures} |`,
    ),
    '',
    '| concurrency | path | compared with | throughput ratio | added p50, ms | server CPU/call ratio |',
    '|---:|---|---|---:|---:|---:|',
    ...comparisons,
  ];
  return `${lines.join('\n')}\n`;
}

function describe(m: Measurement): string {
  const hops =
    m.hopped === undefined ? '' : `, hopped ${m.hopped}/${m.requestsAfterInitialize ?? 0}`;
  const failures = m.failures > 0 ? `, ${m.failures} FAILED (${m.firstFailure ?? ''})` : '';
  return (
    `${m.path} c=${m.concurrency}: ${m.callsPerSecond.toFixed(0)} calls/s, ` +
    `p50 ${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms${hops}, ` +
    `other load ${m.otherLoadCores?.toFixed(2) ?? '?'} cores${failures}`
  );
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? upper) + upper) / 2;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '300' },
      rounds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '1,8' },
      replicas: { type: 'string', default: '3' },
      postgres: {
        type: 'string',
        default: process.env['WARDEN_TEST_POSTGRES_URL'] ?? 'postgres://root@127.0.0.1:5432/test',
      },
    },
  });
  const replicas = readCount(values.replicas, '--replicas');
  if (replicas < 2 || replicas > 16) throw new Error('--replicas must be from 2 to 16');
  const concurrencies = values.concurrency.split(',').map((c) => readCount(c, '--concurrency'));
  if (Math.max(...concurrencies) > 64) {
    throw new Error('--concurrency must be at most 64 (the agent’s session limit)');
  }
  return {
    calls: readCount(values.calls, '--calls'),
    warmupCalls: readCount(values.warmup, '--warmup'),
    rounds: readCount(values.rounds, '--rounds'),
    concurrencies,
    replicas,
    postgresUrl: values.postgres,
  };
}

function readCount(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > MAX_COUNT) {
    throw new Error(`${flag} must be an integer from 1 to ${MAX_COUNT}`);
  }
  return value;
}
