// The policy must never judge a value that the tool reads differently. From the attacker's side:
// a prefix grant on demo://resource/static/* read through a dot segment, an encoded dot or slash,
// a backslash or fullwidth dots (an SDK server resolves those with `new URL()`); a hand-written
// forbid dodged by an uppercase host or an encoded letter; a 100 EUR cap on one vendor dodged
// with 'Acme Supplies GmbH ', a leading NBSP, a trailing newline, a zero-width space, fullwidth
// letters, another case or a decomposed accent (the tool trims and folds, so 900 EUR went to the
// capped vendor); a number sent as text to slip past a condition. Grants stay exact; restrictions
// match near-misses; text and URIs a tool could read otherwise are refused with their own codes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import fc from 'fast-check';
import { z } from 'zod';
import { parseConfig } from '../src/config/load.js';
import type { PolicyConfig } from '../src/config/policy-config.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import type { Decision } from '../src/domain/decision.js';
import type { ErrorCode } from '../src/domain/errors.js';
import { classifyMcpCall } from '../src/domain/mcp-call.js';
import { createMessageAuthorizer } from '../src/policy/authorize-message.js';
import { PolicyLoadError } from '../src/policy/policy-load-error.js';
import type { InputSchemaChecker } from '../src/policy/input-schema-check.js';
import {
  createPolicyEngine,
  refusalCodeOf,
  SUSPICIOUS_TEXT_POLICY,
  type PolicyEngine,
  type PolicyRequest,
} from '../src/policy/policy-engine.js';
import { normaliseText } from '../src/policy/normalise-text.js';
import { normaliseResourceUri, RESOURCE_URI_POLICY } from '../src/policy/normalise-uri.js';
import type { ToolCatalog } from '../src/policy/tool-catalog.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startMcpHttpUpstream, type McpHttpUpstream } from './support/mcp-http-upstream.js';
import {
  answerIn,
  assertWardenError,
  openSession,
  postMcp,
  type RawReply,
} from './support/raw-http.js';

/** Wednesday 3 June 2026, 10:00 UTC. */
const NOW = Date.parse('2026-06-03T10:00:00Z');
const NUM_RUNS = 300;
const ACME = 'Acme Supplies GmbH';

