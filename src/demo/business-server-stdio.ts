// Entry point: serves the demo business server over stdio (`node dist/demo/business-server-stdio.js`).
// stdout carries the MCP protocol only; diagnostics go to stderr.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { BUSINESS_DOMAINS, createBusinessServer, type BusinessDomain } from './business-server.js';

/** Connects a fresh demo business server to this process's stdin/stdout. */
export async function startBusinessServerStdio(domains?: readonly BusinessDomain[]): Promise<void> {
  const server = createBusinessServer(domains ? { domains } : {});
  const transport = new StdioServerTransport();
  // Exit when the client closes our stdin, so a gateway restart never leaves orphans.
  process.stdin.once('end', () => void server.close());
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
    .then(() => startBusinessServerStdio(readDomains(process.argv.slice(2))))
    .catch((error: unknown) => {
      process.stderr.write(`business server failed: ${String(error)}\n`);
      process.exit(1);
    });
}
