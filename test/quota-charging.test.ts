/**
 * Quotas are charged only once a call's decision is in the audit log. An attacker (or a mere
 * outage) that makes the log refuse records must not be able to burn an agent's budget or rate
 * with calls that never happen; and calls racing for the last room are still held to the limit:
 * refused up front when this gateway's own calls already claim it, refused after the record (and
 * that refusal recorded) when a call elsewhere took it in between.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { CallFacts } from '../src/audit/call-entry.js';
import type { CallRecorder } from '../src/audit/call-recorder.js';
import type { QuotaConfig } from '../src/config/policy-config.js';
import type { Decision } from '../src/domain/decision.js';
import { WardenError } from '../src/domain/errors.js';
import type { Identity } from '../src/domain/identity.js';
import { createMessageStages } from '../src/gateway/pipeline/index.js';
import { createLogger } from '../src/gateway/logger.js';
import type { ClientMessageContext } from '../src/mcp/message-gate.js';
import { createMessageAuthorizer } from '../src/policy/authorize-message.js';
import type { InputSchemaChecker } from '../src/policy/input-schema-check.js';
import type { PolicyEngine } from '../src/policy/policy-engine.js';
import { createQuotaLedger } from '../src/policy/quota-ledger.js';
import type { ToolCatalog } from '../src/policy/tool-catalog.js';
import { openStore } from '../src/store/open-store.js';
import type { Store } from '../src/store/types.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import {
  answerIn,
  openSession,
  postMcp,
  type RawReply,
  type WireMessage,
} from './support/raw-http.js';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { tempRoot } from './support/store-databases.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const identity: Identity = {
  user: 'ada@example.com',
  delegation: [],
  agent: 'finance-bot',
  roles: ['caller'],
  environment: 'test',
  tenant: undefined,
  declaredModel: undefined,
  credential: { kind: 'mtls', subject: 'x', fingerprint: 'y', expiresAt: 0 },
};
const THREE_PER_DAY: QuotaConfig = {
  name: 'three_per_day',
  per: 'agent',
  tool: 'ledger.pay',
  role: undefined,
  sum: undefined,
  limit: 3,
  windowMs: 86_400_000,
};
const PAY = { identity, target: 'ledger.pay', arguments: {} };

describe('the quota ledger', () => {
  let store: Store;
  before(async () => {
    store = await openStore('sqlite::memory:');
  });
  after(() => store.close());

  test('ten concurrent calls against a limit of three: three fit, seven are refused up front', async () => {
    const ledger = createQuotaLedger({ quotas: () => [THREE_PER_DAY], store, now: () => NOW });
    const checks = await Promise.all(
      Array.from({ length: 10 }, () => ledger.check(PAY, { hold: true })),
    );
    const fitting = checks.filter((check) => check.fits);
    assert.equal(fitting.length, 3);
    for (const check of checks) {
      if (!check.fits) assert.equal(check.refusal.error?.code, 'WARDEN_QUOTA_EXCEEDED');
    }
    // A released claim (its call's record failed) gives its room back, uncharged.
    const [first, second, third] = fitting.map((check) => (check.fits ? check.claim : undefined));
    first?.release();
    const again = await ledger.check(PAY, { hold: true });
    assert.ok(again.fits, 'the released room is free again');
    for (const claim of [second, third, again.claim])
      assert.equal(await claim?.charge(), undefined);
    const over = await ledger.check(PAY, { hold: false });
    assert.equal(over.fits, false, 'three are charged: the budget is spent');
  });

  test('a claim whose room a call elsewhere took meanwhile is refused when it is charged', async () => {
    const quota = { ...THREE_PER_DAY, name: 'one_per_day', limit: 1 };
    const ledger = createQuotaLedger({ quotas: () => [quota], store, now: () => NOW });
    const here = await ledger.check(PAY, { hold: true });
    assert.ok(here.fits);
    // Another replica (its own ledger, the same store) charges first.
    const elsewhere = createQuotaLedger({ quotas: () => [quota], store, now: () => NOW });
    const theirs = await elsewhere.check(PAY, { hold: true });
    assert.ok(theirs.fits, 'the other replica does not see this one’s claim');
    assert.equal(await theirs.claim.charge(), undefined);
    const refused = await here.claim.charge();
    assert.equal(refused?.error?.code, 'WARDEN_QUOTA_EXCEEDED');
    assert.equal(refused?.decision.effect, 'deny');
    assert.match(refused?.decision.reasons[0] ?? '', /quota one_per_day exceeded/);
  });

  test('a call waiting for approval claims no room while it waits', async () => {
    const quota = { ...THREE_PER_DAY, name: 'held_one', limit: 1 };
    const ledger = createQuotaLedger({ quotas: () => [quota], store, now: () => NOW });
    const held = await ledger.check(PAY, { hold: false });
    const direct = await ledger.check(PAY, { hold: true });
    assert.ok(held.fits && direct.fits, 'the held call leaves the room to the direct one');
  });
});

/** A recorder that keeps the decisions it is given, and refuses them while `down`. */
function recorderOf(state: { down: boolean }) {
  const decisions: { facts: CallFacts; decision: Decision }[] = [];
  const recorder: CallRecorder = {
    async recordDecision(facts, decision) {
      if (state.down) throw new WardenError('WARDEN_AUDIT_UNAVAILABLE');
      decisions.push({ facts, decision });
      return { answered: () => undefined, failed: () => undefined };
    },
    close: async () => undefined,
  };
  return { recorder, decisions };
}