const scratch = mkdtempSync(join(tmpdir(), 'warden-normalisation-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function writeCedar(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

function policyOf(raw: Record<string, unknown>): PolicyConfig {
  return parseConfig(
    {
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      // The registry plays no part here: each decision is given its identity.
      agents: { 'attacker-bot': {} },
      upstreams: {
        demo: { url: 'http://127.0.0.1:3001/mcp' },
        payments: { url: 'http://127.0.0.1:3002/mcp' },
      },
      ...raw,
    },
    'test',
  ).policy;
}

function engineOf(raw: Record<string, unknown>): PolicyEngine {
  return createPolicyEngine(policyOf(raw));
}

function ask(
  engine: PolicyEngine,
  request: Pick<PolicyRequest, 'action' | 'upstream' | 'name'> & {
    readonly arguments?: unknown;
    readonly roles: readonly string[];
  },
): Decision {
  return engine.decide({
    action: request.action,
    upstream: request.upstream,
    name: request.name,
    ...(request.arguments !== undefined && { arguments: request.arguments }),
    identity: {
      agent: 'attacker-bot',
      user: undefined,
      roles: request.roles,
      tenant: undefined,
      environment: 'test',
      declaredModel: undefined,
    },
    now: NOW,
    states: new Map(),
    breakglass: new Set(),
  });
}

function assertDenied(decision: Decision, reason?: RegExp): void {
  assert.equal(decision.effect, 'deny', JSON.stringify(decision));
  assert.equal(decision.monitored, undefined);
  if (reason) {
    assert.ok(
      decision.reasons.some((text) => reason.test(text)),
      `${JSON.stringify(decision.reasons)} should match ${String(reason)}`,
    );
  }
}

function assertAllowed(decision: Decision): void {
  assert.equal(decision.effect, 'allow', JSON.stringify(decision));
}

/** Each trick against a prefix grant: a URI starting with the prefix that resolves elsewhere. */
const URI_ATTACKS: readonly (readonly [string, string])[] = [
  ['a dot-dot segment', 'demo://resource/static/../dynamic/text/1'],
  ['an encoded dot-dot (%2e%2e)', 'demo://resource/static/%2e%2e/dynamic/text/1'],
  ['an encoded dot-dot in mixed case (%2E%2e)', 'demo://resource/static/%2E%2e/dynamic/text/1'],
  ['a half-encoded dot-dot (.%2e)', 'demo://resource/static/.%2e/dynamic/text/1'],
  ['a half-encoded dot-dot (%2e.)', 'demo://resource/static/%2e./dynamic/text/1'],
  ['an encoded slash (%2f)', 'demo://resource/static/..%2fdynamic/text/1'],
  ['an encoded slash in uppercase (%2F)', 'demo://resource/static/%2F..%2Fdynamic/text/1'],
  ['an empty segment (//)', 'demo://resource/static//dynamic/text/1'],
  ['backslashes', 'demo://resource/static/..\\dynamic\\text\\1'],
  ['an encoded backslash (%5C)', 'demo://resource/static/..%5Cdynamic/text/1'],
  ['fullwidth dots', 'demo://resource/static/\uFF0E\uFF0E/dynamic/text/1'],
  ['encoded fullwidth dots', 'demo://resource/static/%EF%BC%8E%EF%BC%8E/dynamic/text/1'],
  ['one-dot leaders (U+2024)', 'demo://resource/static/\u2024\u2024/dynamic/text/1'],
  ['an overlong UTF-8 dot (%C0%AE)', 'demo://resource/static/%C0%AE%C0%AE/dynamic/text/1'],
  ['double encoding (%252e%252e)', 'demo://resource/static/%252e%252e/dynamic/text/1'],
  ['a trailing /.', 'demo://resource/static/.'],
  ['a trailing /..', 'demo://resource/static/..'],
  ['a single-dot segment', 'demo://resource/static/./document/architecture.md'],
  ['a dot-dot with a parameter (..;)', 'demo://resource/static/..;/dynamic/text/1'],
  ['a dot-dot in the query', 'demo://resource/static/view?path=../dynamic/text/1'],
  ['an encoded dot-dot in the query', 'demo://resource/static/view?path=%2e%2e%2Fdynamic'],
  ['a fragment', 'demo://resource/static/x#/../../dynamic/text/1'],
  ['a NUL', 'demo://resource/static/x\u0000/../../dynamic/text/1'],
  ['an encoded NUL', 'demo://resource/static/x%00'],
  ['a newline', 'demo://resource/static/x\n'],
  ['a tab', 'demo://resource/static/\t../dynamic/text/1'],
  ['a space', 'demo://resource/static/ ../dynamic/text/1'],
  ['an encoded NBSP', 'demo://resource/static/%C2%A0'],
  ['a zero-width space', 'demo://resource/static/.\u200B./dynamic/text/1'],
  ['a right-to-left override', 'demo://resource/static/\u202E1/txet/cimanyd/../..'],
  ['user information in the authority', 'demo://attacker@resource/static/x'],
  ['a percent-encoded host', 'demo://%72esource/static/x'],
  ['invalid percent-encoding', 'demo://resource/static/%zz/../x'],
  ['a decomposed accent', 'demo://resource/static/Cafe\u0301'],
];

describe('resource URIs: a prefix grant on demo://resource/static/*', () => {
  const engine = engineOf({
    roles: { reader: { grants: [{ resource: 'demo:demo://resource/static/*' }] } },
  });
  const read = (uri: string) =>
    ask(engine, { action: 'read_resource', upstream: 'demo', name: uri, roles: ['reader'] });

  test('reads what the prefix covers, and nothing beside it', () => {
    assertAllowed(read('demo://resource/static/document/architecture.md'));
    assertDenied(read('demo://resource/dynamic/text/1'), /did not apply/);
  });

  for (const [attack, uri] of URI_ATTACKS) {
    test(`refuses a read through ${attack}, as ambiguous`, () => {
      const decision = read(uri);
      assertDenied(decision, /refused as ambiguous/);
      assert.deepEqual(decision.policies, [RESOURCE_URI_POLICY]);
      assert.equal(refusalCodeOf(decision), 'WARDEN_RESOURCE_URI_AMBIGUOUS');
    });
  }

  test('an ambiguous URI is refused even to a trusted role holding every resource', () => {
    const trusted = engineOf({ roles: { ops: { trusted: true, grants: [{ resource: '*' }] } } });
    assertAllowed(
      ask(trusted, {
        action: 'read_resource',
        upstream: 'demo',
        name: 'demo://resource/x',
        roles: ['ops'],
      }),
    );
    for (const [, uri] of URI_ATTACKS) {
      const decision = ask(trusted, {
        action: 'read_resource',
        upstream: 'demo',
        name: uri,
        roles: ['ops'],
      });
      assert.deepEqual(decision.policies, [RESOURCE_URI_POLICY], uri);
    }
  });

  test('monitor mode never lets an ambiguous URI through', () => {
    const monitored = engineOf({
      roles: {
        pilot: { mode: 'monitor', grants: [{ resource: 'demo:demo://resource/static/*' }] },
      },
    });
    const decision = ask(monitored, {
      action: 'read_resource',
      upstream: 'demo',
      name: 'demo://resource/static/../dynamic/text/1',
      roles: ['pilot'],
    });
    assertDenied(decision, /ambiguous/);
  });
});

describe('resource URIs are judged in their normal form', () => {
  const forbidSecret = writeCedar(
    'no-secret.cedar',
    `@id("no-secret")
@reason("the secret folder is not for agents")
forbid (principal, action == Warden::Action::"read_resource", resource)
when { context.target like "demo:demo://resource/static/secret*" };
`,
  );
  const engine = engineOf({
    roles: { reader: { grants: [{ resource: 'demo:demo://resource/static/*' }] } },
    policy: { files: [forbidSecret] },
  });
  const read = (uri: string) =>
    ask(engine, { action: 'read_resource', upstream: 'demo', name: uri, roles: ['reader'] });

  for (const [variant, uri] of [
    ['an uppercase scheme', 'DEMO://resource/static/secret/keys'],
    ['an uppercase host', 'demo://RESOURCE/static/secret/keys'],
    ['a mixed-case scheme and host', 'Demo://Resource/static/secret/keys'],
    ['an encoded letter (%73)', 'demo://resource/static/%73ecret/keys'],
    ['encoded letters in lowercase hex', 'demo://resource/static/%73%65%63%72%65%74/keys'],
    ['an empty port', 'demo://resource:/static/secret/keys'],
  ] as const) {
    test(`a forbid on the secret folder still applies to ${variant}`, () => {
      assertDenied(read(uri), /the secret folder is not for agents/);
    });
  }

  test('the same harmless variants of an allowed URI are allowed', () => {
    for (const uri of [
      'DEMO://resource/static/document/architecture.md',
      'demo://RESOURCE/static/document/architecture.md',
      'demo://resource/static/%64ocument/architecture.md',
      'demo://resource/static/%C3%9Cbersicht',
      'demo://resource/static/\u00DCbersicht',
    ]) {
      assertAllowed(read(uri));
    }
  });

  test('a grant written in another case or with escapes matches the normal form', () => {
    const loose = engineOf({
      roles: { reader: { grants: [{ resource: 'demo:DEMO://Resource/static/%64oc*' }] } },
    });
    assertAllowed(
      ask(loose, {
        action: 'read_resource',
        upstream: 'demo',
        name: 'demo://resource/static/document/a.md',
        roles: ['reader'],
      }),
    );
  });

  test('a grant naming an ambiguous URI does not load', () => {
    assert.throws(
      () =>
        engineOf({
          roles: { reader: { grants: [{ resource: 'demo:demo://resource/static/../*' }] } },
        }),
      (error: unknown) =>
        error instanceof PolicyLoadError &&
        error.problems.some((problem) => /grants\.0\.resource: .*dot segment/.test(problem)),
    );
  });

  test('template listings are judged with their expressions kept', () => {
    const lister = engineOf({
      roles: { reader: { grants: [{ resource: 'demo:demo://resource/dynamic/*' }] } },
    });
    for (const template of [
      'demo://resource/dynamic/text/{resourceId}',
      'DEMO://resource/dynamic/blob/{resourceId}',
    ]) {
      assertAllowed(
        ask(lister, {
          action: 'read_resource',
          upstream: 'demo',
          name: template,
          roles: ['reader'],
        }),
      );
    }
  });
});

describe('the authorizer: reads, subscriptions and completions', () => {
  const policy = policyOf({
    roles: { reader: { grants: [{ resource: 'demo:demo://resource/static/*' }] } },
  });
  const engine = createPolicyEngine(policy);
  const authorizer = createMessageAuthorizer({
    engine: () => engine,
    policy: () => policy,
    inputs: {
      states: () => new Map(),
      breakglassFor: () => new Map(),
      refresh: async () => undefined,
      close: () => undefined,
    },
    catalog: {} as ToolCatalog,
    schemaChecker: {} as InputSchemaChecker,
    store: {} as Pick<Store, 'quotas'>,
    now: () => NOW,
    record: async () => undefined,
    alert: () => undefined,
  });
  const identity = {
    agent: 'attacker-bot',
    user: undefined,
    roles: ['reader'],
    tenant: undefined,
    environment: 'test',
    declaredModel: undefined,
  } as unknown as Parameters<typeof authorizer.authorize>[1];
  const send = (method: string, params: Record<string, unknown>) =>
    authorizer.authorize(
      classifyMcpCall({ jsonrpc: '2.0', id: 7, method, params }),
      identity,
      'demo',
    );
  const dotDot = 'demo://resource/static/%2e%2e/dynamic/text/1';

  for (const method of ['resources/read', 'resources/subscribe', 'resources/unsubscribe']) {
    test(`${method} through an encoded dot-dot is refused as WARDEN_RESOURCE_URI_AMBIGUOUS`, async () => {
      const authorization = await send(method, { uri: dotDot });
      assert.equal(authorization.decision.effect, 'deny');
      assert.deepEqual(authorization.decision.policies, [RESOURCE_URI_POLICY]);
      assert.equal(authorization.error?.code, 'WARDEN_RESOURCE_URI_AMBIGUOUS');
      assert.deepEqual(authorization.error?.details, { reasons: authorization.decision.reasons });
      assert.equal(authorization.rewriteRequest, undefined);
    });
  }

  test('a completion naming a resource through a dot-dot is refused', async () => {
    const authorization = await send('completion/complete', {
      ref: { type: 'ref/resource', uri: 'demo://resource/static/../dynamic/text/{resourceId}' },
      argument: { name: 'resourceId', value: '1' },
    });
    assert.equal(authorization.error?.code, 'WARDEN_RESOURCE_URI_AMBIGUOUS');
  });

  test('an uppercase host is allowed and forwarded in the normal form that was judged', async () => {
    const meta = { progressToken: 'p1' };
    const authorization = await send('resources/read', {
      uri: 'DEMO://RESOURCE/static/%64ocument/a.md',
      _meta: meta,
    });
    assert.equal(authorization.decision.effect, 'allow');
    assert.deepEqual(authorization.rewriteRequest, {
      jsonrpc: '2.0',
      id: 7,
      method: 'resources/read',
      params: { uri: 'demo://resource/static/document/a.md', _meta: meta },
    });
  });

  test('a completion ref keeps its template expressions when forwarded normalised', async () => {
    const authorization = await send('completion/complete', {
      ref: { type: 'ref/resource', uri: 'DEMO://resource/static/{name}' },
      argument: { name: 'name', value: 'a' },
    });
    assert.equal(authorization.decision.effect, 'allow');
    assert.deepEqual(authorization.rewriteRequest?.params, {
      ref: { type: 'ref/resource', uri: 'demo://resource/static/{name}' },
      argument: { name: 'name', value: 'a' },
    });
  });

  test('a URI already in normal form is forwarded as sent, and a denial rewrites nothing', async () => {
    const plain = await send('resources/read', { uri: 'demo://resource/static/document/a.md' });
    assert.equal(plain.decision.effect, 'allow');
    assert.equal(plain.rewriteRequest, undefined);
    const denied = await send('resources/read', { uri: 'DEMO://resource/dynamic/text/1' });
    assert.equal(denied.error?.code, 'WARDEN_POLICY_DENIED');
    assert.equal(denied.rewriteRequest, undefined);
  });
});

describe('URI normalisation, for any string', () => {
  const pieces = fc.constantFrom(
    'static',
    'document',
    'a.md',
    '.',
    '..',
    '%2e',
    '%2E',
    '%2f',
    '%2F',
    '/',
    '//',
    '\\',
    '?',
    '#',
    ';',
    '=',
    '&',
    ':',
    '@',
    '~',
    '%41',
    '%7e',
    '%7E',
    '%25',
    '%252e',
    '%zz',
    '%C3%9C',
    '%c3%9c',
    '\u00DC',
    'e\u0301',
    '\uFF0E',
    '\u200B',
    ' ',
    '%00',
    '%20',
    '{',
    '}',
    'x',
  );
  const uris = fc
    .tuple(
      fc.constantFrom('demo', 'DEMO', 'Demo'),
      fc.constantFrom('resource', 'RESOURCE', 'Resource'),
      fc.array(pieces, { maxLength: 12 }),
    )
    .map(([scheme, host, path]) => `${scheme}://${host}/${path.join('')}`);

  /** Escapes as RFC 3986 §6.2.2 compares them: unreserved ones decoded, hex upper-cased. */
  const canonicalEscapes = (text: string) =>
    text.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
      const ch = String.fromCharCode(parseInt(hex, 16));
      return /[A-Za-z0-9\-._~]/.test(ch) ? ch : escape.toUpperCase();
    });

  test('an accepted URI is its own normal form, and a server reads exactly that', () => {
    fc.assert(
      fc.property(uris, (uri) => {
        const result = normaliseResourceUri(uri);
        if (!result.ok) return;
        assert.deepEqual(normaliseResourceUri(result.uri), result, uri);
        assert.equal(new URL(result.uri).href, result.uri, uri);
      }),
      { numRuns: NUM_RUNS * 3 },
    );
  });

  test('a server resolving the URI as sent reaches the path that was judged', () => {
    fc.assert(
      fc.property(uris, (uri) => {
        const result = normaliseResourceUri(uri);
        if (!result.ok) return;
        const sent = new URL(uri);
        const judged = new URL(result.uri);
        assert.equal(canonicalEscapes(sent.pathname), judged.pathname, uri);
        assert.equal(canonicalEscapes(sent.search), judged.search, uri);
        assert.equal(sent.host.toLowerCase(), judged.host, uri);
      }),
      { numRuns: NUM_RUNS * 3 },
    );
  });
});

