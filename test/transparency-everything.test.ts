/**
 * A real SDK client gets the same answers from server-everything directly and through Warden,
 * over an HTTP upstream and over a stdio upstream.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EVERYTHING_ENTRY, startEverythingHttp } from './support/everything-server.js';
import { runEverythingSession, type EverythingTranscript } from './support/everything-session.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

let upstream: { url: string; stop(): Promise<void> };
let gateway: TestGateway;
let direct: EverythingTranscript;

before(async () => {
  upstream = await startEverythingHttp();
  gateway = await startTestGateway({
    upstreams: {
      everything: { url: upstream.url },
      everything_stdio: { command: [process.execPath, EVERYTHING_ENTRY, 'stdio'] },
    },
  });
  direct = await runEverythingSession(upstream.url);
});

after(async () => {
  await gateway?.close();
  await upstream?.stop();
});

test('the direct session exercises every message kind', () => {
  assert.ok(direct.tools.length >= 10, `expected many tools, got ${direct.tools.join(', ')}`);
  assert.ok(direct.progress.length >= 2, 'progress notifications arrive');
  assert.equal(direct.samplingRequests.length, 1, 'the server asked the client to sample once');
  assert.ok((direct.resourcePages[0]?.length ?? 0) >= 2, 'resources are listed');
  assert.match(JSON.stringify(direct.roots), /warden-root/, 'the server read the client roots');
});

/**
 * Identical, except for a call to a tool the server does not list: the server answers "not
 * found", while Warden refuses it before forwarding (nothing unlisted can be pinned or checked).
 */
function assertSameAsDirect(viaWarden: typeof direct): void {
  const withoutToolError = (transcript: typeof direct) =>
    Object.fromEntries(Object.entries(transcript).filter(([key]) => key !== 'toolError'));
  assert.deepEqual(withoutToolError(viaWarden), withoutToolError(direct));
  assert.match(String(viaWarden.toolError), /WARDEN_TOOL_NOT_APPROVED/);
}

test('through an HTTP upstream, the client sees exactly what it sees directly', async () => {
  const viaWarden = await runEverythingSession(
    gateway.endpoint('everything'),
    await gateway.authHeaders(),
  );
  assertSameAsDirect(viaWarden);
});

test('through a stdio upstream, the client sees exactly what it sees directly', async () => {
  const viaWarden = await runEverythingSession(
    gateway.endpoint('everything_stdio'),
    await gateway.authHeaders(),
  );
  assertSameAsDirect(viaWarden);
});
