// Every refusal a client is answered with leaves an audit record findable by the reference it was
// given (data.reference, x-request-id). The error catalogue is walked code by code: each code a
// request can bring about is brought about against a running gateway, from the outside, and its
// record is looked up by that reference. A code that is neither triggered here nor excluded with
// a reason fails the last test, so a new code cannot be added without saying how it is recorded.
// Then the properties that make it hold: admin routes fail authentication through the same
// door, floods are aggregated per source, and nothing is recorded twice.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tellCallStory } from '../src/audit/call-story.js';
import type { AgentConfig } from '../src/config/config.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import type { BuiltinIssuer } from '../src/identity/builtin-issuer.js';
import {
  ERROR_CATALOGUE,
  httpStatusOf,
  WardenError,
  type ErrorCode,
} from '../src/domain/errors.js';
import {
  freshSource,
  referenceOf,
  sendFrom,
  startAuditedGateway,
  type AuditedGateway,
  type AuditReader,
} from './support/audit-reader.js';
import { TEST_AGENT, TEST_RESOURCE, TESTER_ROLE, type TestGateway } from './support/gateway.js';
import {
  initializeRequest,
  MCP_POST_HEADERS,
  openSession,
  startStalledPost,
  type RawReply,
  type WireMessage,
} from './support/raw-http.js';
import {
  sendJson,
  startScriptedUpstream,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';

/**
 * Codes no request can bring about by itself, and why. Each is covered where its cause can be
 * staged (the file named).
 */
const NOT_TRIGGERABLE: Partial<Record<ErrorCode, string>> = {
  WARDEN_AUDIT_UNAVAILABLE:
    'the audit log cannot take a record, so by definition none is written; the audit_unavailable alert names the request id (test/audit-gateway.test.ts)',
  WARDEN_POLICY_ERROR:
    'the policy engine or the quota store failing inside the gateway; what a client sends is judged, it cannot make the judging fail (test/safe-failure.test.ts breaks the engine)',
  WARDEN_APPROVAL_UNAVAILABLE:
    'the approval store failing inside the gateway (test/approvals.test.ts)',
  WARDEN_INTERNAL:
    'an unexpected failure, a bug: no request should cause one, and a request that does belongs in this file as a regression test of its fix',
};

const TOOLS_LIST = { jsonrpc: '2.0', id: 'list', method: 'tools/list' };
const MODERN = '2026-07-28';
const FAR_ISSUER = 'http://127.0.0.1:9';
const OBJECT_SCHEMA = { type: 'object', properties: {} };

let upstream: ScriptedUpstream;
/** The description of the `mutable` tool, which a test changes behind the gateway's back. */
let mutableDescription = 'version 1';
let main: AuditedGateway;
const extra: AuditedGateway[] = [];
/** The tester's token and its session on `fixture`. */
let token: string;
let sessionId: string;

before(async () => {
  process.env['WARDEN_TEST_EXCHANGE_SECRET'] = 'exchange-secret';
  upstream = await startScriptedUpstream();
  upstream.intercept = misbehave;
  main = await startAuditedGateway('refusals', {
    log: { level: 'info' },
    limits: { max_body_bytes: 64 * 1024, request_timeout: '1s', headers_timeout: '1s' },
    auth: {
      resource: TEST_RESOURCE,
      required_scopes: ['mcp'],
      issuers: [{ builtin: {} }, { issuer: FAR_ISSUER, jwks_uri: `${FAR_ISSUER}/jwks` }],
    },
    agents: {
      [TEST_AGENT]: { roles: ['tester'] },
      'limited-bot': { roles: ['limited'] },
      'viewer-bot': { roles: ['viewer'] },
      'admin-bot': { roles: ['warden_admin'] },
      console: { roles: ['warden_approver'] },
    },
    roles: {
      tester: TESTER_ROLE,
      viewer: { grants: [] },
      limited: {
        grants: [
          { tool: 'fixture.echo', scope: ['small_amount', 'known_vendor'] },
          { tool: 'fixture.counted' },
          {
            tool: 'fixture.paid',
            requires_approval: true,
            approvers: ['finance_approver'],
            approval_timeout: '5m',
          },
          {
            tool: 'fixture.expiring',
            requires_approval: true,
            approvers: ['finance_approver'],
            approval_timeout: '1s',
          },
        ],
      },
    },
    scopes: {
      small_amount: { arg: 'amount', max: 10, required: false },
      known_vendor: { arg: 'vendor', in: ['acme'], required: false },
    },
    quotas: [
      { name: 'counted_once', per: 'agent', tool: 'fixture.counted', limit: 1, window: '1h' },
    ],
    approvals: {
      approvers: { 'carol@example.com': { roles: ['finance_approver'] } },
      delivery: 'hold', // the held call's refusals are told on the call that waited
    },
    upstreams: {
      fixture: { url: upstream.url },
      slow: { url: upstream.url, timeout: '300ms' },
      flaky: { url: upstream.url, circuit_breaker: { failures: 1, open_for: '10m' } },
      dead: { url: 'http://127.0.0.1:9/mcp' },
      // Warden's credential for it is exchanged per caller at an authorization server that is down.
      exchanged: {
        url: upstream.url,
        credential: {
          token_exchange: {
            token_endpoint: 'http://127.0.0.1:9/token',
            audience: 'https://exchanged.example',
            client_id: 'warden',
            client_secret_env: 'WARDEN_TEST_EXCHANGE_SECRET',
          },
        },
      },
    },
  });
  token = await main.gateway.token();
  sessionId = await openSession(url('fixture'), bearer(token));
});

after(async () => {
  for (const gateway of extra) await gateway.close();
  await main?.close();
  await upstream?.close();
});

/** The scripted upstream's tools, and the ways it misbehaves on purpose. */
function misbehave(
  message: WireMessage | undefined,
  request: Parameters<NonNullable<ScriptedUpstream['intercept']>>[1],
  response: Parameters<NonNullable<ScriptedUpstream['intercept']>>[2],
): boolean {
  if (message?.method === 'tools/list') {
    const tools = ['echo', 'counted', 'paid', 'expiring', 'stall', 'garbage', 'fail'].map(
      (name) => ({ name, inputSchema: OBJECT_SCHEMA }),
    );
    tools.push(
      {
        name: 'strict',
        inputSchema: {
          type: 'object',
          properties: { n: { type: 'number' } },
          required: ['n'],
        } as typeof OBJECT_SCHEMA,
      },
      { name: 'mutable', description: mutableDescription, inputSchema: OBJECT_SCHEMA } as never,
    );
    sendJson(response, 200, { jsonrpc: '2.0', id: message.id, result: { tools } });
    return true;
  }
  if (message?.method === 'tools/call') {
    switch (message.params?.['name']) {
      case 'stall':
        return true;
      case 'garbage':
        response.writeHead(200, { 'content-type': 'application/json' }).end('this is not json');
        return true;
      case 'fail':
        response.writeHead(500).end('boom');
        return true;
    }
  }
  if (request.method === 'GET') {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write(': open\n\n');
    return true;
  }
  if (message?.method === 'notifications/refused-upstream') {
    sendJson(response, 400, { jsonrpc: '2.0', id: null, error: { code: -1, message: 'no' } });
    return true;
  }
  return false;
}

function url(upstreamName: string, gateway: TestGateway = main.gateway): string {
  return gateway.endpoint(upstreamName);
}

function bearer(value: string): Record<string, string> {
  return { authorization: `Bearer ${value}` };
}

/** POSTs from a source no other request came from, so no aggregation hides its record. */
function post(
  target: string,
  body: unknown,
  options: { token?: string; sessionId?: string; headers?: Record<string, string> } = {},
): Promise<RawReply> {
  return sendFrom(freshSource(), target, {
    method: 'POST',
    headers: {
      ...MCP_POST_HEADERS,
      ...(options.token !== undefined && bearer(options.token)),
      ...(options.sessionId !== undefined && { 'mcp-session-id': options.sessionId }),
      ...options.headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function toolCall(name: string, args: Record<string, unknown> = {}, id: string | number = 'call') {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } };
}

/** A 2026-07-28 request: its `_meta` envelope and mirrored headers, overridable. */
function postModern(
  method: string,
  params: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<RawReply> {
  const name = params['name'];
  return post(
    url('fixture'),
    {
      jsonrpc: '2.0',
      id: 7,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': MODERN,
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    },
    {
      token,
      headers: {
        'mcp-protocol-version': MODERN,
        'mcp-method': method,
        ...(typeof name === 'string' && { 'mcp-name': name }),
        ...headers,
      },
    },
  );
}

/** A token of the tester's with what the test support's `token()` does not set. */
async function issue(
  options: Omit<Parameters<BuiltinIssuer['issueToken']>[0], 'agent'>,
): Promise<string> {
  const issuer = main.gateway.issuer;
  assert.ok(issuer, 'the main gateway has the built-in issuer');
  // The issuer looks the agent up by id in its own registry.
  const issued = await issuer.issueToken({ agent: { id: TEST_AGENT } as AgentConfig, ...options });
  return issued.token;
}

async function tokenOf(agent: string, user?: string): Promise<string> {
  return main.gateway.token({ agent, ...(user !== undefined && { user }) });
}

/** An agent's own session on one of the main gateway's upstreams. */
async function sessionOf(agentToken: string, upstreamName = 'fixture'): Promise<string> {
  return openSession(url(upstreamName), bearer(agentToken));
}

/** The bare HTTP reply in raw text read off a socket. */
function parseRawReply(text: string): RawReply {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    }),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, text: body };
}

/** Approvals API calls as the approvals console, on Carol's behalf. */
async function approvals(path: string, body?: unknown): Promise<RawReply> {
  const consoleToken = await tokenOf('console', 'carol@example.com');
  return sendFrom(freshSource(), `${main.gateway.url}/admin/approvals${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...bearer(consoleToken), 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

/** Starts a call that waits for approval, and finds its pending approval request. */
async function holdPaidCall(
  user: string,
): Promise<{ held: Promise<RawReply>; approvalId: string }> {
  const bot = await tokenOf('limited-bot', user);
  const botSession = await sessionOf(bot);
  const held = post(url('fixture'), toolCall('paid', { amount: 5 }), {
    token: bot,
    sessionId: botSession,
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const listed = JSON.parse((await approvals('?status=pending')).text) as {
      approvals: { id: string; user: string | null }[];
    };
    const mine = listed.approvals.find((approval) => approval.user === user);
    if (mine) return { held, approvalId: mine.id };
    await sleep(50);
  }
  throw new Error(`no pending approval for ${user}`);
}

/** How to bring about each code from the outside; the reply carries the reference. */
const TRIGGERS: Partial<
  Record<ErrorCode, () => Promise<{ reply: RawReply; audit?: AuditReader }>>
> = {
  WARDEN_PARSE_ERROR: async () => ({
    reply: await post(url('fixture'), 'not json', { token, sessionId }),
  }),
  WARDEN_INVALID_MESSAGE: async () => ({
    reply: await post(url('fixture'), '{}', { token, sessionId }),
  }),
  WARDEN_BATCH_UNSUPPORTED: async () => ({
    reply: await post(url('fixture'), [TOOLS_LIST], { token, sessionId }),
  }),
  WARDEN_NESTING_TOO_DEEP: async () => ({
    reply: await post(url('fixture'), '['.repeat(20_000), { token, sessionId }),
  }),
  WARDEN_NUMBER_OUT_OF_RANGE: async () => ({
    reply: await post(
      url('fixture'),
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"amount":1e999}}}',
      { token, sessionId },
    ),
  }),
  WARDEN_INVALID_UNICODE: async () => ({
    reply: await post(
      url('fixture'),
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\\ud800"}}}',
      { token, sessionId },
    ),
  }),
  WARDEN_INVALID_PATH: async () => ({
    reply: await sendFrom(freshSource(), `${main.gateway.url}/mcp/%`),
  }),
  WARDEN_REQUEST_TIMEOUT: async () => {
    const stalled = await startStalledPost(url('fixture'), {
      ...bearer(token),
      'mcp-session-id': sessionId,
    });
    await stalled.closedWithin(15_000);
    stalled.socket.destroy();
    return { reply: parseRawReply(stalled.received()) };
  },
  WARDEN_UNSUPPORTED_MEDIA_TYPE: async () => ({
    reply: await post(url('fixture'), TOOLS_LIST, {
      token,
      sessionId,
      headers: { 'content-type': 'text/plain' },
    }),
  }),
  WARDEN_NOT_ACCEPTABLE: async () => ({
    reply: await post(url('fixture'), TOOLS_LIST, {
      token,
      sessionId,
      headers: { accept: 'text/html' },
    }),
  }),
  WARDEN_BODY_TOO_LARGE: async () => ({
    reply: await post(url('fixture'), toolCall('echo', { text: 'x'.repeat(100_000) }), {
      token,
      sessionId,
    }),
  }),
  WARDEN_METHOD_NOT_ALLOWED: async () => ({
    reply: await sendFrom(freshSource(), url('fixture'), {
      method: 'PUT',
      headers: { ...MCP_POST_HEADERS, ...bearer(token) },
      body: JSON.stringify(TOOLS_LIST),
    }),
  }),
  WARDEN_UNKNOWN_UPSTREAM: async () => ({
    reply: await post(`${main.gateway.url}/mcp/nope`, initializeRequest()),
  }),
  WARDEN_NOT_FOUND: async () => ({
    reply: await sendFrom(freshSource(), `${main.gateway.url}/wp-admin/setup.php`),
  }),
  WARDEN_SESSION_REQUIRED: async () => ({
    reply: await post(url('fixture'), TOOLS_LIST, { token }),
  }),
  WARDEN_SESSION_NOT_FOUND: async () => ({
    reply: await post(url('fixture'), TOOLS_LIST, { token, sessionId: 'guessed-session' }),
  }),
  // A client posing as another replica (this gateway takes no relayed requests at all).
  WARDEN_HOP_REFUSED: async () => ({
    reply: await post(url('fixture'), TOOLS_LIST, {
      token,
      sessionId,
      headers: { 'warden-hop-from': 'replica-a', 'warden-hop-signature': 'forged' },
    }),
  }),
  WARDEN_SESSION_CONFLICT: async () => ({
    reply: await post(url('fixture'), initializeRequest(), { token, sessionId }),
  }),
  WARDEN_UNSUPPORTED_PROTOCOL_VERSION: async () => ({
    reply: await post(url('fixture'), initializeRequest(), {
      token,
      headers: { 'mcp-protocol-version': 'latest' },
    }),
  }),
  WARDEN_INVALID_ENVELOPE: async () => ({
    reply: await post(url('fixture'), TOOLS_LIST, {
      token,
      headers: { 'mcp-protocol-version': MODERN },
    }),
  }),
  WARDEN_METHOD_NOT_FOUND: async () => ({ reply: await postModern('no/such-method', {}) }),
  WARDEN_INVALID_REQUEST_STATE: async () => ({
    // The retry of a multi round-trip request, with a requestState this gateway never minted.
    reply: await postModern('tools/list', { requestState: 'forged-state' }),
  }),
  WARDEN_TASK_INVALID: async () => ({
    // Polling a task of the gateway's that is not the caller's (here: none has this id).
    reply: await post(
      url('fixture'),
      { jsonrpc: '2.0', id: 'task', method: 'tasks/get', params: { taskId: 'warden-approval-x' } },
      { token, sessionId },
    ),
  }),
  WARDEN_HEADER_MISMATCH: async () => ({
    reply: await postModern('tools/list', {}, { 'mcp-method': 'tools/call' }),
  }),
  WARDEN_UNAUTHENTICATED: async () => ({
    reply: await post(url('fixture'), initializeRequest()),
  }),
  WARDEN_INVALID_TOKEN: async () => ({
    reply: await post(url('fixture'), initializeRequest(), { token: 'not.a.token' }),
  }),
  WARDEN_INSUFFICIENT_SCOPE: async () => ({
    reply: await post(url('fixture'), initializeRequest(), {
      token: await issue({ scopes: [] }),
    }),
  }),
  WARDEN_INVALID_AUTH_REQUEST: async () => ({
    reply: await post(`${url('fixture')}?access_token=${token}`, initializeRequest()),
  }),
  WARDEN_CERTIFICATE_REQUIRED: async () => ({
    // Bound to a client certificate (RFC 8705), presented without one.
    reply: await post(url('fixture'), initializeRequest(), {
      token: await issue({ certificateThumbprint: 'A'.repeat(43) }),
    }),
  }),
  WARDEN_FORBIDDEN: async () => ({
    reply: await post(
      `${main.gateway.url}/admin/revocations`,
      { kind: 'user', subject: 'ada@example.com', reason: 'probing' },
      { token: await tokenOf('viewer-bot') },
    ),
  }),
  WARDEN_ISSUER_UNAVAILABLE: async () => {
    const now = Math.floor(Date.now() / 1000);
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const forged = [
      part({ alg: 'ES256', typ: 'at+jwt', kid: 'far-key' }),
      part({
        iss: FAR_ISSUER,
        aud: TEST_RESOURCE,
        sub: 'someone',
        client_id: TEST_AGENT,
        warden_env: 'development',
        iat: now,
        exp: now + 300,
        jti: 'far-token',
      }),
      Buffer.alloc(64, 1).toString('base64url'),
    ].join('.');
    return { reply: await post(url('fixture'), initializeRequest(), { token: forged }) };
  },
  WARDEN_FORBIDDEN_HOST: async () => ({
    reply: await post(url('fixture'), initializeRequest(), {
      token,
      headers: { host: 'evil.example' },
    }),
  }),
  WARDEN_FORBIDDEN_ORIGIN: async () => ({
    reply: await post(url('fixture'), initializeRequest(), {
      token,
      headers: { origin: 'http://evil.example' },
    }),
  }),
  WARDEN_TOO_MANY_SESSIONS: async () => {
    const full = await startExtra('sessions-full', {
      limits: { max_sessions: 1 },
      agents: { first: { roles: ['tester'] }, second: { roles: ['tester'] } },
    });
    await openSession(
      url('fixture', full.gateway),
      await full.gateway.authHeaders({ agent: 'first' }),
    );
    const second = await full.gateway.token({ agent: 'second' });
    const reply = await post(url('fixture', full.gateway), initializeRequest(), { token: second });
    return { reply, audit: full.audit };
  },
  WARDEN_TOO_MANY_SESSIONS_FOR_AGENT: async () => {
    const capped = await startExtra('sessions-per-agent', {
      limits: { max_sessions_per_agent: 1 },
    });
    // The agent's one session is in use (its server stream open): none idle to end for a new one.
    const own = await capped.gateway.token();
    const busy = await openSession(url('fixture', capped.gateway), bearer(own));
    const stream = new AbortController();
    const opened = await fetch(url('fixture', capped.gateway), {
      headers: { ...bearer(own), accept: 'text/event-stream', 'mcp-session-id': busy },
      signal: stream.signal,
    });
    assert.equal(opened.status, 200);
    try {
      const reply = await post(url('fixture', capped.gateway), initializeRequest(), { token: own });
      return { reply, audit: capped.audit };
    } finally {
      stream.abort();
    }
  },
  WARDEN_UPSTREAM_CREDENTIAL_FAILED: async () => ({
    reply: await post(url('exchanged'), initializeRequest(), { token }),
  }),
  WARDEN_UPSTREAM_UNAVAILABLE: async () => ({
    reply: await post(url('dead'), initializeRequest(), { token }),
  }),
  WARDEN_UPSTREAM_TIMEOUT: async () => ({
    reply: await post(url('slow'), toolCall('stall'), {
      token,
      sessionId: await sessionOf(token, 'slow'),
    }),
  }),
  WARDEN_UPSTREAM_PROTOCOL_ERROR: async () => ({
    reply: await post(url('fixture'), toolCall('garbage'), { token, sessionId }),
  }),
  WARDEN_UPSTREAM_FAILED: async () => ({
    reply: await post(url('fixture'), toolCall('fail'), { token, sessionId }),
  }),
  WARDEN_UPSTREAM_CIRCUIT_OPEN: async () => {
    const flaky = await sessionOf(token, 'flaky');
    const failed = await post(url('flaky'), toolCall('fail'), { token, sessionId: flaky });
    assert.match(failed.text, /WARDEN_UPSTREAM_FAILED/);
    return { reply: await post(url('flaky'), toolCall('echo'), { token, sessionId: flaky }) };
  },
  WARDEN_NO_GRANT_ON_UPSTREAM: async () => ({
    reply: await post(url('fixture'), initializeRequest(), { token: await tokenOf('viewer-bot') }),
  }),
  WARDEN_POLICY_DENIED: async () => {
    const bot = await tokenOf('limited-bot');
    return {
      reply: await post(url('fixture'), toolCall('echo', { amount: 11 }), {
        token: bot,
        sessionId: await sessionOf(bot),
      }),
    };
  },
  WARDEN_ARGUMENTS_INVALID: async () => ({
    reply: await post(url('fixture'), toolCall('strict', {}), { token, sessionId }),
  }),
  WARDEN_ARGUMENT_SUSPICIOUS_TEXT: async () => {
    const bot = await tokenOf('limited-bot');
    return {
      reply: await post(url('fixture'), toolCall('echo', { vendor: 'acme\u200b' }), {
        token: bot,
        sessionId: await sessionOf(bot),
      }),
    };
  },
  WARDEN_RESOURCE_URI_AMBIGUOUS: async () => ({
    reply: await post(
      url('fixture'),
      {
        jsonrpc: '2.0',
        id: 'read',
        method: 'resources/read',
        params: { uri: 'file:///data/../etc/passwd' },
      },
      { token, sessionId },
    ),
  }),
  WARDEN_TOOL_DEFINITION_CHANGED: async () => {
    const listed = await post(url('fixture'), TOOLS_LIST, { token, sessionId });
    assert.match(listed.text, /mutable/);
    mutableDescription = 'version 2: now also deletes everything';
    await post(url('fixture'), TOOLS_LIST, { token, sessionId });
    return { reply: await post(url('fixture'), toolCall('mutable'), { token, sessionId }) };
  },
  WARDEN_TOOL_NOT_APPROVED: async () => {
    const pinned = await startExtra('pinned', { policy: { tool_pinning: 'require_approval' } });
    const own = await pinned.gateway.token();
    const reply = await post(url('fixture', pinned.gateway), toolCall('echo'), {
      token: own,
      sessionId: await openSession(url('fixture', pinned.gateway), bearer(own)),
    });
    return { reply, audit: pinned.audit };
  },
  WARDEN_QUOTA_EXCEEDED: async () => {
    const bot = await tokenOf('limited-bot');
    const botSession = await sessionOf(bot);
    const first = await post(url('fixture'), toolCall('counted'), {
      token: bot,
      sessionId: botSession,
    });
    assert.equal(first.status, 200, first.text);
    return {
      reply: await post(url('fixture'), toolCall('counted'), { token: bot, sessionId: botSession }),
    };
  },
  WARDEN_APPROVAL_REFUSED: async () => {
    const { held, approvalId } = await holdPaidCall('refused@example.com');
    const denied = await approvals(`/${approvalId}/deny`, { reason: 'not this vendor' });
    assert.equal(denied.status, 200, denied.text);
    return { reply: await held };
  },
  WARDEN_APPROVAL_EXPIRED: async () => {
    const bot = await tokenOf('limited-bot', 'expired@example.com');
    return {
      reply: await post(url('fixture'), toolCall('expiring'), {
        token: bot,
        sessionId: await sessionOf(bot),
      }),
    };
  },
  WARDEN_APPROVAL_STALE: async () => {
    const { held, approvalId } = await holdPaidCall('stale@example.com');
    const revoked = await post(
      `${main.gateway.url}/admin/revocations`,
      { kind: 'user', subject: 'stale@example.com', reason: 'left the company' },
      { token: await tokenOf('admin-bot') },
    );
    assert.equal(revoked.status, 201, revoked.text);
    const approved = await approvals(`/${approvalId}/approve`, { reason: 'fine' });
    assert.equal(approved.status, 200, approved.text);
    return { reply: await held };
  },
  WARDEN_APPROVAL_ALREADY_DECIDED: async () => {
    const { held, approvalId } = await holdPaidCall('twice@example.com');
    await approvals(`/${approvalId}/deny`, { reason: 'no' });
    await held;
    return { reply: await approvals(`/${approvalId}/deny`, { reason: 'no, again' }) };
  },
  WARDEN_SHUTTING_DOWN: async () => {
    const stopping = await startExtra('stopping', { limits: { shutdown_grace: '2s' } });
    const own = await stopping.gateway.token();
    const ownSession = await openSession(url('fixture', stopping.gateway), bearer(own));
    // A call in flight keeps the gateway draining while the next request arrives.
    const inFlight = post(url('fixture', stopping.gateway), toolCall('stall'), {
      token: own,
      sessionId: ownSession,
    }).catch(() => undefined);
    await sleep(100);
    const closing = stopping.gateway.close();
    await sleep(100);
    const reply = await post(url('fixture', stopping.gateway), initializeRequest(), { token: own });
    await closing;
    await inFlight;
    return { reply, audit: stopping.audit };
  },
};

async function startExtra(name: string, raw: Record<string, unknown>): Promise<AuditedGateway> {
  const started = await startAuditedGateway(name, {
    log: { level: 'silent' },
    upstreams: { fixture: { url: upstream.url } },
    ...raw,
  });
  extra.push(started);
  return started;
}

/** Records that tell a refusal besides request.refused: the stage that refused wrote them. */
const TOLD_BY_STAGE = new Set(['call.denied', 'approval.refused', 'approval.expired']);

describe('every refusal a request can bring about is recorded under its reference', () => {
  for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) {
    const trigger = TRIGGERS[code];
    if (trigger === undefined || NOT_TRIGGERABLE[code] !== undefined) continue;
    test(code, async (t) => {
      const { reply, audit = main.audit } = await trigger();
      const body = JSON.parse(reply.text) as WireMessage;
      // Decided about a request: answered in band (HTTP 200); else the code's own status.
      const status = httpStatusOf(new WardenError(code), body.id ?? null);
      assert.equal(reply.status, status, `${code}: ${reply.status} ${reply.text}`);
      assert.equal(body.error?.data?.code, code, reply.text);
      const reference = referenceOf(reply);
      const records = await audit.recordsUntil(
        reference,
        (record) => record.errorCode === code || TOLD_BY_STAGE.has(record.event),
      );
      assert.ok(
        records.some((record) => record.errorCode === code || TOLD_BY_STAGE.has(record.event)),
        `${code}: no record tells the refusal of ${reference}; found ${summarise(records)}`,
      );
      // A denial names the code the caller was refused with, so the log can be queried by it.
      for (const denied of records.filter((record) => record.event === 'call.denied')) {
        assert.equal(denied.errorCode, code, `${code}: ${summarise(records)}`);
      }
      // The records a refusal leaves, printed for the error reference in docs/errors.md.
      t.diagnostic(`records: ${summarise(records)}`);
    });
  }
});

function summarise(records: readonly AuditRecord[]): string {
  return JSON.stringify(records.map((record) => [record.event, record.errorCode ?? null]));
}

test('the catalogue is covered: every code is triggered above or excluded with its reason', () => {
  const codes = Object.keys(ERROR_CATALOGUE);
  const neither = codes.filter(
    (code) =>
      TRIGGERS[code as ErrorCode] === undefined && NOT_TRIGGERABLE[code as ErrorCode] === undefined,
  );
  assert.deepEqual(
    neither,
    [],
    `these codes are neither triggered nor excluded in test/refusals-recorded.test.ts: ${neither.join(', ')}. ` +
      'Add a trigger (a request that brings the code about, whose record is then found by its reference), ' +
      'or an entry in NOT_TRIGGERABLE saying why no request can.',
  );
  const both = codes.filter(
    (code) =>
      TRIGGERS[code as ErrorCode] !== undefined && NOT_TRIGGERABLE[code as ErrorCode] !== undefined,
  );
  assert.deepEqual(both, [], 'a code is either triggered or excluded, not both');
  const stale = [...Object.keys(TRIGGERS), ...Object.keys(NOT_TRIGGERABLE)].filter(
    (code) => !codes.includes(code),
  );
  assert.deepEqual(stale, [], 'triggers or exclusions of codes the catalogue no longer has');
});

describe('the admin API fails authentication through the same door as the MCP endpoints', () => {
  const cases = [
    {
      route: '/admin/revocations',
      method: 'POST',
      body: { kind: 'user', subject: 'x', reason: 'y' },
    },
    { route: '/admin/approvals', method: 'GET', body: undefined },
  ];
  for (const { route, method, body } of cases) {
    test(`${route}: no token, a forged one, or one without the role each leave auth.failed and a log line`, async () => {
      const callers: [string, string | undefined, number, string | undefined][] = [
        ['no token', undefined, 401, undefined],
        ['a forged token', 'not.a.token', 401, undefined],
        ['a token without the role', await tokenOf('viewer-bot'), 403, 'missing_role'],
      ];
      for (const [who, credential, status, reason] of callers) {
        const source = freshSource();
        const reply = await sendFrom(source, `${main.gateway.url}${route}`, {
          method,
          headers: {
            'content-type': 'application/json',
            ...(credential !== undefined && bearer(credential)),
          },
          ...(body !== undefined && { body: JSON.stringify(body) }),
        });
        assert.equal(reply.status, status, `${who}: ${reply.text}`);
        const reference = referenceOf(reply);
        const [record, ...more] = await audit().recordsOf(reference);
        assert.equal(record?.event, 'auth.failed', `${who}: ${summarise(more)}`);
        assert.deepEqual(more, [], 'one record: the listener does not add a second');
        assert.equal(record.details?.['source'], source);
        assert.equal(record.details?.['path'], route);
        if (reason !== undefined) assert.equal(record.details?.['reason'], reason);
        const line = main.gateway.logs.find(
          (entry) => entry['event'] === 'auth.failed' && entry['requestId'] === reference,
        );
        assert.ok(line, `${who}: no auth.failed log line for ${reference}`);
      }
    });
  }
});

function audit(): AuditReader {
  return main.audit;
}

test('a flood from one source leaves one record and a count, whatever the door', async () => {
  const flood = await startExtra('flood', {});
  const [tokens, scans, secrets] = [freshSource(), freshSource(), freshSource()];
  for (let attempt = 0; attempt < 300; attempt += 1) {
    const refused = await sendFrom(tokens, url('fixture', flood.gateway), {
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, ...bearer(`forged.${attempt}.token`) },
      body: JSON.stringify(initializeRequest()),
    });
    assert.equal(refused.status, 401);
    const scanned = await sendFrom(scans, `${flood.gateway.url}/.env.${attempt}`);
    assert.equal(scanned.status, 404);
    const guessed = await sendFrom(secrets, `${flood.gateway.url}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`guess-${attempt}:secret`).toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    assert.equal(guessed.status, 401, guessed.text);
  }
  // Closing writes the counts of the windows still open.
  await flood.gateway.close();
  const records = await flood.audit.all();
  const from = (source: string) =>
    records
      .filter((record) => record.details?.['source'] === source)
      .map((record) => [record.event, record.details?.['repeated'] ?? 'in full']);
  assert.deepEqual(from(tokens), [
    ['auth.failed', 'in full'],
    ['auth.failed', 299],
  ]);
  assert.deepEqual(from(scans), [
    ['request.refused', 'in full'],
    ['request.refused', 299],
  ]);
  assert.ok(
    from(secrets).length <= 2,
    `the token endpoint aggregates too: ${from(secrets).length}`,
  );
  assert.ok(
    from(secrets).every(([event]) => event === 'auth.failed'),
    'a refused token request is told once, as auth.failed',
  );
});