/** A grant with a general cap, and a 100 EUR cap on Acme (and two vendors with accents). */
const PAYMENTS = {
  scopes: {
    general_cap: { arg: 'amount', max: 1000 },
    acme_cap: { arg: 'amount', max: 100, when: { arg: 'vendor', equals: ACME } },
    accented_cap: {
      arg: 'amount',
      max: 100,
      when: { arg: 'vendor', in: ['Caf\u00E9 Z\u00FCrich AG', 'Stra\u00DFe GmbH'] },
    },
    vendor_text_raw: { arg: 'vendor', text: 'raw' },
  },
};
const CAPPED = ['general_cap', 'acme_cap', 'accented_cap'];

function payments(options: { raw?: boolean; mode?: 'monitor' } = {}): PolicyEngine {
  return engineOf({
    ...PAYMENTS,
    roles: {
      payer: {
        ...(options.mode && { mode: options.mode }),
        grants: [
          {
            tool: 'payments.pay',
            scope: options.raw ? [...CAPPED, 'vendor_text_raw'] : CAPPED,
          },
        ],
      },
    },
  });
}

function pay(engine: PolicyEngine, args: unknown): Decision {
  return ask(engine, {
    action: 'call_tool',
    upstream: 'payments',
    name: 'pay',
    arguments: args,
    roles: ['payer'],
  });
}

