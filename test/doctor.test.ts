/**
 * `warden doctor` (issue 16, point 3): a fixture configuration per rollout stage and per common
 * mistake of the seed, each finding asserted present where the mistake is and absent where it is
 * not; the demo's configuration names its stage; store facts read from a real SQLite store; exit
 * codes 0, 1 and 2 and --json through the real command.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify as stringifyYaml } from 'yaml';
import { recordOnce } from '../src/audit/record-once.js';
import type { Config } from '../src/config/config.js';
import { parseConfig } from '../src/config/load.js';
import { DEMO_POLICY } from '../src/demo/demo-policy.js';
import type { DoctorInput, StoreFacts } from '../src/governance/doctor/finding.js';
import { runDoctor, doctorExitCode } from '../src/governance/doctor/run-doctor.js';
import { openStore } from '../src/store/open-store.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const DAY = 86_400_000;
/** Paths that are never temporary, wherever the checkout is (CI may clone under /tmp). */
const BASE_DIR = '/var/lib/warden';
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

type Raw = Record<string, unknown>;
/** A fixture being edited: YAML-shaped, reached into freely (the loader checks the result). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- fixture edits, validated by parseConfig
type Editable = any;

/** A production setup that meets governed scale: every later fixture breaks one thing. */
function governedRaw(): Raw {
  const grant = { expires: '2099-01-01', owner: 'cfo@example.com' };
  return {
    environment: 'production',
    listen: { host: '127.0.0.1', port: 8080 },
    store: `sqlite:${BASE_DIR}/warden.db`,
    auth: { resource: 'https://warden.example.com/mcp', issuers: [{ builtin: {} }] },
    agents: { 'finance-bot': { roles: ['finance_executor'], secret_hash: 'scrypt$prod-finance' } },
    roles: {
      finance_executor: {
        grants: [
          { tool: 'payments.list_invoices', ...grant },
          {
            tool: 'payments.issue_payment',
            requires_approval: true,
            approvers: ['finance_approver'],
            id: 'pay',
            ...grant,
          },
        ],
      },
    },
    approvals: {
      approvers: { 'controller@example.com': { roles: ['finance_approver'] } },
      webhooks: [{ url: 'https://hooks.example.com/warden' }],
    },
    audit: {
      hash_key_file: `${BASE_DIR}/audit-hash.key`,
      signing_key: { env: 'WARDEN_AUDIT_SIGNING_KEY' },
      witness: { file: '/mnt/witness/warden-audit.jsonl' },
      verify_every: '1h',
    },
    upstreams: { payments: { url: 'https://payments.internal.example.com/mcp' } },
  };
}

function healthyStore(): StoreFacts {
  return {
    signingKeys: [{ kid: 'k1', state: 'active', createdAt: NOW - 3 * DAY }],
    approvals: [{ tool: 'payments.issue_payment', grants: ['pay'], createdAt: NOW - DAY }],
    auditRecordsInWindow: true,
    denialsInWindow: true,
  };
}

function load(raw: Raw, source = 'fixture.yaml'): Config {
  return parseConfig(raw, source, BASE_DIR);
}

function doctor(raw: Raw, facts: Partial<DoctorInput> = {}) {
  return runDoctor({
    config: load(raw),
    now: NOW,
    windowDays: 30,
    host: { temporaryDirs: ['/tmp'], hashKeyFileExists: true },
    store: healthyStore(),
    gateway: undefined,
    other: undefined,
    ...facts,
  });
}

function ids(report: ReturnType<typeof doctor>): string[] {
  return report.findings.map((finding) => finding.id);
}

function edit(change: (raw: Editable) => void): Raw {
  const raw = governedRaw();
  change(raw);
  return raw;
}

