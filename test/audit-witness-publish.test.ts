/**
 * Publishing checkpoints outside the store, and the signing key outside it: a webhook witness on
 * a real loopback server (HMAC-signed, retried a bounded number of times, never throwing into the
 * chain), and the key read from an environment variable, with the store publishing only its
 * public half.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { openCheckpointSigner } from '../src/audit/checkpoint-signer.js';
import {
  generateAuditKeyPair,
  PUBLISHED_ONLY,
  verifyCheckpoint,
  createCheckpointSigner,
} from '../src/audit/checkpoint.js';
import { createCheckpointWitness, WITNESS_SIGNATURE_HEADER } from '../src/audit/witness.js';
import type { AuditCheckpoint } from '../src/domain/audit-record.js';
import { createMemoryAuditRepository } from './support/memory-audit-repository.js';

const SECRET = 'witness-webhook-secret-0123456789';
const KEY = generateAuditKeyPair();

function checkpointAt(seq: number): AuditCheckpoint {
  return createCheckpointSigner(KEY).signCheckpoint({
    stream: 'gw',
    seq,
    headHash: 'a'.repeat(64),
    time: '2026-01-01T00:00:00.000Z',
  });
}

describe('the webhook witness', () => {
  let server: Server;
  let url: string;
  /** Answers to give, in order; 200 once they run out. */
  let statuses: number[] = [];
  const received: { body: string; signed: boolean }[] = [];

  before(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const expected = Buffer.from(
          `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
        );
        const given = Buffer.from(String(request.headers[WITNESS_SIGNATURE_HEADER]));
        received.push({
          body,
          signed: given.length === expected.length && timingSafeEqual(given, expected),
        });
        response.statusCode = statuses.shift() ?? 200;
        response.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/witness`;
  });

  after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  test('each checkpoint is POSTed, HMAC-signed, and a failed delivery is retried', async () => {
    received.length = 0;
    statuses = [503];
    const errors: Error[] = [];
    const witness = createCheckpointWitness(
      { file: undefined, webhook: { url, secretEnv: 'WITNESS_SECRET' } },
      {
        onError: (error) => errors.push(error),
        env: { WITNESS_SECRET: SECRET },
        retryDelayMs: 1,
      },
    );
    assert.ok(witness);
    witness.publish(checkpointAt(4));
    await witness.close();
    assert.deepEqual(errors, []);
    assert.equal(received.length, 2, 'one refused delivery, then one taken');
    assert.ok(received.every((delivery) => delivery.signed));
    const entry = JSON.parse(received[1]?.body ?? '') as AuditCheckpoint;
    assert.equal(entry.seq, 4);
    assert.equal(
      verifyCheckpoint(entry, KEY.publicKeyPem),
      true,
      'the body is the signed checkpoint',
    );
  });

  test('a webhook that keeps failing is given up after the bounded attempts and reported', async () => {
    received.length = 0;
    statuses = [500, 500, 500, 500, 500];
    const errors: Error[] = [];
    const witness = createCheckpointWitness(
      { file: undefined, webhook: { url, secretEnv: 'WITNESS_SECRET' } },
      {
        onError: (error) => errors.push(error),
        env: { WITNESS_SECRET: SECRET },
        webhookAttempts: 3,
        retryDelayMs: 1,
      },
    );
    assert.ok(witness);
    assert.doesNotThrow(() => witness.publish(checkpointAt(8)), 'publishing never throws');
    await witness.close();
    assert.equal(received.length, 3);
    assert.deepEqual(
      errors.map((error) => (error as Error & { code?: string }).code),
      ['AUDIT_WITNESS_FAILED'],
    );
    assert.doesNotMatch(errors[0]?.message ?? '', /witness-webhook-secret/);
  });

  test('a webhook without its secret is refused at start', () => {
    assert.throws(
      () =>
        createCheckpointWitness(
          { file: undefined, webhook: { url, secretEnv: 'WITNESS_SECRET' } },
          { onError: () => undefined, env: {} },
        ),
      { code: 'AUDIT_WITNESS_FAILED' },
    );
  });
});

describe('the signing key from an environment variable', () => {
  test('signs with the given key; the store publishes only the public half', async () => {
    const repository = createMemoryAuditRepository();
    const opened = await openCheckpointSigner(
      repository,
      { kind: 'env', name: 'AUDIT_KEY' },
      { AUDIT_KEY: KEY.privateKeyPem },
    );
    assert.equal(opened.keyInStore, false);
    assert.equal(opened.signer.keyId, KEY.keyId);
    assert.deepEqual(await repository.signingKey(), {
      keyId: KEY.keyId,
      privateKeyPem: PUBLISHED_ONLY,
      publicKeyPem: KEY.publicKeyPem,
    });
  });

  test('a store that already publishes another key is refused, not silently split', async () => {
    const repository = createMemoryAuditRepository();
    await repository.saveSigningKey(generateAuditKeyPair());
    await assert.rejects(
      openCheckpointSigner(
        repository,
        { kind: 'env', name: 'AUDIT_KEY' },
        { AUDIT_KEY: KEY.privateKeyPem },
      ),
      { code: 'AUDIT_KEY_INVALID' },
    );
  });

  test('an unset variable or a non-Ed25519 key is refused', async () => {
    const repository = createMemoryAuditRepository();
    await assert.rejects(openCheckpointSigner(repository, { kind: 'env', name: 'AUDIT_KEY' }, {}), {
      code: 'AUDIT_KEY_INVALID',
    });
    await assert.rejects(
      openCheckpointSigner(
        repository,
        { kind: 'env', name: 'AUDIT_KEY' },
        { AUDIT_KEY: 'not a key' },
      ),
      { code: 'AUDIT_KEY_INVALID' },
    );
    assert.equal(await repository.signingKey(), undefined, 'nothing was published');
  });

  test('nothing can sign with the published half', async () => {
    const repository = createMemoryAuditRepository();
    await openCheckpointSigner(
      repository,
      { kind: 'env', name: 'AUDIT_KEY' },
      { AUDIT_KEY: KEY.privateKeyPem },
    );
    const published = await repository.signingKey();
    assert.ok(published);
    assert.throws(() => createCheckpointSigner(published), { code: 'AUDIT_KEY_INVALID' });
  });
});
