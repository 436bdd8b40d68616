/**
 * Golden cases of classifyMcpCall: every client message becomes one typed McpCall, read from its
 * params once. A request of a known method whose params do not say what it uses (a name that is
 * no string, arguments that are no object) is malformed, and the policy refuses it with
 * WARDEN_ARGUMENTS_INVALID before any rule or upstream is consulted.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JsonRpcMessage, JsonRpcRequest } from '../src/domain/jsonrpc.js';
import {
  classifyMcpCall,
  isRequestCall,
  withResourceUris,
  type McpCall,
} from '../src/domain/mcp-call.js';
import { createMessageAuthorizer } from '../src/policy/authorize-message.js';
import type { InputSchemaChecker } from '../src/policy/input-schema-check.js';
import type { PolicyEngine } from '../src/policy/policy-engine.js';
import type { ToolCatalog } from '../src/policy/tool-catalog.js';
import type { Store } from '../src/store/types.js';

function request(method: string, params?: Record<string, unknown>): JsonRpcRequest {
  return { jsonrpc: '2.0', id: 1, method, ...(params !== undefined && { params }) };
}

/** The classification without the message it carries (checked apart: it is the one received). */
function shape(call: McpCall): Record<string, unknown> {
  const { message, ...rest } = call;
  assert.ok(message, 'every call carries its message');
  return rest;
}

