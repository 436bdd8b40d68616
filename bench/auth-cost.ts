/**
 * What authenticating one request costs Warden, measured in-process without HTTP, so that the
 * result does not drown in the noise of the end-to-end benchmark on a shared machine:
 *
 *   node --import tsx bench/auth-cost.ts [--calls 200000] [--rounds 5]
 *
 * It sets up authentication exactly as the gateway does (built-in issuer, SQLite store in
 * memory, one agent), mints one token, and times the authenticator on it: the first call
 * verifies the signature; every later one is the steady state of an agent reusing its token
 * (the verified-token cache hit, revocation check, identity building). Compare the steady-state
 * microseconds with Warden's gateway CPU per call in `npm run bench`.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.js';
import { setUpAuthentication } from '../src/gateway/authentication.js';
import { createLogger } from '../src/gateway/logger.js';
import type { AuthenticationInput } from '../src/identity/authenticate-request.js';
import { openStore } from '../src/store/open-store.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '5' },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(rounds) || rounds < 1) {
  throw new Error('--calls and --rounds must be positive integers');
}

const config = parseConfig(
  {
    listen: { host: '127.0.0.1', port: 0 },
    store: 'sqlite::memory:',
    log: { level: 'silent' },
    auth: {
      resource: 'https://warden.bench/mcp',
      issuers: [{ builtin: { token_ttl: '1h', max_ttl: '1h' } }],
    },
    agents: { 'bench-agent': { roles: ['bench'] } },
    roles: { bench: {} },
    upstreams: { bench: { url: 'http://127.0.0.1:9/mcp' } },
  },
  'bench',
);
const logger = createLogger('silent');
const store = await openStore(config.store);
// The audit log is not part of what this measures.
const authentication = await setUpAuthentication(config, store, logger, () => undefined);
try {
  const agent = config.agents.get('bench-agent');
  if (!authentication.issuer || !agent) throw new Error('no built-in issuer or agent');
  const { token } = await authentication.issuer.issueToken({ agent });
  const input: AuthenticationInput = {
    authorization: `Bearer ${token}`,
    url: '/mcp/bench',
    upstream: 'bench',
    clientCertificate: undefined,
    declaredModel: undefined,
  };
  const { authenticator } = authentication;

  const firstStarted = performance.now();
  await authenticator.authenticate(input);
  const firstMs = performance.now() - firstStarted;

  const perCallUs: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < calls; i += 1) await authenticator.authenticate(input);
    const cpu = process.cpuUsage(cpuBefore);
    perCallUs.push((cpu.user + cpu.system) / calls);
  }
  perCallUs.sort((a, b) => a - b);
  const median = perCallUs[Math.floor(perCallUs.length / 2)] ?? Number.NaN;
  process.stdout.write(
    `first call (signature verified): ${firstMs.toFixed(2)} ms\n` +
      `steady state (cached token): median ${median.toFixed(2)} µs CPU per request over ` +
      `${rounds} rounds of ${calls} (min ${perCallUs[0]?.toFixed(2)}, ` +
      `max ${perCallUs[perCallUs.length - 1]?.toFixed(2)})\n`,
  );
} finally {
  await authentication.close();
  await store.close();
}