describe('the pipeline charges quotas only after the decision is recorded', () => {
  const stores: Store[] = [];
  const freshStore = async () => {
    const store = await openStore('sqlite::memory:');
    stores.push(store);
    return store;
  };
  after(async () => {
    for (const store of stores) await store.close();
  });

  const quota: QuotaConfig = { ...THREE_PER_DAY, name: 'two_per_day', limit: 2 };
  const allowAll = {
    decide: (): Decision => ({ effect: 'allow', reasons: ['grant g'], policies: ['g'] }),
  } as unknown as PolicyEngine;
  const catalog: ToolCatalog = {
    observe: async () => new Map(),
    lookup: async (_upstream, name) => ({
      status: 'approved',
      hash: 'h1',
      definition: { name, inputSchema: { type: 'object' } } as never,
    }),
  };
  const context: ClientMessageContext = {
    requestId: 'r',
    upstreamName: 'ledger',
    sessionId: 's',
    protocolVersion: '2025-06-18',
    identity,
    traceparent: undefined,
  };
  let nextId = 1;
  const pay = () => ({
    jsonrpc: '2.0' as const,
    id: nextId++,
    method: 'tools/call',
    params: { name: 'pay', arguments: { amount: 1 } },
  });
  const pipelineWith = (recorder: CallRecorder, store: Pick<Store, 'quotas'>) =>
    createMessageStages({
      authorizer: createMessageAuthorizer({
        engine: () => allowAll,
        policy: () => ({ quotas: [quota] }) as never,
        inputs: {
          states: () => new Map(),
          breakglassFor: () => new Map(),
          refresh: async () => undefined,
          close: () => undefined,
        },
        catalog,
        schemaChecker: { check: () => ({ ok: true }), size: 0 } as InputSchemaChecker,
        store,
        now: () => NOW,
        record: async () => undefined,
        alert: () => undefined,
      }),
      recorder,
      logger: createLogger('silent'),
    });
  const refusedWith = (code: string) => (error: unknown) =>
    error instanceof WardenError && error.code === code;

  test('calls the log refuses are refused and leave the quota untouched', async () => {
    const state = { down: true };
    const { recorder, decisions } = recorderOf(state);
    const pipeline = pipelineWith(recorder, await freshStore());
    for (let i = 0; i < 5; i++) {
      await assert.rejects(
        pipeline.admitClientMessage(pay(), context),
        refusedWith('WARDEN_AUDIT_UNAVAILABLE'),
      );
    }
    state.down = false;
    for (let i = 0; i < 2; i++) assert.ok(await pipeline.admitClientMessage(pay(), context));
    await assert.rejects(
      pipeline.admitClientMessage(pay(), context),
      refusedWith('WARDEN_QUOTA_EXCEEDED'),
    );
    assert.deepEqual(
      decisions.map(({ decision }) => decision.effect),
      ['allow', 'allow', 'deny'],
    );
  });

  test('a call whose room is taken between its record and its charge is refused, and that recorded', async () => {
    const store = await freshStore();
    const { recorder, decisions } = recorderOf({ down: false });
    // Another replica (its own ledger, the same store) spends the room while this call's
    // decision is being recorded.
    const elsewhere = createQuotaLedger({ quotas: () => [quota], store, now: () => NOW });
    let raced = false;
    const racing: CallRecorder = {
      ...recorder,
      async recordDecision(facts, decision, options) {
        if (!raced) {
          raced = true;
          for (let i = 0; i < 2; i++) {
            const theirs = await elsewhere.check(PAY, { hold: true });
            assert.ok(theirs.fits);
            assert.equal(await theirs.claim.charge(), undefined);
          }
        }
        return recorder.recordDecision(facts, decision, options);
      },
    };
    const pipeline = pipelineWith(racing, store);
    await assert.rejects(
      pipeline.admitClientMessage(pay(), { ...context, requestId: 'raced' }),
      refusedWith('WARDEN_QUOTA_EXCEEDED'),
    );
    assert.deepEqual(
      decisions.map(({ facts, decision }) => [facts.requestId, decision.effect]),
      [
        ['raced', 'allow'],
        ['raced', 'deny'],
      ],
      'allowed, then refused when charged: the log tells both',
    );
    assert.match(decisions[1]?.decision.reasons[0] ?? '', /quota two_per_day exceeded/);
  });
});