/** Vendor names a trimming tool reads as Acme: each refused by default. */
const SUSPICIOUS_ACME: readonly (readonly [string, string])[] = [
  ['a trailing space', `${ACME} `],
  ['a leading space', ` ${ACME}`],
  ['a leading NBSP', `\u00A0${ACME}`],
  ['a trailing NBSP', `${ACME}\u00A0`],
  ['a trailing newline', `${ACME}\n`],
  ['a trailing CRLF', `${ACME}\r\n`],
  ['a leading tab', `\t${ACME}`],
  ['an inner tab', 'Acme\tSupplies GmbH'],
  ['an inner newline', 'Acme Supplies\nGmbH'],
  ['a trailing ideographic space', `${ACME}\u3000`],
  ['a trailing NUL', `${ACME}\u0000`],
  ['a zero-width space', 'Acme\u200B Supplies GmbH'],
  ['a zero-width joiner', 'Ac\u200Dme Supplies GmbH'],
  ['a right-to-left override', `\u202E${ACME}`],
  ['a pop-directional isolate', `${ACME}\u2069`],
  ['a soft hyphen', 'Ac\u00ADme Supplies GmbH'],
  ['a byte-order mark', `\uFEFF${ACME}`],
  ['a Hangul filler', `${ACME}\u3164`],
  ['a line separator', `${ACME}\u2028`],
];

