/**
 * Policy state, break-glass grants, tool definitions, quotas and approvals on PostgreSQL, shared
 * by every replica. The two read-then-write calls hold a lock from the read to the commit:
 * quotas.charge a transaction-scoped advisory lock per key, approvals.update the row itself
 * (SELECT … FOR UPDATE), so replicas acting at the same moment take turns.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { StoreError } from '../errors.js';
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
  type PolicyRepositories,
} from '../policy-rows.js';
import { assertEpochMs, readInteger, type Row } from '../row-mapping.js';
import type {
  ApprovalRepository,
  BreakGlassRepository,
  PolicyStateRepository,
  QuotaCharge,
  QuotaRepository,
  ToolDefinitionRepository,
} from '../types.js';

export interface PostgresPolicyOptions {
  /** Runs one statement on the pool, turning driver errors into StoreErrors. */
  readonly query: (action: string, text: string, values?: unknown[]) => Promise<Row[]>;
  /** Runs `work` between BEGIN and COMMIT on one connection (ROLLBACK if it throws). */
  readonly transaction: <T>(
    action: string,
    work: (client: pg.PoolClient) => Promise<T>,
  ) => Promise<T>;
}

const placeholders = (count: number, from = 1): string =>
  Array.from({ length: count }, (_, index) => `$${from + index}`).join(', ');

export function createPostgresPolicyRepositories(
  options: PostgresPolicyOptions,
): PolicyRepositories {
  return {
    policyStates: createPolicyStates(options),
    breakGlass: createBreakGlass(options),
    toolDefinitions: createToolDefinitions(options),
    quotas: createQuotas(options),
    approvals: createApprovals(options),
  };
}

function createPolicyStates({ query }: PostgresPolicyOptions): PolicyStateRepository {
  return {
    set: async (state) => {
      await query(
        'set a policy state',
        `INSERT INTO policy_states (${POLICY_STATE_COLUMNS}) VALUES ($1, $2::int::boolean, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET is_on = excluded.is_on, changed_at = excluded.changed_at,
           changed_by = excluded.changed_by, reason = excluded.reason`,
        toPolicyStateParams(state),
      );
    },
    list: async () => {
      const rows = await query(
        'list policy states',
        `SELECT ${POLICY_STATE_COLUMNS} FROM policy_states ORDER BY name`,
      );
      return rows.map(toPolicyState);
    },
  };
}

function createBreakGlass({ query }: PostgresPolicyOptions): BreakGlassRepository {
  return {
    add: async (grant) => {
      await query(
        'add a break-glass grant',
        `INSERT INTO break_glass_grants (${BREAK_GLASS_COLUMNS}) VALUES (${placeholders(8)})`,
        toBreakGlassParams(grant),
      );
    },
    listActive: async (now) => {
      assertEpochMs('now', now);
      const rows = await query(
        'list break-glass grants',
        `SELECT ${BREAK_GLASS_COLUMNS} FROM break_glass_grants
         WHERE expires_at > $1 AND (revoked_at IS NULL OR revoked_at > $1)
         ORDER BY created_at, id`,
        [now],
      );
      return rows.map(toBreakGlassGrant);
    },
    revoke: async (id, at) => {
      assertEpochMs('at', at);
      const rows = await query(
        'revoke a break-glass grant',
        `UPDATE break_glass_grants SET revoked_at = $2
         WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING id`,
        [id, at],
      );
      return rows.length > 0;
    },
  };
}

function createToolDefinitions({ query }: PostgresPolicyOptions): ToolDefinitionRepository {
  const order = 'ORDER BY upstream, tool, first_seen_at, hash';
  return {
    observe: async (definition) => {
      const params = toObservedDefinitionParams(definition);
      await query(
        'record a tool definition',
        `INSERT INTO tool_definitions (${TOOL_DEFINITION_COLUMNS}) VALUES (${placeholders(7)})
         ON CONFLICT (upstream, tool, hash) DO NOTHING`,
        params,
      );
      // A separate statement: its snapshot sees the row another replica inserted concurrently.
      const rows = await query(
        'read a tool definition',
        `SELECT ${TOOL_DEFINITION_COLUMNS} FROM tool_definitions
         WHERE upstream = $1 AND tool = $2 AND hash = $3`,
        params.slice(0, 3),
      );
      const row = rows[0];
      if (row === undefined) throw vanished('the tool definition');
      return toStoredToolDefinition(row);
    },
    approve: async (upstream, tool, hash, by, at) => {
      const { key, approval } = toApproveParams(upstream, tool, hash, by, at);
      const rows = await query(
        'approve a tool definition',
        `UPDATE tool_definitions SET approved_at = $4, approved_by = $5
         WHERE upstream = $1 AND tool = $2 AND hash = $3 RETURNING hash`,
        [...key, ...approval],
      );
      return rows.length > 0;
    },
    list: async (upstream) => {
      const rows = await query(
        'list tool definitions',
        `SELECT ${TOOL_DEFINITION_COLUMNS} FROM tool_definitions
         WHERE $1::text IS NULL OR upstream = $1 ${order}`,
        [upstream ?? null],
      );
      return rows.map(toStoredToolDefinition);
    },
    approvedHashes: async () => {
      const rows = await query(
        'list approved tool definitions',
        `SELECT upstream, tool, hash FROM tool_definitions WHERE approved_at IS NOT NULL
         ORDER BY upstream, tool, approved_at, first_seen_at, hash`,
      );
      return toApprovedHashes(rows);
    },
  };
}

/**
 * The database's clock in epoch ms, read once, and each charge's used total over its window ending
 * then, one row per charge in order. Nothing bounds the window above: a charge stamped later (the
 * server's clock stepped back) was committed before this one took the lock and must count too.
 */
