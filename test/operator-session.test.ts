/**
 * The operator session the CLI works through: it opens the configured store, and every
 * operation it hands out writes its change and exactly one audit record on the process's own
 * `cli-` stream, sealed, so the log verifies after each; the audit operations export, verify and
 * archive without the shell ever holding the store.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { verifyAuditExport } from '../src/audit/verify-audit-export.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError, OperationError } from '../src/domain/errors.js';
import { openOperatorSession, withOperatorSession } from '../src/gateway/operator-session.js';

function deployment(extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'warden-operator-session-'));
  const config = parseConfig(
    {
      environment: 'production',
      store: `sqlite:${join(dir, 'warden.db')}`,
      auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }] },
      agents: { 'invoice-bot': { roles: ['finance_executor'] } },
      roles: { finance_executor: {} },
      upstreams: { payments: { url: 'http://127.0.0.1:9/mcp' } },
      policy_states: { payments_freeze: { default: 'off' } },
      ...extra,
    },
    join(dir, 'warden.yaml'),
  );
  return { dir, config };
}

test('each operation of a session writes exactly one record on the cli stream', async () => {
  const { config } = deployment();
  await withOperatorSession(config, async (session) => {
    const agent = config.agents.get('invoice-bot');
    assert.ok(agent);
    const issued = await session.identity.issueToken({ agent });
    await session.identity.revokeCredential({
      kind: 'token',
      subject: issued.tokenId,
      reason: 'leaked',
      by: 'cli:alice',
    });
    const rotation = await session.identity.rotateSigningKeys({ by: 'cli:alice' });
    const grant = await session.policy.grantBreakGlass({
      agent: 'invoice-bot',
      tool: 'payments.issue_payment',
      ttlMs: 60_000,
      reason: 'outage',
      by: 'alice',
    });
    await session.policy.revokeBreakGlass({ id: grant.id, by: 'alice' });
    await session.policy.setPolicyState({
      name: 'payments_freeze',
      on: true,
      reason: 'INC-1',
      by: 'alice',
    });

    const records = await session.audit.query({ limit: 100 });
    assert.deepEqual(
      records.map((record) => record.event),
      ['token.revoked', 'key.rotated', 'grant.changed', 'grant.changed', 'grant.changed'],
    );
    assert.ok(records.every((record) => /^cli-/.test(record.stream)));
    assert.equal(records[1]?.details?.['kid'], rotation.kid);
    assert.deepEqual(
      (await session.policy.listBreakGlassGrants()).map((entry) => entry.id),
      [],
      'the grant was revoked',
    );
    assert.equal((await session.policy.readPolicyStates()).get('payments_freeze')?.on, true);

    const report = await session.audit.verify();
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.equal(report.recordsChecked, 5);
  });
});

test('a session refuses the issuer operations when no built-in issuer is configured', async () => {
  const { config } = deployment({
    auth: {
      resource: 'https://warden.test/mcp',
      issuers: [{ issuer: 'https://idp.test', jwks_uri: 'https://idp.test/jwks' }],
    },
  });
  const session = await openOperatorSession(config);
  try {
    await assert.rejects(session.identity.rotateSigningKeys({ by: 'cli:alice' }), ConfigError);
    await assert.rejects(session.identity.listSigningKeys(), ConfigError);
    const agent = config.agents.get('invoice-bot');
    assert.ok(agent);
    await assert.rejects(session.identity.issueToken({ agent }), ConfigError);
    assert.deepEqual(await session.audit.query({ limit: 10 }), [], 'nothing recorded');
  } finally {
    await session.close();
  }
});

test('the audit operations export, verify offline, and refuse to overwrite an archive', async () => {
  const { dir, config } = deployment();
  await withOperatorSession(config, async (session) => {
    await session.policy.setPolicyState({
      name: 'payments_freeze',
      on: true,
      reason: 'INC-2',
      by: 'alice',
    });
    const key = await session.audit.publicKey();
    const path = join(dir, 'export.jsonl');
    const summary = await session.audit.export({ format: 'jsonl', to: { path } });
    assert.equal(summary.records, 1);
    const verified = await verifyAuditExport(path, { trustedPublicKeyPem: key.publicKeyPem });
    assert.equal(verified.report.ok, true);
    assert.equal(verified.report.keyId, key.keyId);
    assert.equal(verified.otherKeyId, undefined);

    assert.equal(
      await session.audit.archive({ before: Date.parse('2000-01-01'), path: join(dir, 'a') }),
      undefined,
      'nothing is that old',
    );
    const taken = join(dir, 'taken.jsonl');
    writeFileSync(taken, 'mine');
    await assert.rejects(
      session.audit.archive({ before: Date.now() + 60_000, path: taken }),
      (error: unknown) =>
        error instanceof OperationError &&
        error.code === 'OPERATION_INVALID' &&
        /exists already: an archive is never overwritten/.test(error.message),
    );
    assert.equal((await session.audit.query({ limit: 10 })).length, 1, 'nothing was pruned');
  });
});