describe('stages', () => {
  test('a governed setup has no finding above info and meets governed scale', () => {
    const report = doctor(governedRaw());
    assert.deepEqual(
      report.findings.filter((finding) => finding.severity !== 'info'),
      [],
    );
    assert.equal(report.stageMet, 'governed');
    assert.equal(doctorExitCode(report), 0);
  });

  test('a hardened setup whose grants never expire stops at operational hardening', () => {
    const report = doctor(
      edit((raw) => {
        for (const grant of raw.roles.finance_executor.grants) delete grant.expires;
      }),
    );
    assert.deepEqual(ids(report), ['permissions.grants-without-expiry']);
    assert.equal(report.stageMet, 'hardening');
    assert.equal(doctorExitCode(report), 1);
  });

  test('a pilot setup without approval gates stops at pilot control', () => {
    const report = doctor(
      edit((raw) => {
        raw.roles.finance_executor.grants = [{ tool: 'payments.list_invoices' }];
      }),
    );
    assert.ok(ids(report).includes('approvals.none-gated'));
    assert.equal(report.stageMet, 'pilot');
  });

  test('a setup with a pilot-stage mistake meets no stage', () => {
    const report = doctor(edit((raw) => (raw.listen = { host: '0.0.0.0', port: 8080 })));
    assert.ok(ids(report).includes('auth.tls-off'));
    assert.equal(report.stageMet, undefined);
  });
});

