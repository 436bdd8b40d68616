/**
 * `warden demo`: the gateway on embedded defaults (SQLite under ./.warden, the built-in issuer)
 * in front of a bundled company MCP server, with demo agents and tokens printed to try it.
 */
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { stringify as stringifyYaml } from 'yaml';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/config.js';
import type { RunningGateway } from '../gateway/app.js';
import { stopOnSignal } from './run-until-signal.js';

const DEMO_CONFIG_FILE = '.warden/demo.yaml';
/** The demo's finance approver: a person, who decides from the CLI (or the admin API). */
const DEMO_APPROVER = 'controller@example.com';

const DEMO_SERVER = fileURLToPath(new URL('../demo/business-server-stdio.js', import.meta.url));

/** The demo company's agents: a read-only researcher, an operations bot, a finance bot. */
const DEMO_AGENTS = [
  { id: 'research-bot', roles: ['research'], user: 'ada@example.com' },
  { id: 'ops-bot', roles: ['operations'], user: 'grace@example.com' },
  { id: 'finance-bot', roles: ['finance_executor'], user: 'alan@example.com' },
] as const;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the gateway in front of a demo company MCP server (no config needed)')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', '8080')
    .action(async (options: { port: string }) => {
      mkdirSync('.warden', { recursive: true });
      const port = await choosePort(Number(options.port));
      // Fresh client secrets each run: printed once, stored only as hashes.
      const secrets = new Map(
        DEMO_AGENTS.map((agent) => [agent.id, randomBytes(24).toString('base64url')]),
      );
      const raw = await demoConfig(port, secrets);
      // The same config on disk, so the operator commands (approvals, policy, tools, audit) can
      // be pointed at the running demo with --config .warden/demo.yaml.
      writeFileSync(DEMO_CONFIG_FILE, stringifyYaml(raw), { mode: 0o600 });
      const config = parseConfig(raw, DEMO_CONFIG_FILE, process.cwd());
      const { startGateway } = await import('../gateway/app.js');
      const gateway = await startGateway(config);
      process.stdout.write(await describeDemo(gateway, config, secrets));
      stopOnSignal(gateway);
    });
}

async function demoConfig(
  port: number,
  secrets: ReadonlyMap<string, string>,
): Promise<Record<string, unknown>> {
  const [{ hashClientSecret }, { DEMO_POLICY }] = await Promise.all([
    import('../identity/client-authentication.js'),
    import('../demo/demo-policy.js'),
  ]);
  const agents: Record<string, unknown> = {};
  for (const agent of DEMO_AGENTS) {
    agents[agent.id] = {
      roles: [...agent.roles],
      secret_hash: await hashClientSecret(secrets.get(agent.id) ?? ''),
    };
  }
  return {
    environment: 'demo',
    listen: { host: '127.0.0.1', port },
    // Absolute, so the copy in .warden/demo.yaml means the same files from any folder.
    store: `sqlite:${resolve('.warden/warden.db')}`,
    log: { level: 'warn' },
    auth: {
      resource: `http://127.0.0.1:${port}/mcp`,
      issuers: [{ builtin: { token_ttl: '1h', max_ttl: '1h' } }],
    },
    agents,
    ...DEMO_POLICY,
    approvals: { approvers: { [DEMO_APPROVER]: { roles: ['finance_approver'] } } },
    audit: { hash_key_file: resolve('.warden/audit-hash.key') },
    upstreams: {
      payments: { command: [process.execPath, DEMO_SERVER, '--domain', 'payments'] },
      crm: { command: [process.execPath, DEMO_SERVER, '--domain', 'crm'] },
      research: { command: [process.execPath, DEMO_SERVER, '--domain', 'research'] },
    },
  };
}

/** The resource URL carries the port, so a port of 0 is resolved before the config is built. */
async function choosePort(requested: number): Promise<number> {
  if (requested !== 0) return requested;
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 8080;
      probe.close(() => resolve(port));
    });
  });
}

async function describeDemo(
  gateway: RunningGateway,
  config: Config,
  secrets: ReadonlyMap<string, string>,
): Promise<string> {
  const url = gateway.url;
  const lines: string[] = [];
  for (const demo of DEMO_AGENTS) {
    const agent = config.agents.get(demo.id);
    if (!agent || !gateway.issuer) continue;
    const issued = await gateway.issuer.issueToken({ agent, user: demo.user });
    lines.push(
      `  ${demo.id} (roles: ${demo.roles.join(', ')}; acting for ${demo.user})`,
      `    client secret: ${secrets.get(demo.id) ?? ''}`,
      `    token (1 h):   ${issued.token}`,
    );
  }
  const [research] = DEMO_AGENTS;
  return `
Warden demo is running. Every endpoint needs a token: there is no anonymous access.

  MCP endpoints (Streamable HTTP):
    ${url}/mcp/payments   issue_payment, list_invoices
    ${url}/mcp/crm        search_customers, update_record
    ${url}/mcp/research   search_docs

  Demo agents:
${lines.join('\n')}

  Try it:
    curl -s ${url}/.well-known/oauth-protected-resource/mcp/research
    curl -s -u ${research.id}:${secrets.get(research.id) ?? ''} -d grant_type=client_credentials ${url}/oauth/token
    npx @modelcontextprotocol/inspector   connect to ${url}/mcp/research with header
                                          Authorization: Bearer <a token above>

  Approvals: finance-bot's issue_payment waits for a human. In another terminal:
    npx warden approvals list --config ${DEMO_CONFIG_FILE}
    npx warden approvals approve <id> --as ${DEMO_APPROVER} --config ${DEMO_CONFIG_FILE}
  Why was a call denied?
    npx warden policy explain --agent research-bot --tool crm.update_record --config ${DEMO_CONFIG_FILE}
    npx warden audit show <reference id from the error> --config ${DEMO_CONFIG_FILE}

  State (signing keys, revocations, approvals, the audit log) is kept under ./.warden/.
  Press Ctrl+C to stop.
`;
}
