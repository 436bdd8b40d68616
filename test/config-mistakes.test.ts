// The mistakes a newcomer makes in warden.yaml, each refused with a line that names the key, says
// what was written there and how to write it: never a message leaking from another part of the
// schema, never a config that loads and then silently allows nothing.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { ADMIN_ROLE } from '../src/admin/admin-access.js';
import { APPROVER_CLIENT_ROLE } from '../src/admin/approvals-api.js';
import { ADMIN_SURFACE_ROLES } from '../src/config/check-agent-roles.js';
import { findClosestName } from '../src/config/closest-name.js';
import { durationSchema, positiveDurationSchema } from '../src/config/duration.js';
import { loadConfigFile, parseConfig } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import type { AuditEntry } from '../src/domain/audit-record.js';
import { ConfigError } from '../src/domain/errors.js';
import { watchForUnlistedGrants } from '../src/gateway/unlisted-grant-watch.js';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import type { ToolCatalog } from '../src/policy/tool-catalog.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { createAuditedSetup } from './support/audit-reader.js';
import { startTestGateway, TEST_RESOURCE, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import { answerIn, initializeRequest, openSession, postMcp } from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';

/** A valid config; each test changes one thing in it. */
const BASE = {
  auth: { resource: 'https://warden.example.com/mcp', issuers: [{ builtin: {} }] },
  agents: { 'invoice-bot': { roles: ['finance'] }, 'research-bot': { roles: ['research'] } },
  upstreams: { payments: { url: 'http://127.0.0.1:3001/mcp' } },
  roles: {
    finance: { grants: [{ tool: 'payments.issue_payment' }] },
    research: { grants: [{ tool: 'payments.list_payments' }] },
  },
};

/** The issues of a config that must be refused. */
function refusalOf(raw: unknown): readonly string[] {
  try {
    parseConfig(raw, 'warden.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.issues;
  }
  assert.fail('the configuration was accepted');
}

function assertRefusedWith(raw: unknown, expected: string): void {
  const issues = refusalOf(raw);
  assert.ok(
    issues.includes(expected),
    `${JSON.stringify(issues, null, 2)}\nshould include\n${expected}`,
  );
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-config-mistakes-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Loads a YAML text from a file; returns the issues of its refusal. */
function yamlRefusalOf(name: string, text: string): readonly string[] {
  const path = join(dir, name);
  writeFileSync(path, text);
  try {
    loadConfigFile(path);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.file, path);
    return error.issues;
  }
  assert.fail('the configuration was accepted');
}

describe('a duration it cannot read', () => {
  /**
   * Every duration key of warden.yaml, as placed in BASE, with what must surround it there (a
   * stdio upstream for its restart keys, a quota for its window, …).
   */
  const DURATION_KEYS: readonly [string, Record<string, unknown>?][] = [
    ['limits.session_idle_timeout'],
    ['limits.reclaim_idle_after'],
    ['limits.shutdown_grace'],
    ['limits.headers_timeout'],
    ['limits.request_timeout'],
    ['upstreams.payments.timeout'],
    ['upstreams.payments.circuit_breaker.open_for'],
    ...(['subject_token_ttl', 'refresh_before', 'timeout'] as const).map(
      (key): [string, Record<string, unknown>] => [
        `upstreams.payments.credential.token_exchange.${key}`,
        {
          upstreams: {
            payments: {
              url: 'https://payments.example.com/mcp',
              credential: {
                token_exchange: {
                  token_endpoint: 'https://as.example.com/token',
                  audience: 'payments',
                  client_id: 'warden',
                  client_secret_env: 'AS_SECRET',
                },
              },
            },
          },
        },
      ],
    ),
    ['upstreams.payments.restart_backoff', { upstreams: { payments: { command: ['server'] } } }],
    [
      'upstreams.payments.restart_backoff_max',
      { upstreams: { payments: { command: ['server'] } } },
    ],
    ['auth.issuers.0.builtin.token_ttl'],
    ['auth.issuers.0.builtin.max_ttl'],
    ['auth.issuers.0.builtin.rotate_every'],
    ['auth.max_token_lifetime'],
    ...(['session_ttl', 'refresh_token_ttl', 'client_metadata_documents.timeout'] as const).map(
      (key): [string, Record<string, unknown>] => [
        `auth.login.${key}`,
        {
          auth: {
            ...BASE.auth,
            login: { agent: 'invoice-bot', users: {}, client_metadata_documents: {} },
          },
        },
      ],
    ),
    ['auth.clock_skew'],
    ['audit.checkpoint_interval'],
    ['audit.verify_every'],
    ['cluster.heartbeat'],
    ['cluster.dead_after'],
    ['roles.finance.grants.0.approval_timeout'],
    ['grants.0.approval_timeout', { grants: [{ agent_role: 'finance', tool: 'payments.refund' }] }],
    ['quotas.0.window', { quotas: [{ name: 'hourly', per: 'agent', limit: 10 }] }],
    ['policy.breakglass_max_ttl'],
    ['policy.approval_timeout'],
    ['approvals.poll_interval'],
    ['approvals.progress_interval'],
    [
      'approvals.webhooks.0.timeout',
      { approvals: { webhooks: [{ url: 'https://hooks.example' }] } },
    ],
    [
      'alerts.webhooks.0.timeout',
      { alerts: { webhooks: [{ name: 'oncall', url: 'https://hooks.example' }] } },
    ],
    ...(['window', 'dedup_window'] as const).map((key): [string, Record<string, unknown>] => [
      `alerts.rules.0.${key}`,
      { alerts: { rules: [{ kind: 'breakglass_used' }] } },
    ]),
    ['alerts.retry.backoff'],
  ];

  /** `roles.finance.grants.0.x` → `roles.<name>.grants.<n>.x`, as findDurationKeys names it. */
  const schemaPlaceOf = (key: string) =>
    key.replace(/^(upstreams|roles)\.[^.]+\./, '$1.<name>.').replace(/\.\d+(?=\.)/g, '.<n>');

  test('every duration key of the schema is checked here', () => {
    assert.deepEqual(
      findDurationKeys(configSchema).sort(),
      DURATION_KEYS.map(([key]) => schemaPlaceOf(key)).sort(),
    );
  });

  test('names the key and how to write a duration, at every duration key (the built-in issuer too)', () => {
    for (const [key, around = {}] of DURATION_KEYS) {
      for (const [value, written] of [
        ['15 minutes', '"15 minutes"'],
        [true, 'true'],
      ] as const) {
        assertRefusedWith(
          withValueAt({ ...BASE, ...around }, key, value),
          `${key}: ${written} is not a duration; write it like 15m, 1h or 900s`,
        );
      }
    }
  });

  test('never reports a mistake in the issuer as a malformed upstream', () => {
    const issues = refusalOf({
      ...BASE,
      auth: { ...BASE.auth, issuers: [{ builtin: { token_ttl: '15 minutes' } }] },
    });
    assert.deepEqual(issues, [
      'auth.issuers.0.builtin.token_ttl: "15 minutes" is not a duration; write it like 15m, 1h or 900s',
    ]);
  });
});

describe('a union reports the branch the value is meant as', () => {
  test('an external issuer with a bad URL is told about its URL', () => {
    assertRefusedWith(
      { ...BASE, auth: { ...BASE.auth, issuers: [{ issuer: 'idp.example.com' }] } },
      'auth.issuers.0.issuer: "idp.example.com" is not a URL: it has no scheme; write it like https://idp.example.com',
    );
  });

  test('a stdio upstream with a misspelt key is told about that key, not that it lacks a url', () => {
    assert.deepEqual(
      refusalOf({
        ...BASE,
        upstreams: { payments: { command: ['server'], restart_bakoff: '1s' } },
      }),
      ['upstreams.payments: unknown key "restart_bakoff"; did you mean "restart_backoff"?'],
    );
  });

  test('a value that fits no branch gets the union’s own description', () => {
    assert.deepEqual(
      refusalOf({
        ...BASE,
        auth: { ...BASE.auth, issuers: [{ builtin: {}, issuer: 'https://idp.example' }] },
      }),
      [
        'auth.issuers.0: expected the built-in issuer ({ builtin: {} }) or an external one ({ issuer: https://… })',
      ],
    );
    assert.deepEqual(refusalOf({ ...BASE, upstreams: { payments: 'http://127.0.0.1:3001/mcp' } }), [
      'upstreams.payments: expected an HTTP upstream ({ url }) or a stdio upstream ({ command: [...] })',
    ]);
  });
});

describe('a misspelt key', () => {
  test('is refused with the closest allowed key at its level', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ upstream: {} }, '(top level): unknown key "upstream"; did you mean "upstreams"?'],
      [{ listen: { prot: 8080 } }, 'listen: unknown key "prot"; did you mean "port"?'],
      [
        { limits: { max_body: 1 } },
        'limits: unknown key "max_body"; did you mean "max_body_bytes"?',
      ],
      [
        { auth: { ...BASE.auth, issuers: [{ builtin: { token_tll: '15m' } }] } },
        'auth.issuers.0.builtin: unknown key "token_tll"; did you mean "token_ttl"?',
      ],
      [
        { agents: { 'invoice-bot': { role: ['finance'] } } },
        'agents.invoice-bot: unknown key "role"; did you mean "roles"?',
      ],
      [
        {
          roles: {
            finance: { grants: [{ tool: 'payments.issue_payment', requires_aproval: true }] },
          },
        },
        'roles.finance.grants.0: unknown key "requires_aproval"; did you mean "requires_approval"?',
      ],
    ];
    for (const [change, expected] of cases) assertRefusedWith({ ...BASE, ...change }, expected);
  });

  test('with nothing close, lists the keys allowed there', () => {
    assertRefusedWith(
      { ...BASE, listen: { address: '0.0.0.0' } },
      'listen: unknown key "address"; the keys here are host, port, allowed_hosts, allowed_origins, tls',
    );
  });

  test('suggests only a name a couple of keystrokes away, and never one of two equally close', () => {
    assert.equal(findClosestName('fnance', ['finance', 'research']), 'finance');
    assert.equal(findClosestName('tiemout', ['timeout', 'tools']), 'timeout');
    assert.equal(findClosestName('payments', ['research']), undefined);
    assert.equal(findClosestName('ab', ['ac', 'ad']), undefined);
  });
});