const GOLDEN: readonly [string, JsonRpcMessage, Record<string, unknown>][] = [
  [
    'a tool call with arguments and a progress token',
    request('tools/call', {
      name: 'issue_payment',
      arguments: { amount: 900, vendor: 'ACME' },
      _meta: { progressToken: 'p-1' },
    }),
    {
      kind: 'tool_call',
      name: 'issue_payment',
      arguments: { amount: 900, vendor: 'ACME' },
      progressToken: 'p-1',
    },
  ],
  [
    'a tool call without arguments has none',
    request('tools/call', { name: 'ping_db' }),
    { kind: 'tool_call', name: 'ping_db', arguments: {}, progressToken: undefined },
  ],
  [
    'a tool call with null arguments has none, as an SDK server reads it',
    request('tools/call', { name: 'ping_db', arguments: null }),
    { kind: 'tool_call', name: 'ping_db', arguments: {}, progressToken: undefined },
  ],
  [
    'a progress token that is neither string nor number is no progress token',
    request('tools/call', { name: 't', _meta: { progressToken: { nested: true } } }),
    { kind: 'tool_call', name: 't', arguments: {}, progressToken: undefined },
  ],
  [
    'a tool call whose name is a number',
    request('tools/call', { name: 42, arguments: {} }),
    { kind: 'malformed', problem: 'tools/call needs params.name' },
  ],
  [
    'a tool call whose name is empty',
    request('tools/call', { name: '', arguments: {} }),
    { kind: 'malformed', problem: 'tools/call needs params.name' },
  ],
  [
    'a tool call without params',
    request('tools/call'),
    { kind: 'malformed', problem: 'tools/call needs params.name' },
  ],
  [
    'a tool call whose arguments are a string',
    request('tools/call', { name: 't', arguments: '{"amount":1}' }),
    { kind: 'malformed', problem: 'tools/call: params.arguments must be an object' },
  ],
  [
    'a tool call whose arguments are an array',
    request('tools/call', { name: 't', arguments: [{ amount: 1 }] }),
    { kind: 'malformed', problem: 'tools/call: params.arguments must be an object' },
  ],
  [
    'a prompt get',
    request('prompts/get', { name: 'summary', arguments: { style: 'short' } }),
    { kind: 'prompt_get', name: 'summary', arguments: { style: 'short' } },
  ],
  [
    'a prompt get whose name is an object',
    request('prompts/get', { name: { toString: 'summary' } }),
    { kind: 'malformed', problem: 'prompts/get needs params.name' },
  ],
  [
    'a prompt get whose arguments are a number',
    request('prompts/get', { name: 'summary', arguments: 7 }),
    { kind: 'malformed', problem: 'prompts/get: params.arguments must be an object' },
  ],
  [
    'a resource read',
    request('resources/read', { uri: 'docs://a.md' }),
    { kind: 'resource_read', uri: 'docs://a.md' },
  ],
  [
    'a resource read without a URI',
    request('resources/read', {}),
    { kind: 'malformed', problem: 'resources/read needs params.uri' },
  ],
  [
    'a subscription',
    request('resources/subscribe', { uri: 'docs://a.md' }),
    { kind: 'subscription', action: 'subscribe', uris: ['docs://a.md'] },
  ],
  [
    'an unsubscription',
    request('resources/unsubscribe', { uri: 'docs://a.md' }),
    { kind: 'subscription', action: 'unsubscribe', uris: ['docs://a.md'] },
  ],
  [
    'a subscription whose URI is an array',
    request('resources/subscribe', { uri: ['docs://a.md'] }),
    { kind: 'malformed', problem: 'resources/subscribe needs params.uri' },
  ],
  [
    'a 2026-07-28 listen for resources',
    request('subscriptions/listen', {
      notifications: { resourceSubscriptions: ['docs://a.md', 'docs://b.md'] },
    }),
    { kind: 'subscription', action: 'listen', uris: ['docs://a.md', 'docs://b.md'] },
  ],
  [
    'a listen for no resource is plumbing',
    request('subscriptions/listen', { notifications: { toolsListChanged: true } }),
    { kind: 'plumbing' },
  ],
  [
    'a listen for an empty list of resources is plumbing',
    request('subscriptions/listen', { notifications: { resourceSubscriptions: [] } }),
    { kind: 'plumbing' },
  ],
  [
    'a listen whose resources are no list',
    request('subscriptions/listen', { notifications: { resourceSubscriptions: 'docs://a.md' } }),
    {
      kind: 'malformed',
      problem: 'subscriptions/listen: resourceSubscriptions must list resource URIs',
    },
  ],
  [
    'a listen with a URI that is no string',
    request('subscriptions/listen', { notifications: { resourceSubscriptions: ['a://x', 1] } }),
    {
      kind: 'malformed',
      problem: 'subscriptions/listen: resourceSubscriptions must list resource URIs',
    },
  ],
  [
    'a tool listing with a cursor',
    request('tools/list', { cursor: 'page-2' }),
    { kind: 'listing', of: 'tools', cursor: 'page-2' },
  ],
  [
    'a resource listing',
    request('resources/list'),
    { kind: 'listing', of: 'resources', cursor: undefined },
  ],
  [
    'a template listing with a null cursor',
    request('resources/templates/list', { cursor: null }),
    { kind: 'listing', of: 'resource_templates', cursor: undefined },
  ],
  [
    'a prompt listing',
    request('prompts/list', {}),
    { kind: 'listing', of: 'prompts', cursor: undefined },
  ],
  [
    'a listing whose cursor is a number',
    request('tools/list', { cursor: 2 }),
    { kind: 'malformed', problem: 'tools/list: params.cursor must be a string' },
  ],
  [
    'a completion of a prompt argument',
    request('completion/complete', {
      ref: { type: 'ref/prompt', name: 'summary' },
      argument: { name: 'style', value: 'sh' },
    }),
    { kind: 'completion', ref: { type: 'prompt', name: 'summary' } },
  ],
  [
    'a completion of a resource template argument',
    request('completion/complete', {
      ref: { type: 'ref/resource', uri: 'docs://{name}' },
      argument: { name: 'name', value: 'a' },
    }),
    { kind: 'completion', ref: { type: 'resource', uri: 'docs://{name}' } },
  ],
  [
    'a completion of an unknown kind of ref',
    request('completion/complete', { ref: { type: 'ref/tool', name: 'issue_payment' } }),
    { kind: 'malformed', problem: 'completion/complete needs a prompt or resource ref' },
  ],
  [
    'a completion of a prompt ref without a name',
    request('completion/complete', { ref: { type: 'ref/prompt', uri: 'docs://a' } }),
    { kind: 'malformed', problem: 'completion/complete needs a prompt or resource ref' },
  ],
  [
    'a completion without a ref',
    request('completion/complete', { argument: { name: 'x', value: 'y' } }),
    { kind: 'malformed', problem: 'completion/complete needs a prompt or resource ref' },
  ],
  ['initialize', request('initialize', { protocolVersion: '2025-06-18' }), { kind: 'plumbing' }],
  ['ping', request('ping'), { kind: 'plumbing' }],
  ['logging/setLevel', request('logging/setLevel', { level: 'debug' }), { kind: 'plumbing' }],
  [
    'a method Warden does not know',
    request('vendor/frobnicate', { name: 7 }),
    { kind: 'plumbing' },
  ],
  [
    'a cancellation',
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'call-7' } },
    { kind: 'cancellation', requestId: 'call-7' },
  ],
  [
    'a cancellation naming no usable request id',
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: { id: 1 } } },
    { kind: 'cancellation', requestId: undefined },
  ],
  ['a notification', { jsonrpc: '2.0', method: 'notifications/initialized' }, { kind: 'plumbing' }],
  [
    'a tools/call sent as a notification asks for no answer and is no call',
    { jsonrpc: '2.0', method: 'tools/call', params: { name: 'issue_payment' } },
    { kind: 'plumbing' },
  ],
  [
    "a reply to a server's request",
    { jsonrpc: '2.0', id: 'srv-1', result: { content: [] } },
    { kind: 'plumbing' },
  ],
];

