/**
 * `warden demo`: the gateway on embedded defaults (SQLite under ./.warden, the built-in issuer)
 * in front of a bundled company MCP server, with demo agents and tokens printed to try it.
 * Its client secrets and business data are kept under ./.warden, so a restart changes neither.
 * A port in use ends it at once (exit 2), before anything under ./.warden is written.
 */
import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { stringify as stringifyYaml } from 'yaml';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/config.js';
import {
  loadDemoCredentials,
  saveDemoSecrets,
  type DemoCredential,
} from '../demo/demo-credentials.js';
import type { RunningGateway } from '../gateway/app.js';
import { exitWithUsageCode, runCliAction, UsageError } from './operator.js';
import { parsePortOption } from './parse-port.js';
import { stopOnSignal } from './run-until-signal.js';

const DEMO_HOST = '127.0.0.1';
const DEMO_CONFIG_FILE = '.warden/demo.yaml';
/** The demo agents' client secrets in plain text (mode 0600), reused at every start. */
const DEMO_SECRETS_FILE = '.warden/demo-secrets.json';
/** The demo company's invoices, customers and payment numbers, shared by every session. */
const DEMO_BUSINESS_FILE = '.warden/demo-business.db';
/** The demo's finance approver: a person, who decides from the CLI (or the admin API). */
const DEMO_APPROVER = 'controller@example.com';

const DEMO_SERVER = fileURLToPath(new URL('../demo/business-server-stdio.js', import.meta.url));

/** The demo company's agents: a read-only researcher, an operations bot, a finance bot. */
const DEMO_AGENTS = [
  { id: 'research-bot', roles: ['research'], user: 'ada@example.com' },
  { id: 'ops-bot', roles: ['operations'], user: 'grace@example.com' },
  { id: 'finance-bot', roles: ['finance_executor'], user: 'alan@example.com' },
] as const;

/**
 * The demo's person, who logs in through an MCP app (authorization code with PKCE at the
 * built-in authorization server). Her password is kept and printed like the agents' secrets.
 */
const DEMO_PERSON = { id: 'alice', name: 'Alice (demo)', roles: ['research', 'operations'] };
/**
 * The agent every logged-in app acts as: research only, so an app acting for alice reads and
 * searches but cannot change records, although alice herself holds operations.
 */
const DEMO_LOGIN_AGENT = { id: 'desktop-apps', roles: ['research'] };

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the gateway in front of a demo company MCP server (no config needed)')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', '8080')
    .exitOverride(exitWithUsageCode)
    .action((options: { port: string }) => runCliAction(() => runDemo(options.port)));
}

async function runDemo(portOption: string): Promise<void> {
  const port = await claimPort(parsePortOption(portOption));
  mkdirSync('.warden', { recursive: true });
  const credentials = await loadDemoCredentials(
    [...DEMO_AGENTS.map((agent) => agent.id), DEMO_PERSON.id],
    { secrets: DEMO_SECRETS_FILE, config: DEMO_CONFIG_FILE },
  );
  const raw = await demoConfig(port, credentials);
  const config = parseConfig(raw, DEMO_CONFIG_FILE, process.cwd());
  const { startGateway } = await import('../gateway/app.js');
  let gateway: RunningGateway;
  try {
    gateway = await startGateway(config);
  } catch (error) {
    // Taken between the check and the start: the same answer as the check's.
    if (isAddressInUse(error)) throw portInUse(port);
    throw error;
  }
  // Written once the gateway runs, so the files always describe the running demo: the operator
  // commands (approvals, policy, tools, audit) are pointed at it with --config .warden/demo.yaml.
  saveDemoSecrets(DEMO_SECRETS_FILE, credentials);
  writeFileSync(DEMO_CONFIG_FILE, stringifyYaml(raw), { mode: 0o600 });
  process.stdout.write(await describeDemo(gateway, config, credentials));
  stopOnSignal(gateway);
}

