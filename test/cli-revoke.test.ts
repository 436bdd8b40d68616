/**
 * `warden token revoke` beside a deployment: the revocation lands in the store and is itself
 * recorded in the audit log (on the CLI's own stream), and the log still verifies.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { openStore } from '../src/store/open-store.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

function warden(
  args: string[],
  cwd: string,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A one-upstream deployment on a SQLite file with the built-in issuer, in a temp folder. */
function writeDeployment(prefix: string): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const config = join(dir, 'warden.yaml');
  writeFileSync(
    config,
    [
      'environment: production',
      `store: sqlite:${join(dir, 'warden.db')}`,
      `audit: { hash_key_file: ${join(dir, 'hash.key')} }`,
      'auth: { resource: "https://warden.example.com/mcp", issuers: [{ builtin: {} }] }',
      'agents: { invoice-bot: { roles: [finance_executor] } }',
      'roles: { finance_executor: {} }',
      'upstreams: { payments: { url: "http://127.0.0.1:9/mcp" } }',
      '',
    ].join('\n'),
  );
  return { dir, config };
}

test(
  'a token revoked from the CLI is in force and on the audit record',
  { timeout: 60_000 },
  async () => {
    const { dir, config } = writeDeployment('warden-revoke-');
    const issued = warden(['token', 'issue', '--config', config, '--agent', 'invoice-bot'], dir);
    assert.equal(issued.status, 0, issued.stderr);
    const token = issued.stdout.trim().split('\n')[0] ?? '';
    const jti = String(decodeJwt(token).jti);

    const revoked = warden(
      ['token', 'revoke', '--config', config, '--jti', jti, '--reason', 'leaked'],
      dir,
    );
    assert.equal(revoked.status, 0, revoked.stderr);

    const store = await openStore(`sqlite:${join(dir, 'warden.db')}`);
    try {
      const active = await store.revocations.listActive(Date.now());
      assert.ok(
        active.some((revocation) => revocation.kind === 'token' && revocation.subject === jti),
      );
      const records = await store.audit.query({ event: 'token.revoked' });
      assert.equal(records.length, 1);
      assert.equal(records[0]?.details?.['subject'], jti);
      assert.match(records[0]?.stream ?? '', /^cli-/);
    } finally {
      await store.close();
    }
    const verified = warden(['audit', 'verify', '--config', config], dir);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  },
);

test(
  'warden keys rotate puts a new key in force and records key.rotated',
  { timeout: 60_000 },
  async () => {
    const { dir, config } = writeDeployment('warden-rotate-');
    const before = warden(['token', 'issue', '--config', config, '--agent', 'invoice-bot'], dir);
    assert.equal(before.status, 0, before.stderr);
    const rotated = warden(['keys', 'rotate', '--config', config], dir);
    assert.equal(rotated.status, 0, rotated.stderr);
    const kid = /new signing key (\S+) is active/.exec(rotated.stdout)?.[1];
    assert.ok(kid);
    const after = warden(['token', 'issue', '--config', config, '--agent', 'invoice-bot'], dir);
    const header = JSON.parse(
      Buffer.from((after.stdout.split('.')[0] ?? '').trim(), 'base64url').toString('utf8'),
    ) as { kid: string };
    assert.equal(header.kid, kid, 'new tokens are signed with the new key');

    const store = await openStore(`sqlite:${join(dir, 'warden.db')}`);
    try {
      const records = await store.audit.query({ event: 'key.rotated' });
      assert.equal(records.length, 1);
      assert.equal(records[0]?.details?.['kid'], kid);
    } finally {
      await store.close();
    }
  },
);