describe('an agent holding a role nothing defines', () => {
  test('is refused, with the role it most likely meant and the defined ones', () => {
    assert.deepEqual(refusalOf({ ...BASE, agents: { 'invoice-bot': { roles: ['fnance'] } } }), [
      'agents.invoice-bot.roles: role "fnance" is not defined; did you mean "finance"? Defined roles: finance, research. Fix the name, or declare the role under roles: (fnance: { grants: [...] })',
    ]);
  });

  test('is refused even beside a defined role (the typo would drop a permission silently)', () => {
    assert.match(
      refusalOf({ ...BASE, agents: { 'invoice-bot': { roles: ['research', 'auditor'] } } })[0] ??
        '',
      /^agents\.invoice-bot\.roles: role "auditor" is not defined\. Defined roles: finance, research\./,
    );
  });

  test('a role declared without grants, named by a flat grant, or of an admin surface loads', () => {
    const config = parseConfig(
      {
        ...BASE,
        agents: {
          'invoice-bot': { roles: ['finance', 'viewer', 'refunds'] },
          console: { roles: ['warden_admin', 'warden_approver'] },
        },
        roles: { ...BASE.roles, viewer: {} },
        grants: [{ agent_role: 'refunds', tool: 'payments.refund' }],
      },
      'warden.yaml',
    );
    assert.deepEqual(config.agents.get('invoice-bot')?.roles, ['finance', 'viewer', 'refunds']);
  });

  test('the admin-surface roles are those the admin API checks', () => {
    assert.deepEqual([...ADMIN_SURFACE_ROLES].sort(), [ADMIN_ROLE, APPROVER_CLIENT_ROLE].sort());
  });
});

