// warden.yaml is a security control: a typo must never silently disable one. Every mistake stops
// the load with the file, the key path and what is wrong; what loads is frozen.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { HttpUpstreamConfig, StdioUpstreamConfig } from '../src/config/config.js';
import { loadConfigFile, parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/domain/errors.js';

const MINIMAL_YAML = `listen: { host: 127.0.0.1, port: 8080 }
store: sqlite:./.warden/warden.db
auth:
  resource: https://warden.example.com/mcp
  issuers: [{ builtin: {} }]
agents:
  research-bot: { roles: [research] }
roles:
  research: {}
upstreams:
  everything: { url: http://127.0.0.1:3001/mcp }
  files: { command: [npx, -y, "@modelcontextprotocol/server-filesystem", ./data] }
`;

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Every config must authenticate; tests about other sections get a valid auth part. */
const AUTH = {
  auth: { resource: 'https://warden.example.com/mcp', issuers: [{ builtin: {} }] },
  agents: { 'research-bot': { roles: ['research'] } },
  roles: { research: {} },
};

function withAuth(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  return { ...AUTH, ...raw };
}

/** Parses a config that must be refused; returns the ConfigError for inspection. */
function refuse(raw: unknown): ConfigError {
  try {
    parseConfig(withAuth(raw), 'warden.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.file, 'warden.yaml');
    assert.match(error.message, /^invalid configuration in warden\.yaml:/);
    return error;
  }
  assert.fail('the configuration was accepted');
}

/** Asserts that a config is refused with an issue starting with `expected` (its path first). */
function assertRefusedWith(raw: unknown, expected: string): void {
  const { issues } = refuse(raw);
  assert.ok(
    issues.some((issue) => issue.startsWith(expected)),
    `${JSON.stringify(issues)} should say ${expected}`,
  );
}

const HTTP_UPSTREAM = { url: 'http://127.0.0.1:3001/mcp' };

test('loads the minimal form: listen, an sqlite store, auth, an HTTP and a stdio upstream', () => {
  const config = loadConfigFile(writeConfig('minimal.yaml', MINIMAL_YAML));
  assert.equal(config.auth.resource, 'https://warden.example.com/mcp');
  assert.equal(config.auth.issuers[0]?.kind, 'builtin');
  assert.deepEqual(config.agents.get('research-bot')?.roles, ['research']);
  assert.deepEqual(config.listen, {
    host: '127.0.0.1',
    port: 8080,
    tls: undefined,
    allowedHosts: [],
    allowedOrigins: [],
  });
  assert.equal(config.store, `sqlite:${join(dir, '.warden', 'warden.db')}`, 'relative to the file');
  assert.deepEqual([...config.upstreams.keys()], ['everything', 'files']);
  const everything = config.upstreams.get('everything') as HttpUpstreamConfig;
  assert.equal(everything.kind, 'http');
  assert.equal(everything.url, 'http://127.0.0.1:3001/mcp');
  assert.equal(everything.credential, undefined);
  assert.equal(everything.timeoutMs, 60_000);
  const files = config.upstreams.get('files') as StdioUpstreamConfig;
  assert.equal(files.kind, 'stdio');
  assert.equal(files.command, 'npx');
  assert.deepEqual(files.args, ['-y', '@modelcontextprotocol/server-filesystem', './data']);
  assert.equal(config.limits.maxBodyBytes, 4 * 1024 * 1024);
  assert.equal(config.environment, 'development');
});

test('reads durations in several units, and credentials from env or file', () => {
  const config = parseConfig(
    {
      ...AUTH,
      limits: { session_idle_timeout: '15m', shutdown_grace: '2s' },
      upstreams: {
        api: { ...HTTP_UPSTREAM, timeout: '250ms', credential: { env: 'API_TOKEN' } },
        vault: { ...HTTP_UPSTREAM, timeout: 1500, credential: { file: 'secrets/token' } },
        tool: { command: ['tool'], timeout: '1h', restart_backoff: '0.5s' },
      },
    },
    'warden.yaml',
    dir,
  );
  assert.equal(config.limits.sessionIdleTimeoutMs, 15 * 60_000);
  assert.equal(config.limits.shutdownGraceMs, 2000);
  const api = config.upstreams.get('api') as HttpUpstreamConfig;
  assert.equal(api.timeoutMs, 250);
  assert.deepEqual(api.credential, {
    source: { kind: 'env', name: 'API_TOKEN' },
    header: 'authorization',
    scheme: 'Bearer',
  });
  const vault = config.upstreams.get('vault') as HttpUpstreamConfig;
  assert.equal(vault.timeoutMs, 1500);
  assert.deepEqual(vault.credential?.source, { kind: 'file', path: join(dir, 'secrets/token') });
  const tool = config.upstreams.get('tool') as StdioUpstreamConfig;
  assert.equal(tool.timeoutMs, 3_600_000);
  assert.equal(tool.restartBackoffMs, 500);
});

test('refuses a misspelt key and names its path, at every level', () => {
  const cases: [unknown, string][] = [
    [{ upstream: {}, upstreams: { a: HTTP_UPSTREAM } }, '(top level): unknown key "upstream"'],
    [{ listen: { allowed_origin: [] }, upstreams: { a: HTTP_UPSTREAM } }, 'listen: unknown key'],
    [
      { limits: { max_body: 1 }, upstreams: { a: HTTP_UPSTREAM } },
      'limits: unknown key "max_body"',
    ],
    [
      { upstreams: { a: { ...HTTP_UPSTREAM, tiemout: '5s' } } },
      'upstreams.a: unknown key "tiemout"',
    ],
    [{ upstreams: { a: { command: ['x'], restart: 1 } } }, 'upstreams.a: unknown key "restart"'],
    [
      { upstreams: { a: { ...HTTP_UPSTREAM, credential: { env: 'X', schema: 'Basic' } } } },
      'upstreams.a.credential: unknown key "schema"',
    ],
  ];
  for (const [raw, expected] of cases) assertRefusedWith(raw, expected);
});

test('refuses a duration it cannot read, or one of zero that would disable a timeout', () => {
  const cases: [unknown, string][] = [
    [
      { upstreams: { a: { ...HTTP_UPSTREAM, timeout: '5 minutes' } } },
      'upstreams.a.timeout: "5 minutes" is not a duration',
    ],
    [
      { upstreams: { a: { command: ['x'], restart_backoff: '-1s' } } },
      'upstreams.a.restart_backoff: "-1s" is not a duration',
    ],
    [
      { limits: { shutdown_grace: 'soon' }, upstreams: { a: HTTP_UPSTREAM } },
      'limits.shutdown_grace: "soon" is not a duration',
    ],
    [
      { upstreams: { a: { ...HTTP_UPSTREAM, timeout: 0 } } },
      'upstreams.a.timeout: must be longer than 0',
    ],
    [
      { upstreams: { a: { command: ['x'], restart_backoff: '0ms' } } },
      'upstreams.a.restart_backoff: must be longer than 0',
    ],
  ];
  for (const [raw, expected] of cases) assertRefusedWith(raw, expected);
});

test('refuses an upstream name that could not be a path segment', () => {
  for (const name of ['Bad Name', '../admin', 'a/b', '1st', '']) {
    const error = refuse({ upstreams: { [name]: HTTP_UPSTREAM } });
    assert.deepEqual(error.issues, [
      `upstreams.${name}: invalid name: upstream names are lowercase letters, digits, - and _`,
    ]);
  }
});

test('refuses an upstream credential that names both an env var and a file, or neither', () => {
  for (const credential of [{ env: 'TOKEN', file: './token' }, {}]) {
    const error = refuse({ upstreams: { a: { ...HTTP_UPSTREAM, credential } } });
    assert.deepEqual(error.issues, ['upstreams.a.credential: set exactly one of env or file']);
  }
});

test('refuses an upstream that is neither HTTP nor stdio, and a config with none', () => {
  assert.deepEqual(refuse({ upstreams: { a: { cmd: 'x' } } }).issues, [
    'upstreams.a: expected an HTTP upstream ({ url }) or a stdio upstream ({ command: [...] })',
  ]);
  assert.match(
    refuse({ upstreams: { a: { url: 'file:///etc/passwd' } } }).issues[0] ?? '',
    /^upstreams\.a\.url: /,
  );
  assert.deepEqual(refuse({ upstreams: {} }).issues, [
    'upstreams: configure at least one upstream',
  ]);
  assert.match(refuse({}).issues[0] ?? '', /^upstreams: /);
});

test('refuses invalid YAML and names the file and the line', () => {
  const path = writeConfig(
    'broken.yaml',
    'listen:\n  host: 127.0.0.1\n\tport: 8080\nupstreams: {}\n',
  );
  assert.throws(
    () => loadConfigFile(path),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.file === path &&
      error.message.includes(path) &&
      /not valid YAML at line 3\b/.test(error.issues[0] ?? ''),
  );
});

test('refuses a key given twice rather than silently keeping one', () => {
  const path = writeConfig(
    'twice.yaml',
    'upstreams:\n  a: { url: http://127.0.0.1:1/mcp }\n  a: { url: http://127.0.0.1:2/mcp }\n',
  );
  assert.throws(() => loadConfigFile(path), /twice\.yaml:\n {2}- not valid YAML at line 3/);
});

test('names the file in every error, including one it cannot read', () => {
  const missing = join(dir, 'missing.yaml');
  assert.throws(
    () => loadConfigFile(missing),
    (error: unknown) =>
      error instanceof ConfigError && error.file === missing && /ENOENT/.test(error.message),
  );
  const path = writeConfig('typo.yaml', MINIMAL_YAML.replace('store:', 'stor:'));
  assert.throws(
    () => loadConfigFile(path),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.message.startsWith(`invalid configuration in ${path}:`) &&
      error.issues.includes('(top level): unknown key "stor"; did you mean "store"?'),
  );
});

test('the loaded config is frozen all the way down, maps included', () => {
  const config = loadConfigFile(writeConfig('frozen.yaml', MINIMAL_YAML));
  const mutable = config as unknown as Record<string, Record<string, unknown>>;
  assert.throws(() => {
    mutable['listen']!['host'] = '0.0.0.0';
  }, TypeError);
  assert.throws(() => {
    mutable['limits']!['maxBodyBytes'] = Infinity;
  }, TypeError);
  const files = config.upstreams.get('files') as unknown as { args: string[]; command: string };
  assert.throws(() => files.args.push('--allow-everything'), TypeError);
  assert.throws(() => {
    files.command = 'sh';
  }, TypeError);
  const upstreams = config.upstreams as Map<string, unknown>;
  assert.throws(
    () => upstreams.set('evil', { kind: 'http', url: 'http://evil.example' }),
    TypeError,
  );
  assert.throws(() => upstreams.delete('files'), TypeError);
  assert.throws(() => upstreams.clear(), TypeError);
  assert.equal(config.upstreams.size, 2);
  assert.equal(config.listen.host, '127.0.0.1');
});

test('refuses a config that would leave the endpoints unauthenticated', () => {
  assertRefusedWith({ upstreams: { a: HTTP_UPSTREAM }, auth: undefined }, 'auth:');
  assertRefusedWith(
    {
      upstreams: { a: HTTP_UPSTREAM },
      auth: { resource: 'https://warden.example.com/mcp', issuers: [] },
    },
    'auth: no way to authenticate',
  );
  assertRefusedWith(
    {
      upstreams: { a: HTTP_UPSTREAM },
      auth: { resource: 'https://warden.example.com/mcp', issuers: [], mtls: true },
    },
    'auth.mtls: needs listen.tls.client_ca',
  );
});

test('refuses two agents claiming one certificate identity, and two builtin issuers', () => {
  assertRefusedWith(
    {
      upstreams: { a: HTTP_UPSTREAM },
      agents: {
        one: { mtls_identity: 'spiffe://x/agent' },
        two: { mtls_identity: 'spiffe://x/agent' },
      },
    },
    'agents.two.mtls_identity: is also the identity of agent "one"',
  );
  assertRefusedWith(
    {
      upstreams: { a: HTTP_UPSTREAM },
      auth: {
        resource: 'https://warden.example.com/mcp',
        issuers: [{ builtin: {} }, { builtin: {} }],
      },
    },
    'auth.issuers: at most one builtin issuer',
  );
});
