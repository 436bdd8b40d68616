/**
 * The built-in issuer grants only the scopes the config gives an agent (`agents.<id>.scopes`,
 * besides `auth.required_scopes`), whoever asks: the token endpoint or the operator's CLI. And a
 * scope is never a role: a token carrying `warden_admin` as a scope opens no admin API.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import type { AgentConfig, AuthConfig, BuiltinIssuerConfig } from '../src/config/config.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/domain/errors.js';
import {
  createBuiltinIssuer,
  createBuiltinKeyring,
  IssuerError,
} from '../src/identity/builtin-issuer.js';
import { hashClientSecret } from '../src/identity/client-authentication.js';
import { openStore } from '../src/store/open-store.js';
import { startTestGateway } from './support/gateway.js';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
// The CLI runs in a folder outside the repository, so tsx is imported by its resolved location.
const TSX = import.meta.resolve('tsx');

const AUTH: AuthConfig = {
  resource: 'https://warden.example.com/mcp',
  issuers: [],
  requiredScopes: ['mcp:tools'],
  maxTokenLifetimeMs: 3_600_000,
  clockSkewMs: 30_000,
  mtls: false,
};
const ISSUER: BuiltinIssuerConfig = {
  kind: 'builtin',
  issuer: 'https://warden.example.com',
  tokenTtlMs: 900_000,
  maxTtlMs: 3_600_000,
  rotateEveryMs: 30 * 86_400_000,
  algorithm: 'ES256',
};

function agent(id: string, scopes?: readonly string[]): AgentConfig {
  return {
    id,
    roles: ['research'],
    ...(scopes !== undefined && { scopes }),
    tenant: undefined,
    clientIds: [],
    secretHash: undefined,
    jwks: undefined,
    mtlsIdentity: undefined,
  };
}

const RESEARCH = agent('research-bot', ['research:read']);
const PLAIN = agent('plain-bot');

async function setUp(t: { after: (fn: () => Promise<void>) => void }) {
  const store = await openStore('sqlite::memory:');
  t.after(() => store.close());
  const keyring = createBuiltinKeyring({
    repository: store.signingKeys,
    config: ISSUER,
    auth: AUTH,
  });
  return createBuiltinIssuer({
    config: ISSUER,
    auth: AUTH,
    environment: 'production',
    agents: new Map([RESEARCH, PLAIN].map((entry) => [entry.id, entry])),
    keyring,
  });
}

function isScopeNotAllowed(error: unknown): boolean {
  return error instanceof IssuerError && error.code === 'WARDEN_SCOPE_NOT_ALLOWED';
}

test('refuses any scope not configured for the agent', async (t) => {
  const issuer = await setUp(t);
  for (const scopes of [
    ['admin', 'warden_admin'],
    ['warden_admin'],
    ['research:read', 'warden_admin'],
    ['Research:Read'],
    ['research:read:all'],
  ])
    await assert.rejects(issuer.issueToken({ agent: RESEARCH, scopes }), isScopeNotAllowed);
});

test('a caller cannot widen the scopes by handing the issuer a doctored agent', async (t) => {
  const issuer = await setUp(t);
  const doctored: AgentConfig = { ...RESEARCH, scopes: ['research:read', 'warden_admin'] };
  await assert.rejects(
    issuer.issueToken({ agent: doctored, scopes: ['warden_admin'] }),
    isScopeNotAllowed,
  );
});

test('issues configured and required scopes; asked for nothing, only the required ones', async (t) => {
  const issuer = await setUp(t);
  const asked = await issuer.issueToken({
    agent: RESEARCH,
    scopes: ['research:read', 'mcp:tools'],
  });
  assert.deepEqual(asked.scopes, ['research:read', 'mcp:tools']);
  const unasked = await issuer.issueToken({ agent: RESEARCH });
  assert.deepEqual(unasked.scopes, ['mcp:tools']);
  assert.equal(decodeJwt(unasked.token)['scope'], 'mcp:tools');
});

test('an agent with no configured scopes may have the required ones only', async (t) => {
  const issuer = await setUp(t);
  assert.deepEqual((await issuer.issueToken({ agent: PLAIN, scopes: ['mcp:tools'] })).scopes, [
    'mcp:tools',
  ]);
  await assert.rejects(
    issuer.issueToken({ agent: PLAIN, scopes: ['research:read'] }),
    isScopeNotAllowed,
  );
});

test('agents.<id>.scopes is read from the config, and a malformed scope does not load', () => {
  const base = {
    auth: { resource: 'https://warden.example.com/mcp', issuers: [{ builtin: {} }] },
    upstreams: { docs: { url: 'http://127.0.0.1:9/mcp' } },
  };
  const config = parseConfig(
    {
      ...base,
      agents: { 'research-bot': { roles: ['research'], scopes: ['research:read'] }, plain: {} },
      roles: { research: {} },
    },
    'warden.yaml',
  );
  assert.deepEqual(config.agents.get('research-bot')?.scopes, ['research:read']);
  assert.deepEqual(config.agents.get('plain')?.scopes, []);
  for (const scope of ['a b', 'tab\there', '"quoted"', '', 'caf\u00e9'])
    assert.throws(
      () =>
        parseConfig({ ...base, agents: { 'research-bot': { scopes: [scope] } } }, 'warden.yaml'),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.issues.some((issue) => issue.startsWith('agents.research-bot.scopes')),
      JSON.stringify(scope),
    );
});

// ---------------------------------------------------------------------------------------------
// The operator's CLI is held to the same rule

function warden(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test(
  'warden token issue --scope refuses a scope not configured for the agent',
  { timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-scopes-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'warden.yaml');
    writeFileSync(
      config,
      [
        `store: sqlite:${join(dir, 'warden.db')}`,
        `audit: { hash_key_file: ${join(dir, 'hash.key')} }`,
        'auth: { resource: "https://warden.example.com/mcp", issuers: [{ builtin: {} }] }',
        'agents: { research-bot: { roles: [research], scopes: [research:read] } }',
        'roles: { research: {} }',
        'upstreams: { docs: { url: "http://127.0.0.1:9/mcp" } }',
        '',
      ].join('\n'),
    );
    const issue = (scope: string) =>
      warden(
        ['token', 'issue', '--config', config, '--agent', 'research-bot', '--scope', scope],
        dir,
      );
    const refused = await issue('research:read warden_admin');
    const granted = await issue('research:read');
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(refused.stdout, '', 'no token is printed');
    assert.match(refused.stderr, /warden_admin.*agents\.research-bot\.scopes/);
    assert.equal(granted.code, 0, granted.stderr);
    assert.equal(decodeJwt(granted.stdout.trim())['scope'], 'research:read');
  },
);

// ---------------------------------------------------------------------------------------------
// A scope is not a role

test(
  'a token whose scope names warden_admin opens no admin API: roles come from the registry only',
  { timeout: 60_000 },
  async (t) => {
    const secret = 'research-bot-secret-0123456789';
    const gateway = await startTestGateway({
      log: { level: 'silent' },
      agents: {
        'research-bot': {
          roles: ['research'],
          // An operator's slip: an admin-sounding scope, but not the role.
          scopes: ['warden_admin', 'warden_approver'],
          secret_hash: await hashClientSecret(secret),
        },
      },
      roles: { research: { grants: [] } },
      upstreams: { docs: { url: 'http://127.0.0.1:9/mcp' } },
    });
    t.after(() => gateway.close());
    const reply = await fetch(`${gateway.url}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`research-bot:${secret}`).toString('base64')}`,
      },
      // A roles parameter is no OAuth parameter: it is ignored, never minted into a claim.
      body: 'grant_type=client_credentials&scope=warden_admin+warden_approver&roles=warden_admin',
    });
    assert.equal(reply.status, 200, await reply.clone().text());
    const { access_token: token } = (await reply.json()) as { access_token: string };
    const claims = decodeJwt(token);
    assert.equal(claims['scope'], 'warden_admin warden_approver');
    assert.equal(claims['roles'], undefined);

    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const revoke = await fetch(`${gateway.url}/admin/revocations`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ kind: 'agent', subject: 'research-bot', reason: 'escalation' }),
    });
    assert.equal(revoke.status, 403, await revoke.text());
    const approvals = await fetch(`${gateway.url}/admin/approvals`, { headers });
    assert.equal(approvals.status, 403, await approvals.text());
  },
);