describe('a config without auth', () => {
  test('says what the auth section is for and what to write', () => {
    const withoutAuth: Record<string, unknown> = { ...BASE };
    delete withoutAuth['auth'];
    assert.deepEqual(refusalOf(withoutAuth), [
      'auth: missing; add an auth section: every endpoint is authenticated, so Warden needs its own URL and who issues tokens, e.g. auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
    ]);
  });

  test('an empty file says so, rather than listing every missing section', () => {
    assert.deepEqual(yamlRefusalOf('empty.yaml', '# nothing yet\n'), [
      'the file is empty; a config needs at least upstreams, auth and agents (see the README)',
    ]);
  });
});

describe('the mistakes a newcomer makes', () => {
  test('a port in quotes', () => {
    assertRefusedWith(
      { ...BASE, listen: { port: '8080' } },
      'listen.port: expected a number, got the text "8080"; write 8080 without quotes',
    );
  });

  test('a port out of range', () => {
    assertRefusedWith(
      { ...BASE, listen: { port: 80800 } },
      'listen.port: 80800 is too big: it must be at most 65535',
    );
  });

  test('an upstream URL without its scheme', () => {
    assertRefusedWith(
      { ...BASE, upstreams: { payments: { url: '127.0.0.1:3001/mcp' } } },
      'upstreams.payments.url: "127.0.0.1:3001/mcp" is not a URL: it has no scheme; write it like http://127.0.0.1:3001/mcp',
    );
  });

  test('an agent listed twice', () => {
    const issues = yamlRefusalOf(
      'twice.yaml',
      [
        'auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
        'upstreams: { payments: { url: http://127.0.0.1:3001/mcp } }',
        'roles: { finance: {} }',
        'agents:',
        '  invoice-bot: { roles: [finance] }',
        '  research-bot: { roles: [finance] }',
        '  invoice-bot: { roles: [] }',
        '',
      ].join('\n'),
    );
    assert.deepEqual(issues, [
      'not valid YAML at line 7: agents.invoice-bot is given twice (first at line 5); keep one',
    ]);
  });

  test('a line indented with a tab', () => {
    const issues = yamlRefusalOf(
      'tab.yaml',
      'auth:\n  resource: https://warden.example.com/mcp\n\tissuers: [{ builtin: {} }]\n',
    );
    assert.deepEqual(issues, [
      'not valid YAML at line 3: "issuers" is indented with a tab; YAML indents with spaces only',
    ]);
  });

  test('a grant naming a tool of an upstream that is not configured', () => {
    assertRefusedWith(
      {
        ...BASE,
        roles: { ...BASE.roles, finance: { grants: [{ tool: 'payment.issue_payment' }] } },
      },
      'roles.finance.grants.0.tool: no upstream named "payment"; did you mean "payments"? (configured: payments)',
    );
  });

  test('a scope, list or policy state that is not defined', () => {
    const raw = {
      ...BASE,
      lists: { approved_vendors: ['acme'] },
      policy_states: { payments_freeze: {} },
      scopes: {
        vendors: { arg: 'vendor', in_list: 'aproved_vendors' },
        unfrozen: { state: { payment_freeze: 'off' } },
      },
      roles: {
        ...BASE.roles,
        finance: { grants: [{ tool: 'payments.issue_payment', scope: ['vendor', 'unfrozen'] }] },
      },
    };
    const issues = refusalOf(raw);
    for (const expected of [
      'scopes.vendors.in_list: no list named "aproved_vendors" under lists; did you mean "approved_vendors"?',
      'scopes.unfrozen.state.payment_freeze: no such policy state; did you mean "payments_freeze"? (declare it in policy_states)',
      'roles.finance.grants.0.scope: no scope named "vendor" under scopes; did you mean "vendors"?',
    ]) {
      assert.ok(
        issues.includes(expected),
        `${JSON.stringify(issues, null, 2)} should include ${expected}`,
      );
    }
  });

  test('roles or a command written as one word instead of a list', () => {
    assertRefusedWith(
      { ...BASE, agents: { 'invoice-bot': { roles: 'finance' } } },
      'agents.invoice-bot.roles: expected a list, got the text "finance"; write a list, e.g. [finance]',
    );
    assertRefusedWith(
      { ...BASE, upstreams: { payments: { command: 'npx payments-server' } } },
      'upstreams.payments.command: expected a list, got the text "npx payments-server"; write a list, e.g. [npx, payments-server]',
    );
  });

  test('an option that is not one of the choices', () => {
    assertRefusedWith(
      { ...BASE, log: { level: 'warning' } },
      'log.level: "warning" is not one of fatal, error, warn, info, debug, trace, silent; did you mean "warn"?',
    );
  });

  test('a quota counting a role nothing defines', () => {
    assertRefusedWith(
      { ...BASE, quotas: [{ name: 'q', per: 'role', role: 'finanse', limit: 10, window: '1h' }] },
      'quotas.0.role: role "finanse" is not defined; did you mean "finance"? (defined: finance, research)',
    );
  });

  test('an approval nobody configured could give', () => {
    assertRefusedWith(
      {
        ...BASE,
        roles: {
          ...BASE.roles,
          finance: {
            grants: [
              {
                tool: 'payments.issue_payment',
                requires_approval: true,
                approvers: ['finance_aprover'],
              },
            ],
          },
        },
        approvals: { approvers: { 'carol@example.com': { roles: ['finance_approver'] } } },
      },
      'roles.finance.grants.0.approvers: no approver holds "finance_aprover"; did you mean "finance_approver"? so nobody could approve its calls (roles held under approvals.approvers: finance_approver)',
    );
  });

  test('two agents with one external client id', () => {
    assertRefusedWith(
      {
        ...BASE,
        agents: {
          'invoice-bot': { roles: ['finance'], client_ids: ['svc-42'] },
          'research-bot': { roles: ['research'], client_ids: ['svc-42'] },
        },
      },
      'agents.research-bot.client_ids: "svc-42" is also a client id of agent "invoice-bot"; each client id maps to one agent',
    );
  });

  test('a grant expiry that is not a date, and a count of approvers that is not 1 or 2', () => {
    const grant = { tool: 'payments.issue_payment', requires_approval: true };
    assertRefusedWith(
      {
        ...BASE,
        roles: { ...BASE.roles, finance: { grants: [{ ...grant, expires: 'next friday' }] } },
      },
      'roles.finance.grants.0.expires: "next friday" is not a date; write it like 2027-03-31 or 2027-03-31T18:00:00Z',
    );
    assertRefusedWith(
      {
        ...BASE,
        roles: { ...BASE.roles, finance: { grants: [{ ...grant, approvals_required: 3 }] } },
      },
      'roles.finance.grants.0.approvals_required: expected 1 or 2 (distinct approvers)',
    );
  });
});

