// Runs Warden in its own process for the benchmark, so the load generator's CPU use is not
// charged to the gateway:
//   node --import tsx bench/warden-process.ts '<upstream config as JSON>' [--auth on|off]
//     [--audit on|off]
// It serves that upstream as `bench` on 127.0.0.1 (port 0) and prints one JSON line,
// `{"url": <MCP endpoint>, "authorization": <header value or null>}`, once it is listening.
//
// --auth on (the default) is Warden as deployed: the built-in issuer, one registered agent, and a
// bearer token for it that outlasts the run; every request is authenticated.
// --auth off injects an authenticator that returns one fixed identity without looking at the
// request: the baseline that shows what authentication costs. The CLI cannot do this.
//
// The store is a SQLite file (WAL, synchronous=FULL) in a fresh temp dir, with the audit hash key
// beside it, as a deployment has it: every call's decision record is durably committed before the
// call is forwarded. The dir is removed when the process stops.
// --audit on (the default) is that; --audit off injects a call recorder that records nothing and
// resolves at once: the baseline that shows what the audit step costs. The CLI cannot do this.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CallOutcome, CallRecorder } from '../src/audit/call-recorder.js';
import { stopOnSignal } from '../src/cli/run-until-signal.js';
import { applyV8Workarounds } from '../src/gateway/v8-workarounds.js';
import { parseConfig } from '../src/config/load.js';
import type { Identity } from '../src/domain/identity.js';
import { startGateway } from '../src/gateway/app.js';
import type { RequestAuthenticator } from '../src/identity/authenticate-request.js';

const BENCH_AGENT = 'bench-agent';
/** Longer than any benchmark run; also the built-in issuer's (and verifier's) maximum. */
const TOKEN_TTL = '1h';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    auth: { type: 'string', default: 'on' },
    audit: { type: 'string', default: 'on' },
  },
});
if (values.auth !== 'on' && values.auth !== 'off') throw new Error('--auth must be on or off');
if (values.audit !== 'on' && values.audit !== 'off') throw new Error('--audit must be on or off');
// As `warden serve` does, so the benchmark runs the gateway as deployed.
applyV8Workarounds();
const directory = mkdtempSync(join(tmpdir(), 'warden-bench-'));
process.on('exit', () => rmSync(directory, { recursive: true, force: true }));
const upstream = JSON.parse(positionals[0] ?? '{}') as unknown;
const config = parseConfig(
  {
    listen: { host: '127.0.0.1', port: 0 },
    store: `sqlite:${join(directory, 'warden.db')}`,
    log: { level: 'silent' },
    audit: { hash_key_file: join(directory, 'audit-hash.key') },
    auth: {
      resource: 'https://warden.bench/mcp',
      issuers: [{ builtin: { token_ttl: TOKEN_TTL, max_ttl: TOKEN_TTL } }],
    },
    agents: { [BENCH_AGENT]: { roles: ['bench'] } },
    // Every concurrency slot has its own session, as independent agents would: one agent here.
    limits: { max_sessions_per_agent: 64 },
    // One exact grant, as a least-privilege deployment has: every call is decided by Cedar.
    roles: { bench: { grants: [{ tool: 'bench.echo' }] } },
    upstreams: { bench: upstream },
  },
  'bench',
);

const gateway = await startGateway(config, {
  ...(values.auth === 'off' && { authenticator: fixedIdentity(config.environment) }),
  ...(values.audit === 'off' && { recorder: noAudit() }),
});
stopOnSignal(gateway);

let authorization: string | null = null;
if (values.auth === 'on') {
  const agent = config.agents.get(BENCH_AGENT);
  if (!gateway.issuer || !agent) throw new Error('the bench gateway has no issuer or agent');
  const issued = await gateway.issuer.issueToken({ agent });
  authorization = `Bearer ${issued.token}`;
}
process.stdout.write(`${JSON.stringify({ url: `${gateway.url}/mcp/bench`, authorization })}\n`);

/** Every request is `bench-agent`, as a verified token for it would make it. */
function fixedIdentity(environment: string): RequestAuthenticator {
  const identity: Identity = Object.freeze({
    user: undefined,
    delegation: Object.freeze([]),
    agent: BENCH_AGENT,
    roles: Object.freeze(['bench']),
    environment,
    tenant: undefined,
    declaredModel: undefined,
    credential: Object.freeze({
      kind: 'jwt' as const,
      issuer: 'https://warden.bench',
      tokenId: 'bench-no-auth',
      issuedAt: Date.now(),
      expiresAt: Date.now() + 3_600_000,
      scopes: Object.freeze([]),
      boundCertificate: undefined,
    }),
  });
  return { authenticate: () => Promise.resolve(identity) };
}

/** Records nothing: every decision "is recorded" at once, and so is every outcome. */
function noAudit(): CallRecorder {
  const outcome: CallOutcome = Object.freeze({ answered: () => {}, failed: () => {} });
  return { recordDecision: () => Promise.resolve(outcome), close: () => Promise.resolve() };
}
