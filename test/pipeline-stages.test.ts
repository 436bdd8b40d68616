/**
 * The pipeline's exchange stages, from the attacker's side, against a real loopback server that
 * only creates each exchange and runs them (as the listener does): a foreign Host never reaches
 * routing or authentication, and no guarded target (an admin route, an MCP endpoint) runs for a
 * caller the authenticate stage refused, whose refusal is reported once.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { WardenError } from '../src/domain/errors.js';
import type { Identity } from '../src/domain/identity.js';
import { createOriginGuard, type OriginGuard } from '../src/http/origin-guard.js';
import { createExchangeLedger } from '../src/gateway/exchange-ledger.js';
import {
  EXCHANGE_STAGES,
  runExchange,
  type ExchangeStageContext,
  type GatewayRoute,
} from '../src/gateway/pipeline/index.js';

const ledger = createExchangeLedger();
let server: Server;
let base: string;
let guard: OriginGuard;
/** What ran, in order, for the current exchange. */
let steps: string[];
let authFailures: { code: string; reason: string | undefined }[];

const caller = { agent: 'admin-bot', roles: ['warden_admin'] } as unknown as Identity;

const route = (name: string, access: GatewayRoute['access']): GatewayRoute => ({
  access,
  handler: (_request, response, exchange) => {
    steps.push(`${name} handler (identity: ${exchange.identity?.agent ?? 'none'})`);
    response.writeHead(200).end('ok');
    return Promise.resolve();
  },
});

const context: ExchangeStageContext = {
  guard: () => guard,
  isDraining: () => false,
  isReady: () => true,
  endpoints: new Map([
    [
      'tools',
      (_request, response, exchange) => {
        steps.push(`mcp endpoint (identity: ${exchange.identity.agent})`);
        response.writeHead(200).end('ok');
        return Promise.resolve();
      },
    ],
  ]),
  route: (path) => {
    steps.push(`resolve ${path}`);
    if (path === '/admin/revocations') return route('admin', 'authenticated');
    if (path === '/.well-known/jwks.json') return route('jwks', 'public');
    return undefined;
  },
  authenticate: (request, upstream) => {
    steps.push(`authenticate ${upstream ?? 'gateway API'}`);
    return request.headers.authorization === 'Bearer good'
      ? Promise.resolve(caller)
      : Promise.reject(new WardenError('WARDEN_UNAUTHENTICATED'));
  },
  isCallerRefusal: (error) => error instanceof WardenError,
  challenge: () => 'Bearer resource_metadata="https://warden.example/.well-known/x"',
  refusals: {
    reportAuthFailure: (_exchange, failure) => authFailures.push(failure),
    recordRefusal: () => undefined,
  },
  homes: undefined,
  holdsSession: () => false,
  cluster: () => ({ replica: 'test', replicas: [], problems: [] }),
};

before(async () => {
  server = createServer((request, response) => {
    const facts = ledger.open(request, {
      requestId: 'req-1',
      source: '127.0.0.1',
      method: request.method ?? '',
      path: request.url ?? '/',
      traceparent: undefined,
    });
    response.on('close', () => ledger.close(facts));
    void runExchange(
      {
        request,
        response,
        path: (request.url ?? '/').split('?')[0] ?? '/',
        facts,
        signal: new AbortController().signal,
        markServerStream: () => undefined,
        target: undefined,
        challenge: undefined,
        hopped: false,
      },
      context,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;
  guard = createOriginGuard({
    listenHost: '127.0.0.1',
    port,
    allowedHosts: [],
    allowedOrigins: [],
  });
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  steps = [];
  authFailures = [];
});

test('the stages run in the documented order', () => {
  assert.deepEqual(
    EXCHANGE_STAGES.map((stage) => stage.name),
    [
      'answerHealthProbes',
      'acceptHop',
      'guardHostAndOrigin',
      'refuseWhileDraining',
      'resolveTarget',
      'authenticateCaller',
      'hopToSessionHome',
      'dispatch',
    ],
  );
});

test('a rebinding page (foreign Origin) is refused before routing or authentication', async () => {
  const reply = await fetch(`${base}/admin/revocations`, {
    method: 'POST',
    headers: { origin: 'http://evil.example', authorization: 'Bearer good' },
  });
  assert.equal(reply.status, 403);
  assert.deepEqual(steps, []);
});

test("an admin route's handler never runs for a caller the authenticate stage refused", async () => {
  const reply = await fetch(`${base}/admin/revocations`, {
    method: 'POST',
    headers: { authorization: 'Bearer forged' },
  });
  assert.equal(reply.status, 401);
  assert.deepEqual(steps, ['resolve /admin/revocations', 'authenticate gateway API']);
  assert.deepEqual(authFailures, [{ code: 'WARDEN_UNAUTHENTICATED', reason: undefined }]);
  // The challenge names an upstream's resource metadata: the admin API gets none.
  assert.equal(reply.headers.get('www-authenticate'), null);
});

test('an admin route runs for an authenticated caller, who is named to it', async () => {
  const reply = await fetch(`${base}/admin/revocations`, {
    method: 'POST',
    headers: { authorization: 'Bearer good' },
  });
  assert.equal(reply.status, 200);
  assert.deepEqual(steps, [
    'resolve /admin/revocations',
    'authenticate gateway API',
    'admin handler (identity: admin-bot)',
  ]);
  assert.deepEqual(authFailures, []);
});

test('an MCP endpoint never sees a refused caller, who is challenged', async () => {
  const reply = await fetch(`${base}/mcp/tools`, { method: 'POST' });
  assert.equal(reply.status, 401);
  assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer resource_metadata=/);
  assert.deepEqual(steps, ['resolve /mcp/tools', 'authenticate tools']);
  assert.equal(authFailures.length, 1);
});

test('a public document is served without authentication', async () => {
  const reply = await fetch(`${base}/.well-known/jwks.json`);
  assert.equal(reply.status, 200);
  assert.deepEqual(steps, ['resolve /.well-known/jwks.json', 'jwks handler (identity: none)']);
});