describe('classifyMcpCall: golden cases', () => {
  for (const [name, message, expected] of GOLDEN) {
    test(name, () => {
      const call = classifyMcpCall(message);
      assert.deepEqual(shape(call), expected);
      assert.equal(call.message, message, 'the message is kept as received, for forwarding');
    });
  }

  test('requests are calls to decide; notifications and replies are not', () => {
    const calls = GOLDEN.map(([, message]) => classifyMcpCall(message));
    for (const call of calls) {
      assert.equal(isRequestCall(call), 'id' in call.message && 'method' in call.message);
    }
  });

  test('classification is pure: the message is not changed, and the same message classifies the same', () => {
    for (const [, message] of GOLDEN) {
      const before = JSON.stringify(message);
      assert.deepEqual(shape(classifyMcpCall(message)), shape(classifyMcpCall(message)));
      assert.equal(JSON.stringify(message), before);
    }
  });
});

describe('withResourceUris: the request forwarded in the form the policy judged', () => {
  test('a read, a subscription and a completion get the URI in place, the rest as sent', () => {
    const meta = { progressToken: 'p' };
    const read = classifyMcpCall(request('resources/read', { uri: 'DOCS://a', _meta: meta }));
    const subscribe = classifyMcpCall(request('resources/subscribe', { uri: 'DOCS://a' }));
    const complete = classifyMcpCall(
      request('completion/complete', {
        ref: { type: 'ref/resource', uri: 'DOCS://{x}' },
        argument: { name: 'x', value: '1' },
      }),
    );
    assert.ok(read.kind === 'resource_read');
    assert.ok(subscribe.kind === 'subscription');
    assert.ok(complete.kind === 'completion');
    assert.deepEqual(withResourceUris(read, ['docs://a']).params, { uri: 'docs://a', _meta: meta });
    assert.deepEqual(withResourceUris(subscribe, ['docs://a']).params, { uri: 'docs://a' });
    assert.deepEqual(withResourceUris(complete, ['docs://{x}']).params, {
      ref: { type: 'ref/resource', uri: 'docs://{x}' },
      argument: { name: 'x', value: '1' },
    });
  });

  test('a listen gets its whole list in place', () => {
    const listen = classifyMcpCall(
      request('subscriptions/listen', {
        notifications: { resourceSubscriptions: ['DOCS://a', 'docs://b'], toolsListChanged: true },
      }),
    );
    assert.ok(listen.kind === 'subscription');
    assert.deepEqual(withResourceUris(listen, ['docs://a', 'docs://b']).params, {
      notifications: { resourceSubscriptions: ['docs://a', 'docs://b'], toolsListChanged: true },
    });
  });
});

describe('the policy on a malformed call', () => {
  const untouchable = <T extends object>(what: string): T =>
    new Proxy({} as T, {
      get: () => assert.fail(`a malformed call must not reach the ${what}`),
    });
  const authorizer = createMessageAuthorizer({
    engine: () => untouchable<PolicyEngine>('policy engine'),
    policy: () => ({ quotas: [] }) as never,
    inputs: {
      states: () => new Map(),
      breakglassFor: () => new Map(),
      refresh: async () => undefined,
      close: () => undefined,
    },
    catalog: untouchable<ToolCatalog>('tool catalog'),
    schemaChecker: untouchable<InputSchemaChecker>('input schema check'),
    store: untouchable<Pick<Store, 'quotas'>>('quota store'),
    now: () => Date.parse('2026-01-01T00:00:00Z'),
    record: async () => assert.fail('nothing is recorded by the policy'),
    alert: () => undefined,
  });
  const identity = { agent: 'attacker-bot', roles: ['caller'], environment: 'test' } as never;

  for (const [name, message, expected] of GOLDEN.filter(([, , e]) => e['kind'] === 'malformed')) {
    test(`${name}: refused with WARDEN_ARGUMENTS_INVALID, nothing else consulted`, async () => {
      const authorization = await authorizer.authorize(classifyMcpCall(message), identity, 'x');
      assert.equal(authorization.decision.effect, 'deny');
      assert.deepEqual(authorization.decision.reasons, [expected['problem']]);
      assert.equal(authorization.error?.code, 'WARDEN_ARGUMENTS_INVALID');
      assert.equal(authorization.quotas, undefined);
      assert.equal(authorization.rewriteRequest, undefined);
    });
  }
});
