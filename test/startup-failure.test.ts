/**
 * A gateway that fails to start leaves nothing running: the store, its worker thread and every
 * timer are closed again, so a supervisor can retry and a test process can exit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTestGateway } from './support/gateway.js';

test('a port already in use fails the start cleanly, and the same store opens again', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const address = blocker.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const dir = mkdtempSync(join(tmpdir(), 'warden-start-'));
  const raw = {
    store: `sqlite:${join(dir, 'warden.db')}`,
    audit: { hash_key_file: join(dir, 'hash.key') },
    log: { level: 'silent' },
    upstreams: { a: { url: 'http://127.0.0.1:9/mcp' } },
  };
  try {
    await assert.rejects(
      startTestGateway({ ...raw, listen: { host: '127.0.0.1', port } }),
      /EADDRINUSE/,
    );
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
  // The failed start released the store: a new gateway on it starts and stops normally.
  const gateway = await startTestGateway({ ...raw, listen: { host: '127.0.0.1', port: 0 } });
  await gateway.close();
});