test('warden audit show tells the story of a refused request from its reference', async () => {
  const reply = await post(url('fixture'), '{"jsonrpc":"2.0",', { token, sessionId });
  const story = tellCallStory(await audit().recordsOf(referenceOf(reply)));
  assert.match(story, /request refused: WARDEN_PARSE_ERROR/);
  assert.match(story, /refused before any call was decided/);
  assert.match(story, new RegExp(TEST_AGENT));
});

test('a token sent in the URL is refused, and neither the record nor the log keeps it', async () => {
  const reply = await post(`${url('fixture')}?access_token=${token}`, initializeRequest());
  assert.equal(reply.status, 400);
  const reference = referenceOf(reply);
  const records = await audit().recordsOf(reference);
  assert.ok(records.length > 0);
  assert.doesNotMatch(JSON.stringify(records), new RegExp(token.slice(-20)));
  const lines = main.gateway.logs.filter((entry) => entry['requestId'] === reference);
  assert.ok(lines.length > 0);
  assert.doesNotMatch(JSON.stringify(lines), new RegExp(token.slice(-20)));
});

/** Waits until a refusal sent now is on the log: records of exchanges ended before are too. */
async function barrier(): Promise<void> {
  await sleep(200);
  const reply = await sendFrom(freshSource(), `${main.gateway.url}/barrier`);
  await audit().recordsOf(referenceOf(reply));
}