/** Vendor names without invisible edges that a folding tool still reads as a capped vendor. */
const NEAR_MISSES: readonly (readonly [string, string])[] = [
  ['fullwidth letters', '\uFF21\uFF43\uFF4D\uFF45 Supplies GmbH'],
  ['upper case', 'ACME SUPPLIES GMBH'],
  ['lower case', 'acme supplies gmbh'],
  ['a doubled inner space', 'Acme  Supplies GmbH'],
  ['an inner NBSP', 'Acme\u00A0Supplies GmbH'],
  ['an inner ideographic space', 'Acme\u3000Supplies GmbH'],
  ['a decomposed accent (e + U+0301, u + U+0308)', 'Cafe\u0301 Zu\u0308rich AG'],
  ['a precomposed name in upper case', 'CAF\u00C9 Z\u00DCRICH AG'],
  ['ss for \u00DF', 'Strasse GmbH'],
  ['a capital sharp s (U+1E9E)', 'STRA\u1E9EE GMBH'],
  ['the vendor in a list', [ACME] as unknown as string],
];

describe('a cap on one vendor: restrictions match near-misses, grants stay exact', () => {
  const strict = payments();
  const raw = payments({ raw: true });

  test('the cap applies to the exact vendor and to no other', () => {
    assertAllowed(pay(strict, { vendor: ACME, amount: 100 }));
    assertDenied(pay(strict, { vendor: ACME, amount: 900 }), /at most 100 when vendor is/);
    assertAllowed(pay(strict, { vendor: 'Globex Cloud Services Inc.', amount: 900 }));
    assertDenied(pay(strict, { vendor: 'Globex Cloud Services Inc.', amount: 1001 }));
  });

  for (const [trick, vendor] of SUSPICIOUS_ACME) {
    test(`refuses 900 EUR to the capped vendor with ${trick}, as suspicious text`, () => {
      const decision = pay(strict, { vendor, amount: 900 });
      assertDenied(decision, /argument vendor holds/);
      assert.deepEqual(decision.policies, [SUSPICIOUS_TEXT_POLICY]);
      assert.equal(refusalCodeOf(decision), 'WARDEN_ARGUMENT_SUSPICIOUS_TEXT');
      assert.ok(decision.reasons.every((reason) => !reason.includes('Acme')));
    });

    test(`with text: raw, the cap still applies to the vendor with ${trick}`, () => {
      assertDenied(pay(raw, { vendor, amount: 900 }), /at most 100 when vendor is/);
      assertAllowed(pay(raw, { vendor, amount: 100 }));
    });
  }

  for (const [trick, vendor] of NEAR_MISSES) {
    test(`the cap applies to a capped vendor written with ${trick}`, () => {
      assertDenied(pay(strict, { vendor, amount: 900 }), /at most 100 when vendor is/);
      assertDenied(pay(raw, { vendor, amount: 900 }), /at most 100 when vendor is/);
    });
  }

  test('monitor mode never softens a refusal of suspicious text', () => {
    const decision = pay(payments({ mode: 'monitor' }), { vendor: `${ACME} `, amount: 900 });
    assertDenied(decision, /argument vendor holds leading or trailing whitespace/);
  });

  test('text: raw on another argument does not exempt the vendor', () => {
    const engine = engineOf({
      ...PAYMENTS,
      scopes: { ...PAYMENTS.scopes, memo_raw: { arg: 'memo', text: 'raw' } },
      roles: { payer: { grants: [{ tool: 'payments.pay', scope: [...CAPPED, 'memo_raw'] }] } },
    });
    assert.deepEqual(pay(engine, { vendor: `${ACME} `, amount: 50 }).policies, [
      SUSPICIOUS_TEXT_POLICY,
    ]);
    assertAllowed(pay(engine, { vendor: ACME, amount: 50, memo: ' free\ttext\n' }));
  });

  test('text: raw alone constrains nothing, and needs an argument and a known mode', () => {
    const marked = engineOf({
      scopes: { memo_raw: { arg: 'memo', text: 'raw' } },
      roles: { payer: { grants: [{ tool: 'payments.pay', scope: 'memo_raw' }] } },
    });
    assertAllowed(pay(marked, { amount: 1 }));
    for (const scope of [{ text: 'raw' }, { arg: 'memo', text: 'loose' }]) {
      assert.throws(
        () =>
          engineOf({
            scopes: { broken: scope },
            roles: { payer: { grants: [{ tool: 'payments.pay', scope: 'broken' }] } },
          }),
        /scopes\.broken/,
      );
    }
  });

  test('arguments no scope compares may carry any text', () => {
    assertAllowed(pay(strict, { vendor: ACME, amount: 50, memo: '\u202E trailing \n' }));
  });

  describe('an allow-list grants exactly what it lists', () => {
    const listed = (raw: boolean) =>
      engineOf({
        lists: { vendors: [ACME] },
        scopes: {
          vendors_only: { arg: 'vendor', in_list: 'vendors' },
          ...(raw && { vendor_text_raw: { arg: 'vendor', text: 'raw' } }),
        },
        roles: {
          payer: {
            grants: [
              {
                tool: 'payments.pay',
                scope: raw ? ['vendors_only', 'vendor_text_raw'] : 'vendors_only',
              },
            ],
          },
        },
      });

    test('the listed vendor is allowed; near-misses are not', () => {
      for (const engine of [listed(false), listed(true)]) {
        assertAllowed(pay(engine, { vendor: ACME }));
        for (const [, vendor] of [...NEAR_MISSES, ...SUSPICIOUS_ACME]) {
          assertDenied(pay(engine, { vendor }));
        }
      }
    });
  });
});