const QUOTA_USED_SQL = `
  WITH clock AS (SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms)
  SELECT clock.now_ms, coalesce((
    SELECT sum(q.amount) FROM quota_charges q
    WHERE q.quota_key = c.quota_key AND q.charged_at > clock.now_ms - c.window_ms
  ), 0)::float8 AS used
  FROM clock, unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS c (quota_key, window_ms, position)
  ORDER BY c.position`;

const QUOTA_INSERT_SQL = `
  INSERT INTO quota_charges (quota_key, amount, charged_at)
  SELECT quota_key, amount, $3 FROM unnest($1::text[], $2::float8[]) AS c (quota_key, amount)`;

/**
 * Advisory lock ids of the charged keys, deduplicated and in ascending order: every caller takes
 * its locks in the same order, so two calls sharing keys cannot deadlock. 64 bits of SHA-256 make
 * two keys sharing a lock (which would only serialise them) practically impossible.
 */
function quotaLockIds(charges: readonly QuotaCharge[]): string[] {
  const ids = new Set(
    charges.map((charge) =>
      BigInt.asIntN(
        64,
        createHash('sha256').update(`warden:quota:${charge.key}`).digest().readBigUInt64BE(0),
      ),
    ),
  );
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
}

/**
 * Charges are stamped by the database's clock, read after every lock is held, and a key's window
 * ends at that same reading. The caller's `now` is only validated: a replica whose clock runs
 * ahead would otherwise slide its window past charges that still count, and one stamping before
 * it waited for the lock would record a charge earlier than ones already counted by others.
 * A counter row per fixed window would need no log, but would let twice the limit through across
 * a window boundary; the log keeps the sliding window (indexed on quota_key, charged_at).
 */
function createQuotas({ query, transaction }: PostgresPolicyOptions): QuotaRepository {
  return {
    charge: async (charges, now, options) => {
      checkQuotaCharges(charges, now);
      if (charges.length === 0) return decideQuota(charges, []);
      return transaction('charge quotas', async (client) => {
        // A dry run waits for the same locks, so it answers after any charge already under way.
        for (const id of quotaLockIds(charges)) {
          await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [id]);
        }
        // Read committed: this statement's snapshot is taken after the locks, so it sees every
        // charge committed by whoever held them before.
        const { rows } = await client.query<Row>(QUOTA_USED_SQL, [
          charges.map((c) => c.key),
          charges.map((c) => c.windowMs),
        ]);
        const outcome = decideQuota(charges, rows.map(readUsed));
        if (outcome.admitted && options?.dryRun !== true) {
          await client.query(QUOTA_INSERT_SQL, [
            charges.map((c) => c.key),
            charges.map((c) => c.amount),
            readInteger(rows[0] ?? {}, 'now_ms'),
          ]);
        }
        return outcome;
      });
    },
    deleteOlderThan: async (before) => {
      assertEpochMs('before', before);
      const rows = await query(
        'delete old quota charges',
        `WITH deleted AS (DELETE FROM quota_charges WHERE charged_at < $1 RETURNING 1)
         SELECT count(*)::int AS deleted FROM deleted`,
        [before],
      );
      return Number(rows[0]?.['deleted'] ?? 0);
    },
  };
}

function createApprovals({ query, transaction }: PostgresPolicyOptions): ApprovalRepository {
  const select = `SELECT ${APPROVAL_COLUMNS} FROM approval_requests`;
  return {
    create: async (request) => {
      await query(
        'create an approval request',
        `INSERT INTO approval_requests (${APPROVAL_COLUMNS})
         VALUES (${placeholders(APPROVAL_COLUMN_LIST.length)})`,
        toApprovalParams(request),
      );
    },
    get: async (id) => {
      const rows = await query('read an approval request', `${select} WHERE id = $1`, [id]);
      return rows[0] === undefined ? undefined : toApprovalRequest(rows[0]);
    },
    findLatest: async ({ agent, user, upstream, tool, argumentsHash }) => {
      const rows = await query(
        'find an approval request',
        `${select} WHERE agent = $1 AND user_id IS NOT DISTINCT FROM $2::text AND upstream = $3
         AND tool = $4 AND arguments_hash = $5 ORDER BY created_at DESC, id DESC LIMIT 1`,
        [agent, user ?? null, upstream, tool, argumentsHash],
      );
      return rows[0] === undefined ? undefined : toApprovalRequest(rows[0]);
    },
    list: async (filters = {}) => {
      const { status, limit } = checkApprovalQuery(filters);
      const rows = await query(
        'list approval requests',
        `${select} WHERE $1::text IS NULL OR status = $1
         ORDER BY created_at DESC, id DESC LIMIT $2`,
        [status ?? null, limit],
      );
      return rows.map(toApprovalRequest);
    },
    update: async (id, change) =>
      rethrowingChangeErrors(change, (guarded) =>
        transaction('update an approval request', async (client) => {
          const current = await client.query<Row>(`${select} WHERE id = $1 FOR UPDATE`, [id]);
          if (current.rows[0] === undefined) return undefined;
          const params = toApprovalUpdateParams(id, guarded(toApprovalRequest(current.rows[0])));
          const updated = await client.query<Row>(
            `UPDATE approval_requests SET ${approvalAssignments((index) => `$${index + 1}`)}
             WHERE id = $1 RETURNING ${APPROVAL_COLUMNS}`,
            params,
          );
          if (updated.rows[0] === undefined) throw vanished('the approval request');
          return toApprovalRequest(updated.rows[0]);
        }),
      ),
  };
}

function vanished(what: string): StoreError {
  return new StoreError('STORE_QUERY_FAILED', `${what} vanished between writing and reading it`);
}
