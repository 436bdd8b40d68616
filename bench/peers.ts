/**
 * The paths a benchmark call can take to the echo server, each started in child processes of
 * its own so that the load generator's CPU use is not charged to the server being measured.
 */
import { findFreePort, waitForPort } from '../test/support/processes.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type PeerName =
  | 'direct'
  | 'warden-http-noauth'
  | 'warden-http'
  | 'warden-http-noaudit'
  | 'warden-stdio'
  | 'mcp-proxy-stdio';

export interface PeerDescription {
  readonly name: PeerName;
  /** One line for the report: what the client talks to and what sits behind it. */
  readonly summary: string;
}

export interface RunningPeer extends PeerDescription {
  /** The Streamable HTTP endpoint the benchmark clients connect to. */
  readonly url: string;
  /** The Authorization header every request must carry (Warden with auth), if any. */
  readonly authorization: string | undefined;
  /** CPU time (user + system, ms) used so far by this peer's processes and their children. */
  cpuTimeMs(): number | undefined;
  /**
   * CPU time of the gateway process alone (Warden or mcp-proxy, without the upstream servers it
   * runs or calls); undefined for `direct`, which has no gateway.
   */
  gatewayCpuTimeMs(): number | undefined;
  stop(): Promise<void>;
}

export const PEERS: readonly PeerDescription[] = [
  { name: 'direct', summary: 'client → echo server (Streamable HTTP, SDK 1.x)' },
  {
    name: 'warden-http-noauth',
    summary: 'client → Warden, auth off (fixed identity) → echo server (Streamable HTTP)',
  },
  {
    name: 'warden-http',
    summary: 'client → Warden, bearer token → echo server (Streamable HTTP)',
  },
  {
    name: 'warden-http-noaudit',
    summary: 'client → Warden, bearer token, no audit → echo server (Streamable HTTP)',
  },
  {
    name: 'warden-stdio',
    summary: 'client → Warden, bearer token → echo server (stdio child, one per client session)',
  },
  {
    name: 'mcp-proxy-stdio',
    summary: 'client → mcp-proxy → echo server (stdio child, one shared by every session)',
  },
];

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const ECHO_SERVER = fileURLToPath(new URL('echo-server.ts', import.meta.url));
const WARDEN_PROCESS = fileURLToPath(new URL('warden-process.ts', import.meta.url));
const MCP_PROXY_BIN = fileURLToPath(new URL('bin/mcp-proxy.mjs', import.meta.resolve('mcp-proxy')));
/** `node --import tsx <file>`: the TypeScript entry points run without a build step. */
const NODE_TS = ['--import', 'tsx'];
const ECHO_STDIO_COMMAND = [process.execPath, ...NODE_TS, ECHO_SERVER, 'stdio'];
const STARTUP_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export interface PeerOptions {
  /** Extra Node options for the Warden processes only, e.g. --cpu-prof to profile the gateway. */
  readonly wardenNodeOptions?: readonly string[];
}

export async function startPeer(name: PeerName, options: PeerOptions = {}): Promise<RunningPeer> {
  const description = PEERS.find((peer) => peer.name === name);
  if (!description) throw new Error(`unknown peer ${name}`);
  const startWarden = async (upstream: unknown, auth: 'on' | 'off', audit: 'on' | 'off' = 'on') => {
    const child = await startChild([
      ...(options.wardenNodeOptions ?? []),
      ...NODE_TS,
      WARDEN_PROCESS,
      JSON.stringify(upstream),
      `--auth=${auth}`,
      `--audit=${audit}`,
    ]);
    return { child, ...readWardenEndpoint(child.url) };
  };
  switch (name) {
    case 'direct': {
      const echo = await startChild([...NODE_TS, ECHO_SERVER, 'http', '0']);
      return toPeer(description, echo.url, undefined, [echo], false);
    }
    case 'warden-http-noauth':
    case 'warden-http':
    case 'warden-http-noaudit': {
      const echo = await startChild([...NODE_TS, ECHO_SERVER, 'http', '0']);
      const warden = await startWarden(
        { url: echo.url },
        name === 'warden-http-noauth' ? 'off' : 'on',
        name === 'warden-http-noaudit' ? 'off' : 'on',
      );
      return toPeer(description, warden.url, warden.authorization, [warden.child, echo], true);
    }
    case 'warden-stdio': {
      const upstream = { command: ECHO_STDIO_COMMAND, cwd: REPO_ROOT };
      const warden = await startWarden(upstream, 'on');
      return toPeer(description, warden.url, warden.authorization, [warden.child], true);
    }
    case 'mcp-proxy-stdio': {
      // Run as its README says: `mcp-proxy --port P -- <stdio server command>`, defaults
      // otherwise; --server stream serves only /mcp, as Warden serves only Streamable HTTP.
      const port = await findFreePort();
      const proxy = await startChild(
        [
          MCP_PROXY_BIN,
          ...['--host', '127.0.0.1', '--port', String(port), '--server', 'stream'],
          '--',
          ...ECHO_STDIO_COMMAND,
        ],
        port,
      );
      return toPeer(description, `http://127.0.0.1:${port}/mcp`, undefined, [proxy], true);
    }
  }
}