describe('numbers: the policy and the tool see one value', () => {
  const engine = engineOf({
    scopes: {
      cap: [
        { arg: 'amount', min: 0, max: 1000 },
        { arg: 'amount', max: 10, when: { arg: 'tier', equals: 2 } },
        { arg: 'amount', max: 20, when: { arg: 'urgent', equals: true } },
      ],
      tier_text: { arg: 'tier', text: 'raw' },
    },
    roles: { payer: { grants: [{ tool: 'payments.pay', scope: ['cap', 'tier_text'] }] } },
  });

  test('JSON spellings of one number are one number: 1e3 and 1000.0 are 1000, -0 is 0', () => {
    for (const text of ['{"amount":1e3}', '{"amount":1000.0}', '{"amount":10E2}']) {
      assertAllowed(pay(engine, JSON.parse(text)));
    }
    assertAllowed(pay(engine, JSON.parse('{"amount":-0}')));
    assertAllowed(pay(engine, { amount: -0 }));
  });

  test('refuses a number a hair above the limit, or beyond four decimals', () => {
    for (const text of [
      '{"amount":1000.0000000000001}',
      '{"amount":1000.00001}',
      '{"amount":1e21}',
    ]) {
      assertDenied(pay(engine, JSON.parse(text)), /\bamount\b/);
    }
  });

  test('refuses an amount sent as text, however a tool might parse it', () => {
    for (const amount of ['100', '1e2', '100.0', '0x64', '+100', '1000', ' 100']) {
      assertDenied(pay(engine, { amount }), /\bamount\b/);
    }
  });

  test('a numeric condition applies to the number written as text', () => {
    assertAllowed(pay(engine, { amount: 500, tier: 1 }));
    assertDenied(pay(engine, { amount: 500, tier: 2 }), /at most 10 when tier is 2/);
    for (const tier of ['2', '2.0', '2e0', '+2', '0x2', ' 2 ', '\uFF12', 2.0, [2]]) {
      assertDenied(pay(engine, { amount: 500, tier }), /at most 10 when tier is 2/);
    }
  });

  test('a boolean condition applies to true written as text', () => {
    assertAllowed(pay(engine, { amount: 500, urgent: false }));
    for (const urgent of [true, 'true', 'TRUE', 'True']) {
      assertDenied(pay(engine, { amount: 500, urgent }), /at most 20 when urgent is true/);
    }
  });
});

describe('hand-written forbids', () => {
  const noAcme = writeCedar(
    'no-acme.cedar',
    `@id("no-acme")
@reason("Acme is under review")
forbid (principal, action == Warden::Action::"call_tool", resource)
when { context.normalized.arguments has vendor && context.normalized.arguments.vendor == "acme supplies gmbh" };
`,
  );
  const noEvil = writeCedar(
    'no-evil.cedar',
    `@id("no-evil")
forbid (principal, action == Warden::Action::"call_tool", resource)
when { context.arguments has vendor && context.arguments.vendor == "Evil Corp" };
`,
  );
  const engine = engineOf({
    ...PAYMENTS,
    roles: {
      payer: { grants: [{ tool: 'payments.pay', scope: [...CAPPED, 'vendor_text_raw'] }] },
      admin: { trusted: true, grants: [{ tool: 'payments.*' }] },
    },
    policy: { files: [noAcme, noEvil] },
  });

  test('a forbid on the normal form catches every near-miss of the vendor', () => {
    for (const [, vendor] of [['exact', ACME] as const, ...SUSPICIOUS_ACME, ...NEAR_MISSES]) {
      if (typeof vendor !== 'string' || !/acme/i.test(normaliseText(vendor))) continue;
      assertDenied(pay(engine, { vendor, amount: 1 }), /Acme is under review/);
    }
    assertAllowed(pay(engine, { vendor: 'Globex', amount: 1 }));
  });

  test('a forbid reads the arguments even when the caller’s own grant constrains none', () => {
    const admin = ask(engine, {
      action: 'call_tool',
      upstream: 'payments',
      name: 'pay',
      arguments: { vendor: 'Evil Corp', amount: 1 },
      roles: ['admin'],
    });
    assertDenied(admin, /no-evil/);
    const normalized = ask(engine, {
      action: 'call_tool',
      upstream: 'payments',
      name: 'pay',
      arguments: { vendor: 'ACME SUPPLIES GMBH', amount: 1 },
      roles: ['admin'],
    });
    assertDenied(normalized, /Acme is under review/);
  });
});

