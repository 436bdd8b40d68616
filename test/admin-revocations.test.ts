/**
 * Revocation through the admin API: only an admin agent may revoke, the operator is whoever the
 * token says (never a parameter), and a revoked credential stops on the very next request.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

let upstream: ScriptedUpstream;
let gateway: TestGateway;

before(async () => {
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    log: { level: 'info' },
    agents: {
      'test-agent': { roles: ['tester'] },
      'ops-admin': { roles: ['warden_admin'] },
      'viewer-bot': { roles: ['viewer'] },
    },
    upstreams: { fixture: { url: upstream.url } },
  });
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
});

async function initialize(token: string): Promise<number> {
  const response = await fetch(gateway.endpoint('fixture'), {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      },
    }),
  });
  await response.body?.cancel();
  return response.status;
}

async function revoke(token: string | undefined, body: unknown): Promise<Response> {
  return fetch(`${gateway.url}/admin/revocations`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
}

test('an admin revokes a token by id and it stops on the very next request', async () => {
  const victim = await gateway.token({ user: 'mallory@example.com' });
  assert.equal(await initialize(victim), 200);
  const jti = decodeJwt(victim).jti;
  const response = await revoke(
    await gateway.token({ agent: 'ops-admin', user: 'oscar@example.com' }),
    {
      kind: 'token',
      subject: jti,
      reason: 'leaked in a CI log',
      revokedBy: 'someone-else',
    },
  );
  assert.equal(response.status, 201);
  assert.equal(await initialize(victim), 401);
  const line = gateway.logs.find((entry) => entry['event'] === 'token.revoked');
  assert.equal(
    line?.['revokedBy'],
    'user:oscar@example.com via ops-admin',
    'the operator comes from the token',
  );
  assert.equal(line?.['reason'], 'leaked in a CI log');
});

test('revoking an agent stops every token it was issued so far', async () => {
  const first = await gateway.token();
  const second = await gateway.token({ user: 'ada@example.com' });
  const response = await revoke(await gateway.token({ agent: 'ops-admin' }), {
    kind: 'agent',
    subject: 'test-agent',
    reason: 'compromised host',
  });
  assert.equal(response.status, 201);
  assert.equal(await initialize(first), 401);
  assert.equal(await initialize(second), 401);
});

test('refuses a revocation from an agent without the admin role (403)', async () => {
  const response = await revoke(await gateway.token({ agent: 'viewer-bot' }), {
    kind: 'user',
    subject: 'ada@example.com',
    reason: 'x',
  });
  assert.equal(response.status, 403);
  const body = (await response.json()) as { error: { data: { code: string } } };
  assert.equal(body.error.data.code, 'WARDEN_FORBIDDEN');
});

test('refuses an anonymous revocation (401) and a malformed one (400)', async () => {
  assert.equal((await revoke(undefined, { kind: 'user', subject: 'x', reason: 'y' })).status, 401);
  const admin = await gateway.token({ agent: 'ops-admin' });
  assert.equal(
    (await revoke(admin, { kind: 'everything', subject: 'x', reason: 'y' })).status,
    400,
  );
  assert.equal((await revoke(admin, { kind: 'user', subject: 'x' })).status, 400);
});
