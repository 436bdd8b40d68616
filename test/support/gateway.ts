/**
 * Starts a real Warden gateway on 127.0.0.1, port 0, for a test: with the built-in issuer and
 * one registered agent by default, so tests authenticate as a real client would.
 */
import { Writable } from 'node:stream';
import { ADMIN_SURFACE_ROLES } from '../../src/config/check-agent-roles.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type RunningGateway } from '../../src/gateway/app.js';
import { createLogger } from '../../src/gateway/logger.js';

/** The resource URL (token audience) of every test gateway. */
export const TEST_RESOURCE = 'https://warden.test/mcp';
export const TEST_AGENT = 'test-agent';

export interface TokenOptions {
  readonly agent?: string;
  readonly user?: string;
  readonly ttlMs?: number;
}

export interface TestGateway extends RunningGateway {
  /** Every JSON log line the gateway wrote. */
  readonly logs: Record<string, unknown>[];
  endpoint(upstream: string): string;
  /** A fresh access token from the gateway's built-in issuer. */
  token(options?: TokenOptions): Promise<string>;
  /** `{ authorization: 'Bearer …' }` for raw HTTP requests. */
  authHeaders(options?: TokenOptions): Promise<Record<string, string>>;
}

/**
 * The relay and transparency tests need every tool, resource and prompt: a trusted role with
 * wildcard grants. Tests of policy itself configure their own roles.
 */
export const TESTER_ROLE = {
  trusted: true,
  grants: [{ tool: '*' }, { resource: '*' }, { prompt: '*' }],
};

export async function startTestGateway(raw: Record<string, unknown>): Promise<TestGateway> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const config = parseConfig(
    declareHeldRoles({
      listen: { host: '127.0.0.1', port: 0 },
      store: 'sqlite::memory:',
      log: { level: 'debug' },
      auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
      agents: { [TEST_AGENT]: { roles: ['tester'] } },
      roles: { tester: TESTER_ROLE },
      ...raw,
    }),
    'test',
  );
  const gateway = await startGateway(config, { logger: createLogger('debug', sink) });
  const token = async (options: TokenOptions = {}): Promise<string> => {
    const agent = config.agents.get(options.agent ?? TEST_AGENT);
    if (!gateway.issuer || !agent)
      throw new Error('the test gateway has no built-in issuer or agent');
    const issued = await gateway.issuer.issueToken({
      agent,
      ...(options.user !== undefined && { user: options.user }),
      ...(options.ttlMs !== undefined && { ttlMs: options.ttlMs }),
    });
    return issued.token;
  };
  return {
    url: gateway.url,
    port: gateway.port,
    issuer: gateway.issuer,
    revoke: (revocation) => gateway.revoke(revocation),
    reloadPolicy: (reloaded) => gateway.reloadPolicy(reloaded),
    reloadTls: () => gateway.reloadTls(),
    close: () => gateway.close(),
    logs,
    endpoint: (upstream) => `${gateway.url}/mcp/${upstream}`,
    token,
    authHeaders: async (options) => ({ authorization: `Bearer ${await token(options)}` }),
  };
}

/**
 * Tests give agents roles of no consequence (an attacker's, a viewer's) to play callers who may
 * do nothing. warden.yaml must declare every role an agent holds, so those are declared here, as
 * empty roles: they grant nothing, as an undeclared role granted nothing.
 */
function declareHeldRoles(raw: Record<string, unknown>): Record<string, unknown> {
  const roles = { ...(raw['roles'] as Record<string, unknown> | undefined) };
  const flat = (raw['grants'] as { agent_role?: string }[] | undefined) ?? [];
  const declared = new Set([...Object.keys(roles), ...flat.map((grant) => grant.agent_role)]);
  const agents = (raw['agents'] as Record<string, { roles?: string[] }> | undefined) ?? {};
  for (const agent of Object.values(agents)) {
    for (const role of agent.roles ?? []) {
      if (!declared.has(role) && !ADMIN_SURFACE_ROLES.includes(role)) roles[role] = {};
    }
  }
  return { ...raw, roles };
}