describe('normal forms, for any string', () => {
  const target = normaliseText(ACME);
  const perturbed = fc
    .tuple(
      fc.array(fc.constantFrom(' ', '\u00A0', '\u200B', '\uFEFF', '\n', '\t', '\u202E', ''), {
        maxLength: 3,
      }),
      fc.array(fc.boolean(), { minLength: ACME.length, maxLength: ACME.length }),
      fc.array(
        fc.oneof(
          { weight: 30, arbitrary: fc.constant('') },
          { weight: 2, arbitrary: fc.constantFrom('\u00AD', '\u200D', '\u2060') },
          { weight: 1, arbitrary: fc.constantFrom(' ', 'x', '\u0301') },
        ),
        { minLength: ACME.length, maxLength: ACME.length },
      ),
      fc.boolean(),
      fc.array(fc.constantFrom(' ', '\u3000', '\r\n', '\u2069', ''), { maxLength: 3 }),
    )
    .map(([lead, upper, inserts, fullwidth, trail]) => {
      const body = [...ACME]
        .map((ch, i) => {
          let out = upper[i] ? ch.toUpperCase() : ch.toLowerCase();
          if (fullwidth && /[A-Za-z]/.test(out)) {
            out = String.fromCharCode(out.charCodeAt(0) + 0xfee0);
          }
          return `${out}${inserts[i] ?? ''}`;
        })
        .join('');
      return `${lead.join('')}${body}${trail.join('')}`;
    });
  const vendors = fc.oneof(
    { weight: 6, arbitrary: perturbed },
    { weight: 2, arbitrary: fc.string() },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme' }) },
    { weight: 1, arbitrary: fc.constantFrom(ACME, 'Globex', 'Acme', 'Acme Supplies') },
  );
  const strict = payments();
  const raw = payments({ raw: true });

  test('normalising twice changes nothing', () => {
    fc.assert(
      fc.property(fc.oneof(vendors, fc.string({ unit: 'binary' })), (text) => {
        const once = normaliseText(text);
        assert.equal(normaliseText(once), once, JSON.stringify(text));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('whenever a vendor normalises to the capped vendor, the cap applies', () => {
    fc.assert(
      fc.property(vendors, (vendor) => {
        fc.pre(normaliseText(vendor) === target);
        assertDenied(pay(strict, { vendor, amount: 900 }));
        assertDenied(pay(raw, { vendor, amount: 900 }), /at most 100 when vendor is/);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  test('with text: raw, 900 EUR is refused exactly when the vendor normalises to the capped one', () => {
    fc.assert(
      fc.property(vendors, (vendor) => {
        const capped = normaliseText(vendor) === target;
        const effect = pay(raw, { vendor, amount: 900 }).effect;
        assert.equal(effect, capped ? 'deny' : 'allow', JSON.stringify(vendor));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

// ——— through a real gateway ———

interface Exchange {
  readonly reply: RawReply;
  readonly id: number;
}

function demoServer(): McpServer {
  const server = new McpServer({ name: 'normalisation-demo', version: '1.0.0' });
  server.registerResource(
    'architecture',
    'demo://resource/static/document/architecture.md',
    { mimeType: 'text/markdown' },
    (uri) => ({ contents: [{ uri: uri.href, text: '# Architecture' }] }),
  );
  server.registerResource(
    'dynamic-text',
    new ResourceTemplate('demo://resource/dynamic/text/{id}', { list: undefined }),
    { mimeType: 'text/plain' },
    (uri, variables) => ({
      contents: [{ uri: uri.href, text: `secret dynamic text ${String(variables['id'])}` }],
    }),
  );
  server.registerTool(
    'pay',
    {
      description: 'Pay a vendor.',
      inputSchema: { vendor: z.string(), amount: z.number() },
    },
    ({ vendor, amount }) => ({
      content: [{ type: 'text', text: `paid ${amount} to ${vendor.trim()}` }],
    }),
  );
  return server;
}

describe('through a gateway, against an SDK server that resolves URIs with new URL()', () => {
  const storeUrl = `sqlite:${join(scratch, 'gateway.db')}`;
  let upstream: McpHttpUpstream;
  let gateway: TestGateway;
  let store: Store;

  before(async () => {
    upstream = await startMcpHttpUpstream(demoServer);
    gateway = await startTestGateway({
      store: storeUrl,
      log: { level: 'silent' },
      agents: {
        'reader-bot': { roles: ['reader'] },
        'payer-bot': { roles: ['payer'] },
      },
      ...PAYMENTS,
      roles: {
        reader: { grants: [{ resource: 'demo:demo://resource/static/*' }] },
        payer: { grants: [{ tool: 'demo.pay', scope: CAPPED }] },
      },
      upstreams: { demo: { url: upstream.url } },
    });
    store = await openStore(storeUrl);
  });

  after(async () => {
    await store?.close();
    await gateway?.close();
    await upstream?.close();
  });

  type Send = (method: string, params: Record<string, unknown>) => Promise<Exchange>;
  /** One session per agent, shared by the tests (an agent may hold only a few at once). */
  const sessions = new Map<string, Promise<Send>>();
  let nextId = 1;
  const open = async (agent: string): Promise<Send> => {
    const headers = await gateway.authHeaders({ agent });
    const url = gateway.endpoint('demo');
    const sessionId = await openSession(url, headers);
    return async (method, params) => {
      const id = nextId++;
      const reply = await postMcp(
        url,
        { jsonrpc: '2.0', id, method, params },
        { sessionId, headers },
      );
      return { reply, id };
    };
  };
  const connect = (agent: string): Promise<Send> => {
    let session = sessions.get(agent);
    if (session === undefined) {
      session = open(agent);
      sessions.set(agent, session);
    }
    return session;
  };

  /** The refusal, recorded once as call.denied under the client's reference, never forwarded. */
  const assertRefused = async (exchange: Exchange, code: ErrorCode): Promise<AuditRecord> => {
    const body = assertWardenError(exchange.reply, code, exchange.id);
    const reference = String(body.error?.data?.reference);
    assert.equal(reference, exchange.reply.headers['x-request-id']);
    const records = await store.audit.query({ requestId: reference });
    assert.deepEqual(
      records.map((record) => record.event),
      ['call.denied'],
    );
    return records[0] as AuditRecord;
  };

  const readsReceived = () =>
    upstream.received.filter((message) => message.method === 'resources/read').length;

  test('the reader reads the static document it was granted', async () => {
    const request = await connect('reader-bot');
    const { reply, id } = await request('resources/read', {
      uri: 'demo://resource/static/document/architecture.md',
    });
    assert.ok(answerIn(reply, id).result, reply.text);
  });

  for (const [attack, uri] of URI_ATTACKS.slice(0, 12)) {
    test(`a read through ${attack} is refused and never reaches the server`, async () => {
      const request = await connect('reader-bot');
      const before = readsReceived();
      const record = await assertRefused(
        await request('resources/read', { uri }),
        'WARDEN_RESOURCE_URI_AMBIGUOUS',
      );
      assert.deepEqual(record.decision?.policies, [RESOURCE_URI_POLICY]);
      assert.match(record.decision?.reasons[0] ?? '', /refused as ambiguous/);
      assert.equal(readsReceived(), before);
    });
  }

  test('an uppercase host is forwarded in the normal form that was judged', async () => {
    const request = await connect('reader-bot');
    const { reply, id } = await request('resources/read', {
      uri: 'demo://RESOURCE/static/document/architecture.md',
    });
    assert.ok(answerIn(reply, id).result, reply.text);
    const last = upstream.received.at(-1);
    assert.equal(last?.params?.['uri'], 'demo://resource/static/document/architecture.md');
  });

  test('900 EUR to the capped vendor with a trailing space is refused and never paid', async () => {
    const request = await connect('payer-bot');
    await request('tools/list', {});
    const exchange = await request('tools/call', {
      name: 'pay',
      arguments: { vendor: `${ACME} `, amount: 900 },
    });
    const error = answerIn(exchange.reply, exchange.id).error;
    assert.ok(error, exchange.reply.text);
    const records = await store.audit.query({ requestId: String(error.data?.reference) });
    assert.deepEqual(
      records.map((record) => record.event),
      ['call.denied'],
    );
    assert.deepEqual(records[0]?.decision?.policies, [SUSPICIOUS_TEXT_POLICY]);
    assert.deepEqual(upstream.callsTo('pay'), []);
  });

  test('the refusal of suspicious text reaches the client as WARDEN_ARGUMENT_SUSPICIOUS_TEXT', async () => {
    const request = await connect('payer-bot');
    await request('tools/list', {});
    await assertRefused(
      await request('tools/call', {
        name: 'pay',
        arguments: { vendor: `\u00A0${ACME}`, amount: 900 },
      }),
      'WARDEN_ARGUMENT_SUSPICIOUS_TEXT',
    );
  });

  test('900 EUR to the capped vendor in fullwidth letters meets the cap', async () => {
    const request = await connect('payer-bot');
    await request('tools/list', {});
    const record = await assertRefused(
      await request('tools/call', {
        name: 'pay',
        arguments: { vendor: '\uFF21\uFF23\uFF2D\uFF25 Supplies GmbH', amount: 900 },
      }),
      'WARDEN_POLICY_DENIED',
    );
    assert.ok(record.decision?.reasons.some((reason) => /at most 100 when vendor/.test(reason)));
    assert.deepEqual(upstream.callsTo('pay'), []);
  });

  test('900 EUR to another vendor is paid', async () => {
    const request = await connect('payer-bot');
    await request('tools/list', {});
    const { reply, id } = await request('tools/call', {
      name: 'pay',
      arguments: { vendor: 'Globex Cloud Services Inc.', amount: 900 },
    });
    assert.ok(answerIn(reply, id).result, reply.text);
    assert.equal(upstream.callsTo('pay').length, 1);
  });
});
