// Audit records as OCSF API Activity (class 6003) events for a SIEM: the required attributes,
// the enumerations' numeric values, and no fact of the record lost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toOcsfApiActivity } from '../src/audit/ocsf.js';
import type { AuditRecord } from '../src/domain/audit-record.js';
import { auditKeyFromSeed, buildChain } from './fixtures/audit/build-chain.js';

const KEY = auditKeyFromSeed('warden ocsf-test audit key');

async function sampleRecords(): Promise<AuditRecord[]> {
  return (await buildChain({ key: KEY })).records;
}

const REQUIRED = [
  'activity_id',
  'category_uid',
  'class_uid',
  'type_uid',
  'severity_id',
  'time',
  'metadata',
  'actor',
  'api',
  'src_endpoint',
];

test('every record maps to an API Activity event with every required attribute', async () => {
  for (const record of await sampleRecords()) {
    const event = toOcsfApiActivity(record);
    for (const attribute of REQUIRED) {
      assert.ok(event[attribute] !== undefined, `${record.event} has ${attribute}`);
    }
    assert.equal(event['class_uid'], 6003);
    assert.equal(event['category_uid'], 6);
    assert.equal(event['type_uid'], 600300 + Number(event['activity_id']));
    assert.equal(event['time'], Date.parse(record.time));
    const metadata = event['metadata'] as Record<string, unknown>;
    assert.deepEqual(metadata['product'], { name: 'Warden', vendor_name: 'Warden' });
    assert.match(String(metadata['version']), /^1\.\d+\.\d+$/);
    const actor = event['actor'] as Record<string, unknown>;
    assert.ok(actor['user'] !== undefined || actor['app_name'] !== undefined, 'actor has someone');
  }
});

test('a denied tool call maps to who, which tool, which request, and why', async () => {
  const denied = (await sampleRecords()).find((record) => record.event === 'call.denied');
  assert.ok(denied);
  const event = toOcsfApiActivity(denied);
  assert.equal(event['activity_id'], 99, 'tools/call is neither create, read, update nor delete');
  assert.equal(event['status_id'], 2);
  assert.equal(event['status'], 'Failure');
  assert.equal(event['severity_id'], 2);
  assert.equal(event['status_detail'], 'amount above limit');
  assert.deepEqual(event['actor'], {
    user: { name: 'alice@example.com', uid: 'alice@example.com' },
    app_name: 'billing-bot',
    authorizations: [
      { decision: 'deny', policy: { uid: 'limit-transfers', name: 'limit-transfers' } },
    ],
  });
  assert.deepEqual(event['api'], {
    operation: 'tools/call',
    request: { uid: 'req-1' },
    service: { name: 'payments' },
  });
  assert.deepEqual(event['resources'], [{ name: 'transfer_funds', type: 'tool' }]);
  assert.equal((event['metadata'] as Record<string, unknown>)['correlation_uid'], 'req-1');
  assert.equal((event['metadata'] as Record<string, unknown>)['tenant_uid'], 'acme');
});

test('what OCSF has no attribute for is kept in unmapped, including the chain fields', async () => {
  const allowed = (await sampleRecords()).find((record) => record.event === 'call.allowed');
  assert.ok(allowed);
  const unmapped = toOcsfApiActivity(allowed)['unmapped'] as Record<string, unknown>;
  for (const field of [
    'hash',
    'prevHash',
    'traceId',
    'roles',
    'model',
    'environment',
    'region',
    'arguments',
    'argumentsHash',
    'decision',
  ]) {
    assert.deepEqual(unmapped[field], allowed[field as keyof AuditRecord], field);
  }
  assert.equal(unmapped['user'], undefined, 'mapped fields are not repeated');
});

test('system events without a user are attributed to the gateway, and succeed', async () => {
  const loaded = (await sampleRecords()).find((record) => record.event === 'config.loaded');
  assert.ok(loaded);
  const event = toOcsfApiActivity(loaded);
  assert.deepEqual(event['actor'], { app_name: 'Warden' });
  assert.equal(event['activity_id'], 3);
  assert.equal(event['status_id'], 1);
  const failed = (await sampleRecords()).find((record) => record.event === 'auth.failed');
  assert.deepEqual(failed && toOcsfApiActivity(failed)['src_endpoint'], { ip: '192.0.2.7' });
});
