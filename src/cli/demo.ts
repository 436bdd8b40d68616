/** `warden demo`: the gateway on embedded defaults with a bundled business MCP server. */
import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import { startGateway } from '../gateway/app.js';
import { stopOnSignal } from './run-until-signal.js';

const DEMO_SERVER = fileURLToPath(new URL('../demo/business-server-stdio.js', import.meta.url));

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the gateway in front of a demo company MCP server (no config needed)')
    .option('-p, --port <port>', 'port to listen on', '8080')
    .action(async (options: { port: string }) => {
      mkdirSync('.warden', { recursive: true });
      const config = parseConfig(
        {
          environment: 'demo',
          listen: { host: '127.0.0.1', port: Number(options.port) },
          store: 'sqlite:./.warden/warden.db',
          log: { level: 'warn' },
          upstreams: {
            payments: { command: [process.execPath, DEMO_SERVER, '--domain', 'payments'] },
            crm: { command: [process.execPath, DEMO_SERVER, '--domain', 'crm'] },
            research: { command: [process.execPath, DEMO_SERVER, '--domain', 'research'] },
          },
        },
        'demo',
      );
      const gateway = await startGateway(config);
      process.stdout.write(describeDemo(gateway.url));
      stopOnSignal(gateway);
    });
}

function describeDemo(url: string): string {
  return `
Warden demo is running.

  MCP endpoints (Streamable HTTP):
    ${url}/mcp/payments   issue_payment, list_invoices
    ${url}/mcp/crm        search_customers, update_record
    ${url}/mcp/research   search_docs

  Try it:
    npx @modelcontextprotocol/inspector   then connect to ${url}/mcp/payments
    curl -s ${url}/healthz

  State is kept under ./.warden/. Press Ctrl+C to stop.
`;
}