async function demoConfig(
  port: number,
  credentials: ReadonlyMap<string, DemoCredential>,
): Promise<Record<string, unknown>> {
  const { DEMO_POLICY } = await import('../demo/demo-policy.js');
  const agents: Record<string, unknown> = {};
  for (const agent of DEMO_AGENTS) {
    agents[agent.id] = {
      roles: [...agent.roles],
      secret_hash: credentials.get(agent.id)?.secretHash,
    };
  }
  agents[DEMO_LOGIN_AGENT.id] = { roles: [...DEMO_LOGIN_AGENT.roles] };
  const business = (domain: string) => ({
    command: [
      process.execPath,
      DEMO_SERVER,
      '--domain',
      domain,
      '--data',
      resolve(DEMO_BUSINESS_FILE),
    ],
  });
  return {
    environment: 'demo',
    listen: { host: DEMO_HOST, port },
    // Absolute, so the copy in .warden/demo.yaml means the same files from any folder.
    store: `sqlite:${resolve('.warden/warden.db')}`,
    log: { level: 'warn' },
    auth: {
      resource: `http://127.0.0.1:${port}/mcp`,
      issuers: [{ builtin: { token_ttl: '1h', max_ttl: '1h' } }],
      // People log in through MCP apps (Claude Desktop, VS Code, the Inspector) as alice.
      login: {
        agent: DEMO_LOGIN_AGENT.id,
        users: {
          [DEMO_PERSON.id]: {
            password_hash: credentials.get(DEMO_PERSON.id)?.secretHash,
            roles: [...DEMO_PERSON.roles],
            name: DEMO_PERSON.name,
          },
        },
      },
    },
    agents,
    ...DEMO_POLICY,
    approvals: {
      approvers: { [DEMO_APPROVER]: { roles: ['finance_approver'] } },
      summaries: { 'payments.issue_payment': ['vendor', 'amount', 'currency', 'invoice_id'] },
    },
    audit: { hash_key_file: resolve('.warden/audit-hash.key') },
    upstreams: {
      payments: business('payments'),
      crm: business('crm'),
      research: business('research'),
    },
  };
}

/**
 * Checks that the port is free by listening on it for a moment; 0 picks a free one. The
 * resource URL carries the port, so it is known before the config is built.
 */
async function claimPort(requested: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(isAddressInUse(error) ? portInUse(requested) : error));
    probe.listen(requested, DEMO_HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : requested;
      probe.close(() => resolve(port));
    });
  });
}

function isAddressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
}

function portInUse(port: number): UsageError {
  return new UsageError(
    `port ${port} on ${DEMO_HOST} is in use (a demo already running?); choose another with --port, e.g. --port 0 for a free one. Nothing under .warden was changed.`,
  );
}

async function describeDemo(
  gateway: RunningGateway,
  config: Config,
  credentials: ReadonlyMap<string, DemoCredential>,
): Promise<string> {
  const url = gateway.url;
  const lines: string[] = [];
  for (const demo of DEMO_AGENTS) {
    const agent = config.agents.get(demo.id);
    if (!agent || !gateway.issuer) continue;
    const issued = await gateway.issuer.issueToken({ agent, user: demo.user });
    lines.push(
      `  ${demo.id} (roles: ${demo.roles.join(', ')}; acting for ${demo.user})`,
      `    client secret: ${credentials.get(demo.id)?.secret ?? ''}`,
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

  Demo person (log in through an MCP app, e.g. the Inspector's OAuth flow):
    user: ${DEMO_PERSON.id}   password: ${credentials.get(DEMO_PERSON.id)?.secret ?? ''}
    apps act as ${DEMO_LOGIN_AGENT.id} with the roles both hold: ${DEMO_LOGIN_AGENT.roles.join(', ')}

  Try it:
    curl -s ${url}/.well-known/oauth-protected-resource/mcp/research
    curl -s -u ${research.id}:${credentials.get(research.id)?.secret ?? ''} -d grant_type=client_credentials ${url}/oauth/token
    npx @modelcontextprotocol/inspector@0.15.0   (on Node.js 20; newer ones need Node.js 22)
        connect to ${url}/mcp/research with header Authorization: Bearer <a token above>,
        or leave the header out and log in as ${DEMO_PERSON.id} when the app asks (OAuth)

  Approvals: finance-bot's issue_payment needs a person. The first call answers at once
  "held for approval <id>"; once approved, the same call again goes through, once. Approve:
    npx warden approvals list --config ${DEMO_CONFIG_FILE}
    npx warden approvals approve <id> --as ${DEMO_APPROVER} --config ${DEMO_CONFIG_FILE}
  Why was a call denied?
    npx warden policy explain --agent research-bot --tool crm.update_record --config ${DEMO_CONFIG_FILE}
    npx warden audit show <reference id from the error> --config ${DEMO_CONFIG_FILE}

  State (signing keys, revocations, approvals, the audit log, these client secrets, the
  company's invoices and customers) is kept under ./.warden/; a restart keeps it.
  Press Ctrl+C to stop.
`;
}
