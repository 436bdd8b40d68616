// The life of a stdio upstream's child process, seen from the client: a child that dies is
// restarted behind the same session; a call caught by the death, or by a slow tool, is answered
// with an error instead of hanging; ending the session or the gateway leaves no process behind.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  answerIn,
  assertInBandError,
  assertWardenError,
  openSession,
  postMcp,
  sendRaw,
  type WireMessage,
} from './support/raw-http.js';

const PID_SERVER = fileURLToPath(new URL('./fixtures/pid-server.ts', import.meta.url));
const COMMAND = [process.execPath, '--import', 'tsx', PID_SERVER];
const SLOW_TIMEOUT_MS = 1500;
const BACKOFF_MAX_MS = 3000;

let gateway: TestGateway;
let auth: Record<string, string>;
let nextId = 1;

before(async () => {
  gateway = await startTestGateway({
    upstreams: {
      pids: {
        command: COMMAND,
        timeout: '10s',
        restart_backoff: '100ms',
        restart_backoff_max: `${BACKOFF_MAX_MS}ms`,
      },
      slow: { command: COMMAND, timeout: SLOW_TIMEOUT_MS },
    },
  });
  auth = await gateway.authHeaders();
});

after(async () => {
  await gateway?.close();
});

async function callTool(
  endpoint: string,
  sessionId: string,
  name: string,
  args: Record<string, unknown> = {},
  headers: Record<string, string> = auth,
): Promise<WireMessage> {
  const id = nextId++;
  const reply = await postMcp(
    endpoint,
    { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } },
    { sessionId, headers },
  );
  assert.equal(reply.status, 200, reply.text);
  return answerIn(reply, id);
}

async function childPid(
  endpoint: string,
  sessionId: string,
  headers: Record<string, string> = auth,
): Promise<number> {
  const answer = await callTool(endpoint, sessionId, 'pid', {}, headers);
  const text = (answer.result?.['content'] as { text: string }[] | undefined)?.[0]?.text;
  const pid = Number(text);
  assert.ok(Number.isInteger(pid) && pid > 0, `no pid in ${JSON.stringify(answer)}`);
  return pid;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`${what} did not happen within ${ms} ms`);
}

async function waitForStderr(line: string): Promise<void> {
  await waitFor(line, async () =>
    gateway.logs.some((log) => String(log['stderr']).includes(line)) ? true : undefined,
  );
}

function restartDelaysLogged(): unknown[] {
  return gateway.logs
    .filter((log) => log['msg'] === 'stdio upstream exited; restarting')
    .map((log) => log['restartInMs']);
}

/** Kills the session's child and waits for its replacement to answer the same session. */
async function killAndAwaitReplacement(endpoint: string, sessionId: string, victim: number) {
  process.kill(victim, 'SIGKILL');
  // The gateway replays the session's initialize to the new child; the client only retries.
  const replacement = await waitFor('a new child answering the session', async () => {
    const pid = await childPid(endpoint, sessionId);
    return pid === victim ? undefined : pid;
  });
  assert.equal(isAlive(victim), false);
  return replacement;
}

test('a killed child is restarted with backoff and the same session keeps working', async () => {
  const endpoint = gateway.endpoint('pids');
  const sessionId = await openSession(endpoint, auth);
  const delaysBefore = restartDelaysLogged().length;
  const first = await childPid(endpoint, sessionId);
  const second = await killAndAwaitReplacement(endpoint, sessionId, first);
  const third = await killAndAwaitReplacement(endpoint, sessionId, second);
  assert.equal(new Set([first, second, third]).size, 3);
  // A child that then runs longer than the longest backoff was healthy: the streak starts over.
  await sleep(BACKOFF_MAX_MS + 100);
  await killAndAwaitReplacement(endpoint, sessionId, third);
  assert.deepEqual(restartDelaysLogged().slice(delaysBefore), [100, 200, 100]);
});

test('a call in flight when its child dies gets a JSON-RPC error, not a hang', async () => {
  const endpoint = gateway.endpoint('pids');
  const sessionId = await openSession(endpoint, auth);
  const pid = await childPid(endpoint, sessionId);
  const inFlight = callTool(endpoint, sessionId, 'sleep', { ms: 30_000 });
  await waitForStderr(`sleeping ${pid}`);
  process.kill(pid, 'SIGKILL');
  const answer = await Promise.race([
    inFlight,
    sleep(5000).then(() => assert.fail('the in-flight call was left hanging')),
  ]);
  assertInBandError(answer, 'WARDEN_UPSTREAM_UNAVAILABLE');
  await waitFor('the session working again', async () => childPid(endpoint, sessionId));
});

test('DELETE ends the session and stops its child', async () => {
  const endpoint = gateway.endpoint('pids');
  const sessionId = await openSession(endpoint, auth);
  const pid = await childPid(endpoint, sessionId);
  const deleted = await sendRaw(endpoint, {
    method: 'DELETE',
    headers: { ...auth, 'mcp-session-id': sessionId },
  });
  assert.equal(deleted.status, 200);
  await waitFor('the child exiting', async () => (isAlive(pid) ? undefined : true), 5000);
  const reused = await postMcp(
    endpoint,
    { jsonrpc: '2.0', id: 1, method: 'tools/list' },
    { sessionId, headers: auth },
  );
  assertWardenError(reused, 'WARDEN_SESSION_NOT_FOUND', 1);
});

test('a tool slower than the upstream timeout is answered with WARDEN_UPSTREAM_TIMEOUT', async () => {
  const endpoint = gateway.endpoint('slow');
  const sessionId = await openSession(endpoint, auth);
  const started = Date.now();
  const answer = await callTool(endpoint, sessionId, 'sleep', { ms: 20_000 });
  const elapsed = Date.now() - started;
  assertInBandError(answer, 'WARDEN_UPSTREAM_TIMEOUT');
  assert.ok(elapsed >= SLOW_TIMEOUT_MS - 50 && elapsed < SLOW_TIMEOUT_MS + 1500, `${elapsed} ms`);
  // The session is still usable: a quick call on it answers.
  assert.ok((await callTool(endpoint, sessionId, 'pid')).result);
});

test('closing the gateway stops every child, busy or idle', async () => {
  const own = await startTestGateway({
    limits: { shutdown_grace: '200ms' },
    upstreams: { pids: { command: COMMAND } },
  });
  const endpoint = own.endpoint('pids');
  const ownAuth = await own.authHeaders();
  const sessions = await Promise.all([
    openSession(endpoint, ownAuth),
    openSession(endpoint, ownAuth),
  ]);
  const pids = await Promise.all(
    sessions.map((sessionId) => childPid(endpoint, sessionId, ownAuth)),
  );
  const busy = pids[0] ?? 0;
  const inFlight = callTool(endpoint, sessions[0] ?? '', 'sleep', { ms: 30_000 }, ownAuth).catch(
    () => undefined,
  );
  await waitFor('the busy call starting', async () =>
    own.logs.some((log) => String(log['stderr']).includes(`sleeping ${busy}`)) ? true : undefined,
  );
  await own.close();
  assert.deepEqual(
    pids.filter((pid) => isAlive(pid)),
    [],
    'children still running after close() resolved',
  );
  await inFlight;
});
