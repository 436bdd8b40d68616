// Runs Warden in its own process for the benchmark, so the load generator's CPU use is not
// charged to the gateway:
//   node --import tsx bench/warden-process.ts '<upstream config as JSON>'
// It serves that upstream as `bench` on 127.0.0.1 (port 0) and prints the MCP endpoint URL.
import { stopOnSignal } from '../src/cli/run-until-signal.js';
import { parseConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway/app.js';

const upstream = JSON.parse(process.argv[2] ?? '{}') as unknown;
const config = parseConfig(
  {
    listen: { host: '127.0.0.1', port: 0 },
    store: 'sqlite::memory:',
    log: { level: 'silent' },
    upstreams: { bench: upstream },
  },
  'bench',
);
const gateway = await startGateway(config);
stopOnSignal(gateway);
process.stdout.write(`${gateway.url}/mcp/bench\n`);