/** A copy of `raw` with `value` at the dotted `path`, creating the mappings on the way. */
function withValueAt(raw: Record<string, unknown>, path: string, value: unknown): unknown {
  const copy = structuredClone(raw);
  const keys = path.split('.');
  let current: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) {
    current[key] ??= {};
    current = current[key] as Record<string, unknown>;
  }
  current[keys[keys.length - 1] ?? ''] = value;
  return copy;
}

/** The places of durationSchema and positiveDurationSchema in `schema`, as dotted paths. */
function findDurationKeys(schema: z.core.$ZodType, path: readonly string[] = []): string[] {
  if (schema === durationSchema || schema === positiveDurationSchema) return [path.join('.')];
  const def = schema._zod.def as z.core.$ZodTypeDef & {
    innerType?: z.core.$ZodType;
    shape?: Record<string, z.core.$ZodType>;
    valueType?: z.core.$ZodType;
    element?: z.core.$ZodType;
    options?: readonly z.core.$ZodType[];
    in?: z.core.$ZodType;
  };
  const found = new Set<string>();
  const visit = (inner: z.core.$ZodType | undefined, more: readonly string[]) => {
    if (inner !== undefined)
      for (const key of findDurationKeys(inner, [...path, ...more])) found.add(key);
  };
  visit(def.innerType, []);
  for (const [key, inner] of Object.entries(def.shape ?? {})) visit(inner, [key]);
  visit(def.valueType, ['<name>']);
  visit(def.element, ['<n>']);
  for (const option of def.options ?? []) visit(option, []);
  if (def.type === 'pipe') visit(def.in, []);
  return [...found];
}

