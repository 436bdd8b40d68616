/**
 * Policy state, break-glass grants, tool definitions, quotas and approvals on SQLite. Every call
 * is a short synchronous statement on the store's connection. The two read-then-write calls
 * (quotas.charge, approvals.update) run in BEGIN IMMEDIATE transactions: the write lock is taken
 * before the read, so another process on the same file waits (busy timeout) instead of deciding
 * on a stale read.
 */
import type { Database } from 'better-sqlite3';
import {
  APPROVAL_COLUMN_LIST,
  APPROVAL_COLUMNS,
  approvalAssignments,
  BREAK_GLASS_COLUMNS,
  checkApprovalQuery,
  checkQuotaCharges,
  decideQuota,
  POLICY_STATE_COLUMNS,
  readUsed,
  rethrowingChangeErrors,
  toApprovalParams,
  toApprovalRequest,
  toApprovalUpdateParams,
  toApprovedHashes,
  toApproveParams,
  toBreakGlassGrant,
  toBreakGlassParams,
  toObservedDefinitionParams,
  toPolicyState,
  toPolicyStateParams,
  toStoredToolDefinition,
  TOOL_DEFINITION_COLUMNS,
  type ApprovalChange,
  type PolicyRepositories,
} from '../policy-rows.js';
import { assertEpochMs, type Row } from '../row-mapping.js';
import type {
  ApprovalRepository,
  ApprovalRequest,
  BreakGlassRepository,
  PolicyStateRepository,
  QuotaCharge,
  QuotaOutcome,
  QuotaRepository,
  ToolDefinitionRepository,
} from '../types.js';

/** Runs a statement on the store's connection, turning driver errors into StoreErrors. */
type Run = <T>(action: string, statement: () => T) => T;

const placeholders = (count: number): string => Array(count).fill('?').join(', ');

export function createSqlitePolicyRepositories(db: Database, run: Run): PolicyRepositories {
  return {
    policyStates: createPolicyStates(db, run),
    breakGlass: createBreakGlass(db, run),
    toolDefinitions: createToolDefinitions(db, run),
    quotas: createQuotas(db, run),
    approvals: createApprovals(db, run),
  };
}

function createPolicyStates(db: Database, run: Run): PolicyStateRepository {
  const sql = {
    upsert: db.prepare(
      `INSERT INTO policy_states (${POLICY_STATE_COLUMNS}) VALUES (${placeholders(5)})
       ON CONFLICT (name) DO UPDATE SET is_on = excluded.is_on, changed_at = excluded.changed_at,
         changed_by = excluded.changed_by, reason = excluded.reason`,
    ),
    list: db.prepare(`SELECT ${POLICY_STATE_COLUMNS} FROM policy_states ORDER BY name`),
  };
  return {
    set: async (state) => {
      const params = toPolicyStateParams(state);
      run('set a policy state', () => sql.upsert.run(params));
    },
    list: async () => run('list policy states', () => sql.list.all() as Row[]).map(toPolicyState),
  };
}

function createBreakGlass(db: Database, run: Run): BreakGlassRepository {
  const sql = {
    insert: db.prepare(
      `INSERT INTO break_glass_grants (${BREAK_GLASS_COLUMNS}) VALUES (${placeholders(8)})`,
    ),
    listActive: db.prepare(
      `SELECT ${BREAK_GLASS_COLUMNS} FROM break_glass_grants
       WHERE expires_at > @now AND (revoked_at IS NULL OR revoked_at > @now)
       ORDER BY created_at, id`,
    ),
    revoke: db.prepare(
      `UPDATE break_glass_grants SET revoked_at = @at
       WHERE id = @id AND revoked_at IS NULL AND expires_at > @at`,
    ),
  };
  return {
    add: async (grant) => {
      const params = toBreakGlassParams(grant);
      run('add a break-glass grant', () => sql.insert.run(params));
    },
    listActive: async (now) => {
      assertEpochMs('now', now);
      return run('list break-glass grants', () => sql.listActive.all({ now }) as Row[]).map(
        toBreakGlassGrant,
      );
    },
    revoke: async (id, at) => {
      assertEpochMs('at', at);
      return run('revoke a break-glass grant', () => sql.revoke.run({ id, at })).changes > 0;
    },
  };
}

