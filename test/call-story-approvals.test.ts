// `warden audit show` tells a two-person approval and a withdrawal as they happened.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tellCallStory } from '../src/audit/call-story.js';
import type { AuditRecord } from '../src/domain/audit-record.js';

function record(seq: number, fields: Partial<AuditRecord>): AuditRecord {
  return {
    event: 'approval.requested',
    time: `2026-11-27T10:00:0${seq}.000Z`,
    requestId: 'req-1',
    agent: 'finance-bot',
    user: 'alan@example.com',
    tool: 'issue_payment',
    upstream: 'payments',
    stream: 's',
    seq,
    prevHash: '0'.repeat(64),
    hash: String(seq).repeat(64).slice(0, 64),
    ...fields,
  } as AuditRecord;
}

test('a first vote of two is told as a vote, not as the approval', () => {
  const story = tellCallStory([
    record(1, { event: 'approval.requested', approval: { id: 'ap-1' } }),
    record(2, {
      event: 'approval.granted',
      approval: { id: 'ap-1', approvers: ['carol@example.com'] },
      details: { votes: 1, required: 2, final: false },
    }),
    record(3, {
      event: 'approval.granted',
      approval: { id: 'ap-1', approvers: ['carol@example.com', 'dan@example.com'] },
      details: { votes: 2, required: 2, final: true },
    }),
  ]);
  assert.match(story, /approval vote 1 of 2 by carol@example\.com.*still waiting/);
  assert.match(story, /approved by carol@example\.com, dan@example\.com/);
});

test('a request the client withdrew is told as withdrawn, not as refused by someone', () => {
  const story = tellCallStory([
    record(1, { event: 'approval.requested', approval: { id: 'ap-2' } }),
    record(2, {
      event: 'approval.refused',
      approval: { id: 'ap-2' },
      details: { withdrawn: true, by: 'client' },
    }),
  ]);
  assert.match(story, /withdrawn by the client/);
  assert.doesNotMatch(story, /refused by unknown/);
});