/** One mistake each: [name, the config change, facts, the finding, its severity]. */
const MISTAKES: [string, (raw: Editable) => void, Partial<DoctorInput>, string, string][] = [
  [
    'TLS off on a public listener',
    (raw) => (raw.listen = { host: '10.0.0.5', port: 8443 }),
    {},
    'auth.tls-off',
    'error',
  ],
  [
    'an environment left at its default on a public listener',
    (raw) => {
      delete raw.environment;
      raw.listen = {
        host: '0.0.0.0',
        tls: { cert: '/etc/warden/cert.pem', key: '/etc/warden/key.pem' },
      };
    },
    {},
    'auth.environment-unnamed',
    'warning',
  ],
  [
    'an external issuer with its environment claim disabled',
    (raw) => raw.auth.issuers.push({ issuer: 'https://idp.example.com', environment_claim: '' }),
    {},
    'auth.issuer-without-environment-claim',
    'error',
  ],
  [
    'tokens living a day',
    (raw) => (raw.auth.max_token_lifetime = '1d'),
    {},
    'auth.long-token-lifetime',
    'warning',
  ],
  [
    'login with registration on and no client metadata documents',
    (raw) => {
      raw.agents['desktop-apps'] = { roles: ['finance_executor'] };
      raw.auth.login = {
        agent: 'desktop-apps',
        users: { alice: { password_hash: 'scrypt$x' } },
        client_metadata_documents: { enabled: false },
      };
    },
    {},
    'auth.open-registration',
    'error',
  ],
  [
    'client metadata documents fetched from private addresses',
    (raw) => {
      raw.agents['desktop-apps'] = { roles: ['finance_executor'] };
      raw.auth.login = {
        agent: 'desktop-apps',
        users: { alice: { password_hash: 'scrypt$x' } },
        registration: false,
        client_metadata_documents: { allow_private_addresses: true },
      };
    },
    {},
    'auth.cimd-private-addresses',
    'error',
  ],
  [
    'metrics on the main listener',
    (raw) => (raw.metrics = { enabled: true, token_env: 'METRICS_TOKEN' }),
    {},
    'exposure.metrics-on-main-listener',
    'warning',
  ],
  [
    'browsers from any origin',
    (raw) => (raw.listen.allowed_origins = ['*']),
    {},
    'exposure.any-origin',
    'warning',
  ],
  [
    'a store in /tmp',
    (raw) => (raw.store = 'sqlite:/tmp/warden.db'),
    {},
    'storage.temporary',
    'error',
  ],
  ['a store in memory', (raw) => (raw.store = 'sqlite::memory:'), {}, 'storage.temporary', 'error'],
  [
    'a paying tool failing open',
    (raw) =>
      (raw.upstreams.payments.tools = { issue_payment: { sensitive: false, on_failure: 'open' } }),
    {},
    'logging.fail-open-acting-tool',
    'warning',
  ],
  [
    'many tools failing open',
    (raw) =>
      (raw.upstreams.payments.tools = Object.fromEntries(
        ['a', 'b', 'c', 'd'].map((name) => [
          `read_${name}`,
          { sensitive: false, on_failure: 'open' },
        ]),
      )),
    {},
    'logging.many-fail-open',
    'warning',
  ],
  [
    'the operational log off',
    (raw) => (raw.log = { level: 'silent' }),
    {},
    'logging.operational-log-off',
    'warning',
  ],
  [
    'an audit log with no record in the window',
    () => undefined,
    { store: { ...healthyStore(), auditRecordsInWindow: false, denialsInWindow: false } },
    'logging.no-audit-records',
    'warning',
  ],
  [
    'only successful calls in the log',
    () => undefined,
    { store: { ...healthyStore(), denialsInWindow: false } },
    'logging.no-denials',
    'info',
  ],
  [
    'a trusted role with a wildcard grant',
    (raw) => {
      raw.roles.admin = {
        trusted: true,
        grants: [{ tool: 'payments.*', expires: '2099-01-01', owner: 'ciso@example.com' }],
      };
      raw.agents['ops-bot'] = { roles: ['admin'] };
    },
    {},
    'permissions.trusted-wildcard',
    'warning',
  ],
  [
    'a monitor-mode role in production',
    (raw) => {
      raw.roles.research = {
        mode: 'monitor',
        grants: [
          { tool: 'payments.list_invoices', expires: '2099-01-01', owner: 'cfo@example.com' },
        ],
      };
      raw.agents['research-bot'] = { roles: ['research'] };
    },
    {},
    'permissions.monitor-role',
    'error',
  ],
  [
    'a break-glass cap of a week',
    (raw) => (raw.policy = { breakglass_max_ttl: '7d' }),
    {},
    'permissions.long-breakglass-cap',
    'warning',
  ],
  [
    'a grant without an owner',
    (raw) => delete raw.roles.finance_executor.grants[0].owner,
    {},
    'permissions.grants-without-owner',
    'info',
  ],
  [
    'approval requests announced nowhere',
    (raw) => (raw.approvals.webhooks = []),
    {},
    'approvals.not-announced',
    'warning',
  ],
  [
    'an approval-gated grant with no approval in 30 days',
    () => undefined,
    {
      store: {
        ...healthyStore(),
        approvals: [{ tool: 'payments.issue_payment', grants: ['pay'], createdAt: NOW - 31 * DAY }],
      },
    },
    'approvals.gated-without-records',
    'warning',
  ],
  [
    'a signing key older than rotate_every',
    () => undefined,
    {
      store: {
        ...healthyStore(),
        signingKeys: [{ kid: 'old', state: 'active', createdAt: NOW - 45 * DAY }],
      },
    },
    'keys.signing-key-not-rotated',
    'warning',
  ],
  [
    'a cluster whose argument-hash key is on a temporary path',
    (raw) => {
      raw.store = 'postgres://warden@db.internal/warden';
      raw.audit.hash_key_file = '/tmp/audit-hash.key';
    },
    {},
    'keys.hash-key-temporary',
    'error',
  ],
  [
    'a cluster whose argument-hash key is missing',
    (raw) => (raw.store = 'postgres://warden@db.internal/warden'),
    { host: { temporaryDirs: ['/tmp'], hashKeyFileExists: false } },
    'keys.hash-key-missing',
    'warning',
  ],
  [
    'an audit checkpoint key kept in the store',
    (raw) => delete raw.audit.signing_key,
    {},
    'audit.signing-key-in-store',
    'warning',
  ],
  [
    'no witness outside the store',
    (raw) => delete raw.audit.witness,
    {},
    'audit.no-witness',
    'warning',
  ],
  [
    'a witness the gateway never re-verifies against',
    (raw) => delete raw.audit.verify_every,
    {},
    'audit.not-reverified',
    'info',
  ],
  [
    'a gateway that is not ready',
    () => undefined,
    { gateway: { url: 'http://127.0.0.1:8080', readyStatus: 503 } },
    'gateway.not-ready',
    'error',
  ],
];

