/** The reference `@modelcontextprotocol/server-everything`, run over Streamable HTTP or stdio. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { findFreePort, startProcess, waitForPort } from './processes.js';

const require = createRequire(import.meta.url);

/** Path of the server's entry script. */
export const EVERYTHING_ENTRY = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);

export async function startEverythingHttp(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await findFreePort();
  const process_ = startProcess(process.execPath, [EVERYTHING_ENTRY, 'streamableHttp'], {
    PORT: String(port),
  });
  await waitForPort(port);
  return { url: `http://127.0.0.1:${port}/mcp`, stop: () => process_.stop() };
}