interface Child {
  readonly process: ChildProcess;
  /** The first line the child printed, or '' for a child that is only waited on by port. */
  readonly url: string;
  stop(): Promise<void>;
}

/** warden-process.ts prints `{"url": ..., "authorization": ... | null}`. */
function readWardenEndpoint(line: string): { url: string; authorization: string | undefined } {
  const printed = JSON.parse(line) as { url?: unknown; authorization?: unknown };
  if (typeof printed.url !== 'string') throw new Error(`warden printed no URL: ${line}`);
  return {
    url: printed.url,
    authorization: typeof printed.authorization === 'string' ? printed.authorization : undefined,
  };
}

function toPeer(
  description: PeerDescription,
  url: string,
  authorization: string | undefined,
  children: readonly Child[],
  /** Whether the first child is a gateway in front of the upstream. */
  firstIsGateway: boolean,
): RunningPeer {
  const pids = children.flatMap((child) =>
    child.process.pid === undefined ? [] : [child.process.pid],
  );
  const gateway = firstIsGateway ? children[0]?.process.pid : undefined;
  return {
    ...description,
    url,
    authorization,
    cpuTimeMs: () => readTreeCpuTimeMs(pids),
    gatewayCpuTimeMs: () => (gateway === undefined ? undefined : readProcessCpuTimeMs(gateway)),
    stop: async () => {
      for (const child of children) await child.stop();
    },
  };
}

/**
 * Starts `node <args>` in the repository root and waits until it is serving: until it prints
 * a URL on stdout or, when `port` is given, until that port accepts connections.
 */
async function startChild(args: readonly string[], port?: number): Promise<Child> {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const stop = () => stopChild(child);
  try {
    const url = await Promise.race([
      port === undefined
        ? firstStdoutLine(child)
        : waitForPort(port, STARTUP_TIMEOUT_MS).then(() => ''),
      once(child, 'exit').then(([code]) => {
        throw new Error(`exited with code ${String(code)}`);
      }),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('did not start in time')), STARTUP_TIMEOUT_MS).unref(),
      ),
    ]);
    child.stdout.resume();
    // A peer that dies mid-run would otherwise show up only as refused connections.
    child.once('exit', (code, signal) => {
      if (code !== 0 || signal !== null) {
        process.stderr.write(
          `${args.join(' ')} exited with ${String(code ?? signal)}:\n${stderr}\n`,
        );
      }
    });
    return { process: child, url, stop };
  } catch (error) {
    await stop();
    throw new Error(`${args.join(' ')}: ${(error as Error).message}\n${stderr}`, { cause: error });
  }
}

async function firstStdoutLine(child: ChildProcess): Promise<string> {
  let buffered = '';
  const stdout = child.stdout;
  if (!stdout) throw new Error('no stdout');
  stdout.setEncoding('utf8');
  for await (const chunk of stdout as AsyncIterable<string>) {
    buffered += chunk;
    const end = buffered.indexOf('\n');
    if (end >= 0) return buffered.slice(0, end).trim();
  }
  throw new Error('stdout closed before the URL was printed');
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** Clock ticks per second for /proc/<pid>/stat times: USER_HZ, 100 on every mainstream Linux. */
const USER_HZ = 100;

/** CPU time of one process (all its threads), from /proc; undefined elsewhere. */
function readProcessCpuTimeMs(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/**
 * CPU time used by every process on the machine (user, nice, system, irq, softirq; not idle,
 * iowait or steal), from /proc/stat; undefined elsewhere. What the benchmark's own processes did
 * not use of it is other work on the machine competing with the measurement.
 */
export function readMachineCpuTimeMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [label, user, nice, system, , , irq, softirq] = line.trim().split(/\s+/);
    if (label !== 'cpu') return undefined;
    const ticks = [user, nice, system, irq, softirq].reduce((sum, v) => sum + Number(v ?? 0), 0);
    return (ticks * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/**
 * CPU time of the given processes and all their descendants, from /proc (Linux only; undefined
 * elsewhere). Children that already exited are not counted, which is fine while measuring:
 * the benchmark's processes live for the whole measurement.
 */
function readTreeCpuTimeMs(roots: readonly number[]): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return undefined;
  }
  const stats = new Map<number, { parent: number; ticks: number }>();
  for (const entry of entries) {
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state ppid ... utime(14) stime(15).
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(entry), {
        parent: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
      });
    } catch {
      // The process exited while we were reading.
    }
  }
  const inTree = new Set(roots);
  let grew = true;
  for (let pass = 0; grew && pass < 16; pass += 1) {
    grew = false;
    for (const [pid, { parent }] of stats) {
      if (!inTree.has(pid) && inTree.has(parent)) {
        inTree.add(pid);
        grew = true;
      }
    }
  }
  let ticks = 0;
  for (const pid of inTree) ticks += stats.get(pid)?.ticks ?? 0;
  return (ticks * 1000) / USER_HZ;
}