function createToolDefinitions(db: Database, run: Run): ToolDefinitionRepository {
  const order = 'ORDER BY upstream, tool, first_seen_at, hash';
  const sql = {
    insert: db.prepare(
      `INSERT INTO tool_definitions (${TOOL_DEFINITION_COLUMNS}) VALUES (${placeholders(7)})
       ON CONFLICT (upstream, tool, hash) DO NOTHING`,
    ),
    get: db.prepare(
      `SELECT ${TOOL_DEFINITION_COLUMNS} FROM tool_definitions
       WHERE upstream = ? AND tool = ? AND hash = ?`,
    ),
    approve: db.prepare(
      `UPDATE tool_definitions SET approved_at = ?, approved_by = ?
       WHERE upstream = ? AND tool = ? AND hash = ?`,
    ),
    listAll: db.prepare(`SELECT ${TOOL_DEFINITION_COLUMNS} FROM tool_definitions ${order}`),
    listUpstream: db.prepare(
      `SELECT ${TOOL_DEFINITION_COLUMNS} FROM tool_definitions WHERE upstream = ? ${order}`,
    ),
    approved: db.prepare(
      `SELECT upstream, tool, hash FROM tool_definitions WHERE approved_at IS NOT NULL
       ORDER BY upstream, tool, approved_at, first_seen_at, hash`,
    ),
  };
  return {
    observe: async (definition) => {
      const params = toObservedDefinitionParams(definition);
      const row = run('record a tool definition', () => {
        sql.insert.run(params);
        const stored = sql.get.get(params.slice(0, 3)) as Row | undefined;
        if (stored === undefined) throw new Error('the definition vanished after recording it');
        return stored;
      });
      return toStoredToolDefinition(row);
    },
    approve: async (upstream, tool, hash, by, at) => {
      const { key, approval } = toApproveParams(upstream, tool, hash, by, at);
      return (
        run('approve a tool definition', () => sql.approve.run(...approval, ...key)).changes > 0
      );
    },
    list: async (upstream) => {
      const rows = run('list tool definitions', () =>
        upstream === undefined ? sql.listAll.all() : sql.listUpstream.all(upstream),
      ) as Row[];
      return rows.map(toStoredToolDefinition);
    },
    approvedHashes: async () =>
      toApprovedHashes(run('list approved tool definitions', () => sql.approved.all() as Row[])),
  };
}

/**
 * Charges are stamped with the caller's `now` (one machine's clock: the stores sharing a file share
 * it), read before BEGIN IMMEDIATE waits for the write lock. So a charge stamped later may already
 * be committed when this one runs: nothing bounds the window above, and it counts.
 */
function createQuotas(db: Database, run: Run): QuotaRepository {
  const sql = {
    used: db.prepare(
      `SELECT coalesce(sum(amount), 0.0) AS used FROM quota_charges
       WHERE quota_key = ? AND charged_at > ?`,
    ),
    insert: db.prepare(
      'INSERT INTO quota_charges (quota_key, amount, charged_at) VALUES (?, ?, ?)',
    ),
    deleteOlder: db.prepare('DELETE FROM quota_charges WHERE charged_at < ?'),
  };
  const charge = db.transaction(
    (charges: readonly QuotaCharge[], now: number, dryRun: boolean): QuotaOutcome => {
      const used = charges.map((c) => readUsed(sql.used.get(c.key, now - c.windowMs) as Row));
      const outcome = decideQuota(charges, used);
      if (outcome.admitted && !dryRun)
        for (const c of charges) sql.insert.run(c.key, c.amount, now);
      return outcome;
    },
  );
  return {
    charge: async (charges, now, options) => {
      checkQuotaCharges(charges, now);
      const dryRun = options?.dryRun === true;
      return run('charge quotas', () => charge.immediate(charges, now, dryRun));
    },
    deleteOlderThan: async (before) => {
      assertEpochMs('before', before);
      return run('delete old quota charges', () => sql.deleteOlder.run(before)).changes;
    },
  };
}

function createApprovals(db: Database, run: Run): ApprovalRepository {
  const select = `SELECT ${APPROVAL_COLUMNS} FROM approval_requests`;
  const newestFirst = 'ORDER BY created_at DESC, id DESC LIMIT ?';
  const sql = {
    insert: db.prepare(
      `INSERT INTO approval_requests (${APPROVAL_COLUMNS})
       VALUES (${placeholders(APPROVAL_COLUMN_LIST.length)})`,
    ),
    get: db.prepare(`${select} WHERE id = ?`),
    findLatest: db.prepare(
      `${select} WHERE agent = ? AND user_id IS ? AND upstream = ? AND tool = ?
       AND arguments_hash = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
    ),
    listAll: db.prepare(`${select} ${newestFirst}`),
    listByStatus: db.prepare(`${select} WHERE status = ? ${newestFirst}`),
    update: db.prepare(
      `UPDATE approval_requests SET ${approvalAssignments(() => '?')} WHERE id = ?
       RETURNING ${APPROVAL_COLUMNS}`,
    ),
  };
  const update = db.transaction(
    (id: string, change: ApprovalChange): ApprovalRequest | undefined => {
      const row = sql.get.get(id) as Row | undefined;
      if (row === undefined) return undefined;
      const [, ...params] = toApprovalUpdateParams(id, change(toApprovalRequest(row)));
      return toApprovalRequest(sql.update.get(...params, id) as Row);
    },
  );
  return {
    create: async (request) => {
      const params = toApprovalParams(request);
      run('create an approval request', () => sql.insert.run(params));
    },
    get: async (id) => {
      const row = run('read an approval request', () => sql.get.get(id) as Row | undefined);
      return row === undefined ? undefined : toApprovalRequest(row);
    },
    findLatest: async ({ agent, user, upstream, tool, argumentsHash }) => {
      const row = run(
        'find an approval request',
        () =>
          sql.findLatest.get(agent, user ?? null, upstream, tool, argumentsHash) as Row | undefined,
      );
      return row === undefined ? undefined : toApprovalRequest(row);
    },
    list: async (query = {}) => {
      const { status, limit } = checkApprovalQuery(query);
      const rows = run('list approval requests', () =>
        status === undefined ? sql.listAll.all(limit) : sql.listByStatus.all(status, limit),
      ) as Row[];
      return rows.map(toApprovalRequest);
    },
    update: async (id, change) =>
      rethrowingChangeErrors(change, (guarded) =>
        run('update an approval request', () => update.immediate(id, guarded)),
      ),
  };
}