/** A real MCP server listing `tools` in pages of `pageSize`; calls are echoed. */
function startToolUpstream(tools: readonly string[], pageSize = 100): Promise<McpHttpUpstream> {
  return startMcpHttpUpstream(() => {
    const server = new Server(
      { name: 'listed-tools', version: '1.0.0' },
      { capabilities: { tools: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, (request) => {
      const start = Number(request.params?.cursor ?? 0);
      const end = start + pageSize;
      return {
        tools: tools
          .slice(start, end)
          .map((name) => ({ name, inputSchema: { type: 'object' as const } })),
        ...(end < tools.length && { nextCursor: String(end) }),
      };
    });
    server.setRequestHandler(CallToolRequestSchema, (request) => ({
      content: [{ type: 'text', text: `called ${request.params.name}` }],
    }));
    return server;
  });
}

/** Waits, within a generous bound, until `read` finds something. */
async function eventually<T>(
  what: string,
  read: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = await read();
    if (found !== undefined) return found;
    assert.ok(Date.now() < deadline, `${what} did not happen`);
    await sleep(50);
  }
}

describe('a grant naming a tool the upstream does not list', () => {
  const setup = createAuditedSetup('unlisted-grants');
  let payments: McpHttpUpstream;
  let paged: McpHttpUpstream;
  let gateway: TestGateway;
  let store: Store;

  /** The gateway's config, with `financeGrants` for the finance role. */
  function rawConfig(financeGrants: readonly string[]): Record<string, unknown> {
    return {
      ...setup.config,
      listen: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent' },
      auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
      agents: { 'invoice-bot': { roles: ['finance'] } },
      roles: {
        finance: { grants: [...financeGrants.map((tool) => ({ tool })), { tool: 'paged.t3' }] },
      },
      upstreams: { payments: { url: payments.url }, paged: { url: paged.url } },
    };
  }

  before(async () => {
    payments = await startToolUpstream(['issue_payment', 'list_payments']);
    paged = await startToolUpstream(['t1', 't2', 't3'], 2);
    gateway = await startTestGateway(
      rawConfig(['payments.issue_paymnt', 'payments.list_payments']),
    );
    store = await openStore(setup.storeUrl);
  });

  after(async () => {
    await store?.close();
    await gateway?.close();
    await payments?.close();
    await paged?.close();
    setup.cleanUp();
  });

  async function listTools(upstream: string): Promise<void> {
    const headers = await gateway.authHeaders({ agent: 'invoice-bot' });
    const sessionId = await openSession(gateway.endpoint(upstream), headers);
    const reply = await postMcp(
      gateway.endpoint(upstream),
      { jsonrpc: '2.0', id: 'list', method: 'tools/list', params: {} },
      { sessionId, headers },
    );
    assert.ok(answerIn(reply, 'list').result, reply.text);
  }

  const unlistedRecords = () => store.audit.query({ event: 'grant.unlisted' });

  test('is told in the log and the audit log, naming the grant and the tool, when the upstream is first listed', async () => {
    await listTools('payments');
    const [record, ...more] = await eventually('the grant.unlisted record', async () => {
      const records = await unlistedRecords();
      return records.length > 0 ? records : undefined;
    });
    assert.equal(more.length, 0);
    assert.equal(record?.upstream, 'payments');
    assert.deepEqual(record?.details?.['grants'], [
      {
        id: 'finance/tool/payments.issue_paymnt',
        keyPath: 'roles.finance.grants.0',
        tool: 'issue_paymnt',
      },
    ]);
    const warning = gateway.logs.find((line) => line['upstream'] === 'payments' && line['grants']);
    assert.equal(warning?.['level'], 40, 'a warning');
    assert.match(
      String(warning?.['msg']),
      /roles\.finance\.grants\.0 grants payments\.issue_paymnt, which payments does not list \(did you mean issue_payment\?\)/,
    );
  });

  test('is told once, not at every listing', async () => {
    await listTools('payments');
    await listTools('payments');
    assert.equal((await unlistedRecords()).length, 1);
  });

  test('one page of a paginated listing tells nothing: a granted tool may be on the next', async () => {
    await listTools('paged');
    await sleep(200);
    assert.deepEqual(
      (await unlistedRecords()).filter((record) => record.upstream === 'paged'),
      [],
    );
  });

  test('a reload is checked against the listings already seen, at once', async () => {
    const fixed = await gateway.reloadPolicy(
      parseConfig(rawConfig(['payments.issue_payment', 'payments.list_payments']), 'reload'),
    );
    assert.equal(fixed.ok, true);
    assert.equal((await unlistedRecords()).length, 1, 'a fixed policy tells nothing new');
    const broken = await gateway.reloadPolicy(
      parseConfig(rawConfig(['payments.issue_payment', 'payments.list_payment']), 'reload'),
    );
    assert.equal(broken.ok, true);
    const records = await eventually('the record of the reloaded policy', async () => {
      const found = await unlistedRecords();
      return found.length === 2 ? found : undefined;
    });
    const newest = records.find(
      (record) => record.details?.['policyVersion'] === (broken.ok ? broken.version : ''),
    );
    assert.deepEqual(newest?.details?.['grants'], [
      {
        id: 'finance/tool/payments.list_payment',
        keyPath: 'roles.finance.grants.1',
        tool: 'list_payment',
      },
    ]);
  });
});

describe('a reload with agents added and removed', () => {
  let upstream: ScriptedUpstream;
  let gateway: TestGateway;

  function rawConfig(agents: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    return {
      listen: { host: '127.0.0.1', port: 0 },
      store: 'sqlite::memory:',
      log: { level: 'debug' },
      auth: { resource: TEST_RESOURCE, issuers: [{ builtin: {} }] },
      agents,
      roles: { reader: { grants: [{ tool: 'fixture.echo' }] } },
      upstreams: { fixture: { url: upstream.url } },
      ...extra,
    };
  }

  before(async () => {
    upstream = await startScriptedUpstream();
    gateway = await startTestGateway(rawConfig({ 'old-bot': { roles: ['reader'] } }));
  });

  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  async function initialize(token: string) {
    return postMcp(gateway.endpoint('fixture'), initializeRequest(), {
      headers: { authorization: `Bearer ${token}` },
    });
  }

  test('puts the new registry in force: the new agent authenticates, the removed one cannot', async () => {
    const oldToken = await gateway.token({ agent: 'old-bot' });
    const reloaded = parseConfig(rawConfig({ 'new-bot': { roles: ['reader'] } }), 'reload');
    const newBot = reloaded.agents.get('new-bot');
    assert.ok(newBot && gateway.issuer);
    await assert.rejects(gateway.issuer.issueToken({ agent: newBot }), {
      code: 'WARDEN_UNKNOWN_AGENT',
    });

    const outcome = await gateway.reloadPolicy(reloaded);
    assert.deepEqual(outcome, {
      ok: true,
      version: outcome.ok ? outcome.version : '',
      needRestart: [],
    });

    const { token } = await gateway.issuer.issueToken({ agent: newBot });
    const admitted = await initialize(token);
    assert.equal(admitted.status, 200, admitted.text);
    const refused = await initialize(oldToken);
    assert.equal(refused.status, 401, refused.text);
    assert.match(String(refused.headers['www-authenticate']), /invalid_token/);
  });

  test('names the changed sections it did not apply, which need a restart', async () => {
    const outcome = await gateway.reloadPolicy(
      parseConfig(
        rawConfig({ 'new-bot': { roles: ['reader'] } }, { limits: { max_sessions: 5 } }),
        'reload',
      ),
    );
    assert.equal(outcome.ok && outcome.needRestart.join(), 'limits');
    const warning = gateway.logs.find((line) => line['needRestart'] && line['level'] === 40);
    assert.match(
      String(warning?.['msg']),
      /changed in the config but not reloaded, restart to apply: limits/,
    );
  });
});

describe('the unlisted-grant watch', () => {
  test('tells nothing of one page, and tells of the whole listing', async () => {
    const told: string[] = [];
    const recorded: AuditEntry[] = [];
    const policy = parseConfig(BASE, 'warden.yaml').policy;
    const catalog: ToolCatalog = {
      observe: () => Promise.resolve(new Map()),
      lookup: () => Promise.resolve({ status: 'unknown' }),
    };
    const watch = watchForUnlistedGrants(catalog, {
      policy: () => ({ version: 'v1', config: policy }),
      environment: 'test',
      now: () => 0,
      record: (entry) => {
        recorded.push(entry);
        return Promise.resolve();
      },
      alert: (message) => told.push(message),
      onError: (error) => assert.fail(String(error)),
    });
    const tool = (name: string) => ({ name, inputSchema: {} });
    await watch.catalog.observe('payments', [tool('issue_payment')], { complete: false });
    assert.deepEqual(told, []);
    await watch.catalog.observe('payments', [tool('issue_payment'), tool('refund')]);
    assert.deepEqual(told, [
      'grants name tools that upstream payments does not list; they allow nothing: roles.research.grants.0 grants payments.list_payments, which payments does not list',
    ]);
    assert.equal(recorded[0]?.event, 'grant.unlisted');
  });
});

describe('warden policy validate --live', () => {
  const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  let payments: McpHttpUpstream;

  before(async () => {
    payments = await startToolUpstream(['issue_payment', 'list_payments']);
  });
  after(() => payments?.close());

  /** A config file whose finance role is granted `tools`; `extra` upstreams beside payments. */
  function writeConfig(name: string, tools: readonly string[], extra = ''): string {
    const path = join(dir, name);
    writeFileSync(
      path,
      [
        'auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
        'agents: { invoice-bot: { roles: [finance] } }',
        `roles: { finance: { grants: [${tools.map((tool) => `{ tool: ${tool} }`).join(', ')}] } }`,
        `upstreams: { payments: { url: "${payments.url}" }${extra} }`,
        '',
      ].join('\n'),
    );
    return path;
  }

  /** Runs the built CLI without blocking this process, which serves the upstream. */
  function validate(config: string, ...flags: string[]) {
    return new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        [CLI, 'policy', 'validate', '--config', config, ...flags],
        { cwd: dir, timeout: 60_000 },
        (error, stdout, stderr) =>
          done({ status: error ? (error.code as number) : 0, stdout, stderr }),
      );
    });
  }

  test('lists the upstream’s tools and fails on a grant naming a tool it does not list', async () => {
    const config = writeConfig('typo.yaml', ['payments.issue_paymnt', 'payments.list_payments']);
    const offline = await validate(config);
    assert.equal(offline.status, 0, 'without --live the policy compiles');
    const live = await validate(config, '--live');
    assert.equal(live.status, 1, live.stderr);
    assert.match(live.stdout, /^upstream payments: 2 tools listed$/m, live.stderr);
    assert.match(
      live.stderr,
      /- roles\.finance\.grants\.0 grants payments\.issue_paymnt, which payments does not list \(did you mean issue_payment\?\)/,
    );
    assert.doesNotMatch(live.stderr, /list_payments/);
  });

  test('passes when every granted tool is listed, and fails on an upstream it cannot reach', async () => {
    const good = await validate(
      writeConfig('good.yaml', ['payments.issue_payment', 'payments.list_payments']),
      '--live',
    );
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /every granted tool is listed by its upstream/);
    const unreachable = await validate(
      writeConfig(
        'down.yaml',
        ['payments.issue_payment'],
        ', down: { url: "http://127.0.0.1:9/mcp" }',
      ),
      '--live',
    );
    assert.equal(unreachable.status, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /- upstreams\.down: could not list its tools: /);
  });
});