describe('common mistakes', () => {
  const clean = ids(doctor(governedRaw()));
  for (const [name, change, facts, id, severity] of MISTAKES) {
    test(`finds ${name} (${id})`, () => {
      assert.ok(!clean.includes(id), `${id} is absent from the governed setup`);
      const report = doctor(edit(change), facts);
      const found = report.findings.filter((finding) => finding.id === id);
      assert.equal(found.length, 1, `${id} in ${JSON.stringify(ids(report))}`);
      assert.equal(found[0]?.severity, severity);
      assert.ok(found[0]?.where.length, 'names where');
      assert.ok(found[0]?.fix.length, 'says the fix');
    });
  }

  test('a store in /tmp outside production is a warning', () => {
    const report = doctor(
      edit((raw) => {
        raw.environment = 'staging';
        raw.store = 'sqlite:/tmp/warden.db';
      }),
    );
    assert.equal(
      report.findings.find((finding) => finding.id === 'storage.temporary')?.severity,
      'warning',
    );
  });

  test('an unused tool name that only reads may fail open without a finding', () => {
    const report = doctor(
      edit(
        (raw) =>
          (raw.upstreams.payments.tools = {
            list_invoices: { sensitive: false, on_failure: 'open' },
          }),
      ),
    );
    assert.ok(!ids(report).some((id) => id.startsWith('logging.')));
  });

  test('without store facts the store checks are skipped and said so', () => {
    const report = doctor(governedRaw(), { store: undefined });
    assert.deepEqual(report.notChecked, ['store', 'gateway']);
    assert.ok(!ids(report).includes('approvals.gated-without-records'));
  });
});

describe('--compare: credentials shared across environments', () => {
  const staging = () =>
    edit((raw) => {
      raw.environment = 'staging';
      raw.store = `sqlite:${BASE_DIR}/staging.db`;
      raw.audit.hash_key_file = `${BASE_DIR}/staging-hash.key`;
      raw.agents['finance-bot'].secret_hash = 'scrypt$staging-finance';
    });

  test('two well-separated environments share nothing', () => {
    const report = doctor(governedRaw(), { other: load(staging(), 'staging.yaml') });
    assert.ok(!ids(report).some((id) => id.startsWith('environments.')));
  });

  test('finds the same agent secret, hash key, store and environment name in both', () => {
    const other = load(
      edit(
        (raw) =>
          (raw.agents['other-bot'] = {
            roles: ['finance_executor'],
            secret_hash: 'scrypt$prod-finance',
          }),
      ),
      'staging.yaml',
    );
    const report = doctor(governedRaw(), { other });
    const found = ids(report).filter((id) => id.startsWith('environments.'));
    assert.deepEqual(found.sort(), [
      'environments.same-name',
      'environments.shared-agent-secret',
      'environments.shared-hash-key',
      'environments.shared-store',
    ]);
    assert.match(
      report.findings.find((finding) => finding.id === 'environments.shared-agent-secret')
        ?.problem ?? '',
      /other-bot in staging\.yaml/,
    );
    assert.equal(report.stageMet, undefined);
  });
});

test("the demo's configuration meets pilot control and names what stops operational hardening", () => {
  // Built as src/cli/demo.ts builds it, in a folder that is not temporary.
  const raw: Raw = {
    environment: 'demo',
    listen: { host: '127.0.0.1', port: 8080 },
    store: '/srv/demo/.warden/warden.db'.replace(/^/, 'sqlite:'),
    log: { level: 'warn' },
    auth: {
      resource: 'http://127.0.0.1:8080/mcp',
      issuers: [{ builtin: { token_ttl: '1h', max_ttl: '1h' } }],
      login: {
        agent: 'desktop-apps',
        users: { alice: { password_hash: 'scrypt$demo', roles: ['research', 'operations'] } },
      },
    },
    agents: {
      'research-bot': { roles: ['research'], secret_hash: 'scrypt$r' },
      'ops-bot': { roles: ['operations'], secret_hash: 'scrypt$o' },
      'finance-bot': { roles: ['finance_executor'], secret_hash: 'scrypt$f' },
      'desktop-apps': { roles: ['research'] },
    },
    ...structuredClone(DEMO_POLICY),
    approvals: { approvers: { 'controller@example.com': { roles: ['finance_approver'] } } },
    audit: { hash_key_file: '/srv/demo/.warden/audit-hash.key' },
    upstreams: {
      payments: { command: ['node', 'server.js'] },
      crm: { command: ['node', 'server.js'] },
      research: { command: ['node', 'server.js'] },
    },
  };
  const report = doctor(raw, { store: undefined });
  assert.equal(report.stageMet, 'pilot');
  const found = ids(report);
  assert.ok(found.includes('approvals.not-announced'));
  assert.ok(found.includes('permissions.grants-without-expiry'));
  assert.ok(!found.some((id) => id.startsWith('auth.')), 'the demo listens on loopback');
});

