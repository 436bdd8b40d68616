/**
 * The identity operations every shell calls (`warden token revoke`, `POST /admin/revocations`,
 * `warden keys rotate`): each stores its change and writes exactly one audit record, built in
 * one place; a refused request stores and records nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OperationError } from '../src/domain/errors.js';
import {
  revokeCredential,
  type Revocation,
  type RevokeCredentialRequest,
} from '../src/identity/revoke-credential.js';
import { describeKeyRotation, rotateSigningKeys } from '../src/identity/rotate-signing-keys.js';
import type { SigningKeyStatus } from '../src/identity/signing-keys.js';
import { recordingContext } from './support/operation-context.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const AUTH = { maxTokenLifetimeMs: 3_600_000, clockSkewMs: 30_000 };

const context = () => recordingContext(NOW);

function revocationStore(): { readonly added: Revocation[]; add(r: Revocation): Promise<void> } {
  const added: Revocation[] = [];
  return {
    added,
    add: async (revocation) => {
      added.push(revocation);
    },
  };
}

test('revokeCredential stores one revocation and writes exactly one token.revoked record', async () => {
  const operation = context();
  const revocations = revocationStore();
  const revocation = await revokeCredential(
    { ...operation, auth: AUTH, revocations },
    { kind: 'token', subject: 'jti-1', reason: 'leaked in a CI log', by: 'cli:alice' },
  );
  const expected = {
    kind: 'token',
    subject: 'jti-1',
    revokedAt: NOW,
    // Until every token it covers has expired: the longest lifetime plus clock skew.
    expiresAt: NOW + 3_600_000 + 30_000,
    reason: 'leaked in a CI log',
    revokedBy: 'cli:alice',
  };
  assert.deepEqual(revocation, expected);
  assert.deepEqual(revocations.added, [expected]);
  assert.deepEqual(operation.records, [
    {
      event: 'token.revoked',
      time: '2026-03-01T12:00:00.000Z',
      environment: 'production',
      details: expected,
    },
  ]);
});

test('revokeCredential refuses a revocation without a reason, subject or known kind', async () => {
  const refused: RevokeCredentialRequest[] = [
    { kind: 'agent', subject: 'invoice-bot', reason: '   ', by: 'cli:alice' },
    { kind: 'user', subject: '', reason: 'left the company', by: 'cli:alice' },
    { kind: 'user', subject: 'x'.repeat(257), reason: 'left the company', by: 'cli:alice' },
    { kind: 'everything' as 'user', subject: 'x', reason: 'y', by: 'cli:alice' },
  ];
  for (const request of refused) {
    const operation = context();
    const revocations = revocationStore();
    await assert.rejects(
      revokeCredential({ ...operation, auth: AUTH, revocations }, request),
      (error: unknown) => error instanceof OperationError && error.code === 'OPERATION_INVALID',
    );
    assert.deepEqual(revocations.added, [], 'nothing stored');
    assert.deepEqual(operation.records, [], 'nothing recorded');
  }
});

test('a revocation whose audit record cannot be written fails, and stays in force', async () => {
  const revocations = revocationStore();
  await assert.rejects(
    revokeCredential(
      {
        environment: 'production',
        now: () => NOW,
        record: () => Promise.reject(new Error('audit store down')),
        auth: AUTH,
        revocations,
      },
      { kind: 'agent', subject: 'invoice-bot', reason: 'compromised', by: 'cli:alice' },
    ),
    /audit store down/,
  );
  assert.equal(revocations.added.length, 1, 'the revocation is not undone');
});

test('rotateSigningKeys rotates once and writes exactly one key.rotated record', async () => {
  const operation = context();
  const retireAt = NOW + 3_630_000;
  let rotations = 0;
  const keys: SigningKeyStatus[] = [
    {
      kid: 'new',
      algorithm: 'ES256',
      state: 'active',
      createdAt: NOW,
      rotatedAt: undefined,
      retireAt: undefined,
    },
    { kid: 'old', algorithm: 'ES256', state: 'rotated', createdAt: 0, rotatedAt: NOW, retireAt },
  ];
  const rotation = await rotateSigningKeys(
    {
      ...operation,
      keyring: {
        rotate: async () => {
          rotations++;
          return { kid: 'new' };
        },
        listKeys: async () => keys,
      },
    },
    { by: 'cli:alice' },
  );
  assert.equal(rotations, 1);
  assert.deepEqual(rotation, { kid: 'new', previousKeysUntil: retireAt });
  assert.deepEqual(operation.records, [
    {
      event: 'key.rotated',
      time: '2026-03-01T12:00:00.000Z',
      environment: 'production',
      details: { kid: 'new', scheduled: false, issuer: 'builtin', by: 'cli:alice' },
    },
  ]);
});

test('a scheduled rotation is recorded with the same record, without an operator', () => {
  assert.deepEqual(describeKeyRotation({ kid: 'k2', at: NOW, scheduled: true }, 'staging'), {
    event: 'key.rotated',
    time: '2026-03-01T12:00:00.000Z',
    environment: 'staging',
    details: { kid: 'k2', scheduled: true, issuer: 'builtin' },
  });
});