describe('a gateway whose audit store refuses records', () => {
  const dbPath = join(tempRoot, 'quota-outage.db');
  let upstream: ScriptedUpstream;
  let gateway: TestGateway;
  let endpoint: string;
  let headers: Record<string, string>;
  let sessionId: string;
  let nextId = 1;

  before(async () => {
    upstream = await startScriptedUpstream();
    gateway = await startTestGateway({
      store: `sqlite:${dbPath}`,
      audit: { stream: 'quota-outage', hash_key_file: join(tempRoot, 'quota-outage.key') },
      quotas: [{ name: 'two_per_day', per: 'agent', tool: 'ledger.echo', limit: 2, window: '1d' }],
      upstreams: { ledger: { url: upstream.url } },
    });
    endpoint = gateway.endpoint('ledger');
    headers = await gateway.authHeaders();
    sessionId = await openSession(endpoint, headers);
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  const send = async (method: string, params: Record<string, unknown>) => {
    const id = nextId++;
    const reply: RawReply = await postMcp(
      endpoint,
      { jsonrpc: '2.0', id, method, params },
      { sessionId, headers },
    );
    return answerIn(reply, id);
  };
  const echo = () => send('tools/call', { name: 'echo', arguments: {} });
  const codeOf = (answer: WireMessage) => answer.error?.data?.code;
  const echoesReceived = () =>
    upstream.received.filter((request) => request.message?.method === 'tools/call').length;

  test('calls refused while the log is down use up no quota', { timeout: 60_000 }, async () => {
    // The tool is listed (and pinned) while the log works, so the outage hits the decisions only.
    assert.ok((await send('tools/list', {})).result);
    // The staged fault: every append to the audit log fails, as on a full or broken disk. The
    // quotas, in the same database, still work: only the record is missing.
    const saboteur = new Database(dbPath);
    try {
      saboteur.exec(
        `CREATE TRIGGER audit_outage BEFORE INSERT ON audit_records
         BEGIN SELECT RAISE(ABORT, 'the audit disk is failing'); END`,
      );
      for (let i = 0; i < 3; i++) {
        assert.equal(codeOf(await echo()), 'WARDEN_AUDIT_UNAVAILABLE');
      }
      assert.equal(echoesReceived(), 0, 'nothing was forwarded');
    } finally {
      saboteur.exec('DROP TRIGGER IF EXISTS audit_outage');
      saboteur.close();
    }
    // The whole budget is still there: two calls go, the third is over quota.
    for (let i = 0; i < 2; i++) {
      const answer = await echo();
      assert.ok(answer.result, JSON.stringify(answer));
    }
    assert.equal(codeOf(await echo()), 'WARDEN_QUOTA_EXCEEDED');
    assert.equal(echoesReceived(), 2);
  });
});