describe('the warden doctor command', () => {
  let dir: string;
  let ready: Server;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-doctor-'));
    ready = createServer((request, response) => {
      response.statusCode = request.url === '/readyz' ? 200 : 404;
      response.end('{"status":"ready"}');
    });
    ready.listen(0, '127.0.0.1');
    await once(ready, 'listening');
  });
  after(async () => {
    ready.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(name: string, raw: Raw): string {
    const file = join(dir, name);
    writeFileSync(file, stringifyYaml(raw));
    return file;
  }

  test('a clean setup exits 0, names governed scale, and asks the gateway', async () => {
    const file = writeConfig('clean.yaml', governedRaw());
    const url = `http://127.0.0.1:${(ready.address() as AddressInfo).port}`;
    const run = await warden(['doctor', '--config', file, '--no-store', '--url', url]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /This setup meets: governed scale/);
    assert.match(run.stdout, /not checked: store\n/);
  });

  test('a mistake exits 1 and --json parses with the finding', async () => {
    const file = writeConfig(
      'tls-off.yaml',
      edit((raw) => (raw.listen = { host: '0.0.0.0', port: 8080 })),
    );
    const run = await warden(['doctor', '--config', file, '--no-store', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout) as {
      findings: { id: string }[];
      stageMet?: string;
      exitCode: number;
    };
    assert.ok(report.findings.some((finding) => finding.id === 'auth.tls-off'));
    assert.equal(report.stageMet, undefined);
    assert.equal(report.exitCode, 1);
  });

  test('reads key ages, approvals and audit records from a real store, writing no audit record', async () => {
    const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
    const store = await openStore(storeUrl);
    try {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      await store.signingKeys.insert({
        kid: 'old-key',
        algorithm: 'ES256',
        privateJwk: JSON.stringify(privateKey.export({ format: 'jwk' })),
        publicJwk: JSON.stringify(publicKey.export({ format: 'jwk' })),
        createdAt: Date.now() - 90 * DAY,
        rotatedAt: undefined,
        retireAt: undefined,
      });
      await recordOnce(store.audit, {
        event: 'call.allowed',
        time: new Date().toISOString(),
        requestId: '3f2a9c1e-1111-4000-8000-000000000001',
        agent: 'finance-bot',
        roles: ['finance_executor'],
        upstream: 'payments',
        method: 'tools/call',
        tool: 'list_invoices',
        decision: { effect: 'allow', reasons: ['granted'], policies: ['p'] },
      });
    } finally {
      await store.close();
    }
    const file = writeConfig(
      'stored.yaml',
      edit((raw) => (raw.store = storeUrl)),
    );
    const run = await warden(['doctor', '--config', file, '--json']);
    assert.equal(run.code, 1, run.stderr);
    const found = (JSON.parse(run.stdout) as { findings: { id: string }[] }).findings.map(
      (f) => f.id,
    );
    assert.ok(found.includes('keys.signing-key-not-rotated'), found.join());
    assert.ok(found.includes('approvals.gated-without-records'), found.join());
    assert.ok(found.includes('logging.no-denials'), found.join());
    assert.ok(!found.includes('logging.no-audit-records'), found.join());
    const reopened = await openStore(storeUrl);
    try {
      assert.equal(
        (await reopened.audit.query({ limit: 10 })).length,
        1,
        'doctor recorded nothing',
      );
    } finally {
      await reopened.close();
    }
  });

  test('exits 2 when the config does not load', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'upstreams: {}\n');
    const run = await warden(['doctor', '--config', file]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /could not check/);
  });

  test('exits 2 when the store is not there, and --json still parses', async () => {
    const file = writeConfig(
      'no-store.yaml',
      edit((raw) => (raw.store = `sqlite:${join(dir, 'none', 'warden.db')}`)),
    );
    const run = await warden(['doctor', '--config', file, '--json']);
    assert.equal(run.code, 2);
    assert.match((JSON.parse(run.stdout) as { error: string }).error, /does not exist/);
  });

  test('exits 2 when the gateway cannot be reached', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const file = writeConfig('clean-again.yaml', governedRaw());
    const run = await warden([
      'doctor',
      '--config',
      file,
      '--no-store',
      '--url',
      `http://127.0.0.1:${port}`,
    ]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /cannot be reached/);
  });
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real command, through tsx: no build needed. */
async function warden(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}