test('a client that goes away in the middle of its body is not recorded as refused', async () => {
  await barrier();
  const before = (await audit().all()).filter((record) => record.event === 'request.refused');
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const gone = await startStalledPost(url('fixture'), {
      ...bearer(token),
      'mcp-session-id': sessionId,
    });
    await sleep(30);
    gone.socket.destroy();
  }
  await barrier();
  const afterwards = (await audit().all()).filter((record) => record.event === 'request.refused');
  assert.equal(afterwards.length, before.length + 1, 'only the barrier was refused');
});

test("an upstream's own error status is relayed, not recorded as the gateway's refusal", async () => {
  const reply = await post(
    url('fixture'),
    { jsonrpc: '2.0', method: 'notifications/refused-upstream' },
    { token, sessionId },
  );
  assert.equal(reply.status, 400, reply.text);
  await barrier();
  assert.deepEqual(await audit().recordsOf(String(reply.headers['x-request-id']), 0), []);
});

test('no refusal is recorded twice: a stage that recorded it leaves the listener nothing to add', async () => {
  await barrier();
  const byRequest = new Map<string, string[]>();
  for (const record of await audit().all()) {
    if (record.requestId === undefined) continue;
    byRequest.set(record.requestId, [...(byRequest.get(record.requestId) ?? []), record.event]);
  }
  const doubled = [...byRequest].filter(
    ([, events]) =>
      events.includes('request.refused') &&
      (events.length > 1 || events.filter((event) => event === 'request.refused').length > 1),
  );
  assert.deepEqual(doubled, []);
  assert.ok(
    [...byRequest.values()].some((events) => events.includes('request.refused')),
    'the walk above left request.refused records to check',
  );
});
