// Entry point: serves the demo business server over stdio (`node dist/demo/business-server-stdio.js`).
// stdout carries the MCP protocol only; diagnostics go to stderr. `--data FILE` keeps the state
// in a file every such process shares (the demo's); without it, each process starts from the seeds.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { BUSINESS_DOMAINS, createBusinessServer, type BusinessDomain } from './business-server.js';
import { createMemoryBusinessStore, openBusinessStoreFile } from './business-store.js';

export interface BusinessServerStdioOptions {
  /** Which domains' tools to serve; all of them when absent. */
  readonly domains?: readonly BusinessDomain[];
  /** The shared state file; the seeds, in memory, when absent. */
  readonly dataFile?: string;
}

/** Connects a demo business server to this process's stdin/stdout. */
export async function startBusinessServerStdio(
  options: BusinessServerStdioOptions = {},
): Promise<void> {
  const store =
    options.dataFile === undefined
      ? createMemoryBusinessStore()
      : openBusinessStoreFile(options.dataFile);
  const server = createBusinessServer({
    store,
    ...(options.domains !== undefined && { domains: options.domains }),
  });
  const transport = new StdioServerTransport();
  // Exit when the client closes our stdin, so a gateway restart never leaves orphans.
  process.stdin.once('end', () => {
    void server.close().finally(() => store.close());
  });
  await server.connect(transport);
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Reads `--data FILE` from the command line. */
function readDataFile(argv: readonly string[]): string | undefined {
  const index = argv.indexOf('--data');
  if (index === -1) return undefined;
  const file = argv[index + 1];
  if (file === undefined || file.startsWith('--')) throw new Error('--data needs a file');
  return file;
}

/** Reads `--domain payments` (repeatable) from the command line. */
function readDomains(argv: readonly string[]): BusinessDomain[] | undefined {
  const domains = argv.flatMap((arg, i) => (arg === '--domain' ? [argv[i + 1]] : []));
  if (domains.length === 0) return undefined;
  for (const domain of domains) {
    if (!BUSINESS_DOMAINS.includes(domain as BusinessDomain)) {
      throw new Error(
        `unknown --domain ${String(domain)}; expected one of ${BUSINESS_DOMAINS.join(', ')}`,
      );
    }
  }
  return domains as BusinessDomain[];
}

if (isMainModule()) {
  Promise.resolve()
    .then(() => {
      const argv = process.argv.slice(2);
      const domains = readDomains(argv);
      const dataFile = readDataFile(argv);
      return startBusinessServerStdio({
        ...(domains !== undefined && { domains }),
        ...(dataFile !== undefined && { dataFile }),
      });
    })
    .catch((error: unknown) => {
      process.stderr.write(`business server failed: ${String(error)}\n`);
      process.exit(1);
    });
}