test(
  'warden serve: SIGHUP puts an agent added to the file in force, and names what needs a restart',
  { timeout: 60_000 },
  async () => {
    const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const secret = 'new-bot-secret-0123456789abcdef';
    const config = join(dir, 'served.yaml');
    const write = (agents: string, limits: string) =>
      writeFileSync(
        config,
        [
          'listen: { host: 127.0.0.1, port: 0 }',
          `store: sqlite:${join(dir, 'served.db')}`,
          `audit: { hash_key_file: ${join(dir, 'served-hash.key')} }`,
          'auth: { resource: https://warden.example.com/mcp, issuers: [{ builtin: {} }] }',
          `agents: { ${agents} }`,
          'roles: { reader: {} }',
          'upstreams: { docs: { url: "http://127.0.0.1:9/mcp" } }',
          limits,
          '',
        ].join('\n'),
      );
    write('old-bot: { roles: [reader] }', '');
    const child = spawn(process.execPath, [CLI, 'serve', '--config', config], { cwd: dir });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const waitFor = (pattern: RegExp) =>
      eventually(`${pattern} in the output:\n${output}`, () => pattern.exec(output) ?? undefined);
    try {
      const [, url] = await waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      const askToken = () =>
        fetch(`${url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: 'new-bot',
            client_secret: secret,
          }),
        });
      const before = await askToken();
      assert.equal(before.status, 401, 'not registered yet');
      await before.body?.cancel();

      write(
        `old-bot: { roles: [reader] }, new-bot: { roles: [reader], secret_hash: '${await hashClientSecret(secret)}' }`,
        'limits: { max_sessions: 5 }',
      );
      child.kill('SIGHUP');
      await waitFor(/policy and agents reloaded/);
      await waitFor(/restart to apply: limits/);
      const after = await askToken();
      assert.equal(after.status, 200, await after.clone().text());
      assert.ok(((await after.json()) as { access_token?: string }).access_token);
    } finally {
      child.kill('SIGKILL');
    }
  },
);
