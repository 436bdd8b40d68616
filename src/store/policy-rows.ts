/**
 * Policy states, break-glass grants, tool definitions, quota charges and approval requests as
 * rows, shared by both backends: validation before SQL and the way back, so SQLite and PostgreSQL
 * return identical values. Arrays are JSON text; times are epoch ms; a boolean is read from 0/1
 * (SQLite) or true/false (PostgreSQL).
 */
import { StoreError } from './errors.js';
import {
  assertEpochMs,
  readInteger,
  readOptionalInteger,
  readText,
  unreadableColumn,
  type Row,
} from './row-mapping.js';
import type {
  ApprovalQuery,
  ApprovalRequest,
  ApprovalStatus,
  ApprovalVote,
  BreakGlassGrant,
  PolicyState,
  QuotaCharge,
  QuotaOutcome,
  Store,
  StoredToolDefinition,
} from './types.js';

export type PolicyValue = string | number | null;

/** What both backends add to a Store for policy: built by one factory per backend. */
export type PolicyRepositories = Pick<
  Store,
  'policyStates' | 'breakGlass' | 'toolDefinitions' | 'quotas' | 'approvals'
>;

export type ApprovalChange = (current: ApprovalRequest) => ApprovalRequest;

/** How many requests `ApprovalRepository.list` returns when the query sets no limit. */
export const APPROVAL_LIST_DEFAULT_LIMIT = 100;
export const APPROVAL_LIST_MAX_LIMIT = 1000;

const APPROVAL_STATUSES: ReadonlySet<string> = new Set<ApprovalStatus>([
  'pending',
  'granted',
  'refused',
  'expired',
  'withdrawn',
  'invalidated',
]);
const VOTE_DECISIONS: ReadonlySet<string> = new Set<ApprovalVote['decision']>(['approve', 'deny']);

/** Column order of every policy_states INSERT and SELECT (`on` is an SQL keyword). */
export const POLICY_STATE_COLUMNS = 'name, is_on, changed_at, changed_by, reason';

/** Column order of every break_glass_grants INSERT and SELECT. */
export const BREAK_GLASS_COLUMNS =
  'id, agent, tool, reason, created_by, created_at, expires_at, revoked_at';

/** Column order of every tool_definitions INSERT and SELECT. */
export const TOOL_DEFINITION_COLUMNS =
  'upstream, tool, hash, definition, first_seen_at, approved_at, approved_by';

/** Column order of every approval_requests INSERT and SELECT; the id comes first. */
export const APPROVAL_COLUMN_LIST = [
  'id',
  'request_id',
  'status',
  'created_at',
  'expires_at',
  'decided_at',
  'consumed_at',
  'user_id',
  'agent',
  'roles',
  'model',
  'upstream',
  'tool',
  'arguments',
  'arguments_hash',
  'tool_definition_hash',
  'policy_version',
  'grants',
  'scopes',
  'approver_roles',
  'approvals_required',
  'votes',
  'held_by',
] as const;
export const APPROVAL_COLUMNS = APPROVAL_COLUMN_LIST.join(', ');

/** `column = placeholder` for every approval column but the id, for an UPDATE's SET list. */
export function approvalAssignments(placeholder: (index: number) => string): string {
  return APPROVAL_COLUMN_LIST.slice(1)
    .map((column, index) => `${column} = ${placeholder(index + 1)}`)
    .join(', ');
}

export function toPolicyStateParams(state: PolicyState): PolicyValue[] {
  if (typeof state.on !== 'boolean') throw invalid(`on must be a boolean, got ${typeof state.on}`);
  assertEpochMs('changedAt', state.changedAt);
  return [
    key('name', state.name),
    state.on ? 1 : 0,
    state.changedAt,
    text('changedBy', state.changedBy),
    text('reason', state.reason),
  ];
}

export function toPolicyState(row: Row): PolicyState {
  return {
    name: readText(row, 'name'),
    on: readBoolean(row, 'is_on'),
    changedAt: readInteger(row, 'changed_at'),
    changedBy: readText(row, 'changed_by'),
    reason: readText(row, 'reason'),
  };
}

export function toBreakGlassParams(grant: BreakGlassGrant): PolicyValue[] {
  assertEpochMs('createdAt', grant.createdAt);
  assertEpochMs('expiresAt', grant.expiresAt);
  return [
    key('id', grant.id),
    key('agent', grant.agent),
    key('tool', grant.tool),
    text('reason', grant.reason),
    text('createdBy', grant.createdBy),
    grant.createdAt,
    grant.expiresAt,
    optionalEpochMs('revokedAt', grant.revokedAt),
  ];
}

export function toBreakGlassGrant(row: Row): BreakGlassGrant {
  return {
    id: readText(row, 'id'),
    agent: readText(row, 'agent'),
    tool: readText(row, 'tool'),
    reason: readText(row, 'reason'),
    createdBy: readText(row, 'created_by'),
    createdAt: readInteger(row, 'created_at'),
    expiresAt: readInteger(row, 'expires_at'),
    revokedAt: readOptionalInteger(row, 'revoked_at'),
  };
}

/** A newly seen definition as INSERT parameters (never approved yet). */
export function toObservedDefinitionParams(
  definition: Omit<StoredToolDefinition, 'approvedAt' | 'approvedBy'>,
): PolicyValue[] {
  assertEpochMs('firstSeenAt', definition.firstSeenAt);
  return [
    key('upstream', definition.upstream),
    key('tool', definition.tool),
    key('hash', definition.hash),
    text('definition', definition.definition),
    definition.firstSeenAt,
    null,
    null,
  ];
}

/** The (upstream, tool, hash) key and approval of an approve() call, validated. */
export function toApproveParams(
  upstream: string,
  tool: string,
  hash: string,
  by: string,
  at: number,
): { key: [string, string, string]; approval: [number, string] } {
  assertEpochMs('at', at);
  return {
    key: [key('upstream', upstream), key('tool', tool), key('hash', hash)],
    approval: [at, text('by', by)],
  };
}

export function toStoredToolDefinition(row: Row): StoredToolDefinition {
  return {
    upstream: readText(row, 'upstream'),
    tool: readText(row, 'tool'),
    hash: readText(row, 'hash'),
    definition: readText(row, 'definition'),
    firstSeenAt: readInteger(row, 'first_seen_at'),
    approvedAt: readOptionalInteger(row, 'approved_at'),
    approvedBy: readOptionalText(row, 'approved_by'),
  };
}

/**
 * `upstream.tool` → hash, from approved rows ordered by upstream, tool, approved_at,
 * first_seen_at: the last row of each tool is its latest approval, so it wins.
 */
export function toApprovedHashes(rows: readonly Row[]): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const row of rows) {
    hashes.set(`${readText(row, 'upstream')}.${readText(row, 'tool')}`, readText(row, 'hash'));
  }
  return hashes;
}

/** Rejects a charge the store could not sum faithfully, before any transaction starts. */
export function checkQuotaCharges(charges: readonly QuotaCharge[], now: number): void {
  assertEpochMs('now', now);
  charges.forEach((charge, index) => {
    key(`charges[${index}].key`, charge.key);
    if (!Number.isFinite(charge.amount) || charge.amount < 0) {
      throw invalid(`charges[${index}].amount must be a finite number ≥ 0, got ${charge.amount}`);
    }
    if (!Number.isFinite(charge.limit)) {
      throw invalid(`charges[${index}].limit must be a finite number, got ${charge.limit}`);
    }
    if (!Number.isSafeInteger(charge.windowMs) || charge.windowMs < 1) {
      throw invalid(
        `charges[${index}].windowMs must be a positive integer, got ${charge.windowMs}`,
      );
    }
  });
}

/**
 * Whether every charge fits, given what each key used in its window before this call. A key
 * charged twice in one call counts its earlier charge too, so one call cannot overrun a limit.
 */
export function decideQuota(
  charges: readonly QuotaCharge[],
  used: readonly number[],
): QuotaOutcome {
  const pending = new Map<string, number>();
  let exceeded: number | undefined;
  charges.forEach((charge, index) => {
    const before = (used[index] ?? 0) + (pending.get(charge.key) ?? 0);
    if (exceeded === undefined && before + charge.amount > charge.limit) exceeded = index;
    pending.set(charge.key, (pending.get(charge.key) ?? 0) + charge.amount);
  });
  return { admitted: exceeded === undefined, used: [...used], exceeded };
}

/** The sum a quota query returned: a number on both backends (REAL, DOUBLE PRECISION). */
export function readUsed(row: Row | undefined): number {
  const value = row?.['used'];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw unreadableColumn('used', value);
  return value;
}

/** A validated request as INSERT parameters, in APPROVAL_COLUMN_LIST order. */
export function toApprovalParams(request: ApprovalRequest): PolicyValue[] {
  if (!APPROVAL_STATUSES.has(request.status)) {
    throw invalid(`unknown approval status ${JSON.stringify(request.status)}`);
  }
  assertEpochMs('createdAt', request.createdAt);
  assertEpochMs('expiresAt', request.expiresAt);
  if (!Number.isSafeInteger(request.approvalsRequired) || request.approvalsRequired < 1) {
    throw invalid(`approvalsRequired must be a positive integer, got ${request.approvalsRequired}`);
  }
  return [
    key('id', request.id),
    text('requestId', request.requestId),
    request.status,
    request.createdAt,
    request.expiresAt,
    optionalEpochMs('decidedAt', request.decidedAt),
    optionalEpochMs('consumedAt', request.consumedAt),
    optionalText('user', request.user),
    text('agent', request.agent),
    strings('roles', request.roles),
    optionalText('model', request.model),
    text('upstream', request.upstream),
    text('tool', request.tool),
    text('arguments', request.arguments),
    text('argumentsHash', request.argumentsHash),
    optionalText('toolDefinitionHash', request.toolDefinitionHash),
    text('policyVersion', request.policyVersion),
    strings('grants', request.grants),
    strings('scopes', request.scopes),
    strings('approverRoles', request.approverRoles),
    request.approvalsRequired,
    votes(request.votes),
    optionalText('heldBy', request.heldBy),
  ];
}

export function toApprovalRequest(row: Row): ApprovalRequest {
  const status = readText(row, 'status');
  if (!APPROVAL_STATUSES.has(status)) throw unreadableColumn('status', status);
  return {
    id: readText(row, 'id'),
    requestId: readText(row, 'request_id'),
    status: status as ApprovalStatus,
    createdAt: readInteger(row, 'created_at'),
    expiresAt: readInteger(row, 'expires_at'),
    decidedAt: readOptionalInteger(row, 'decided_at'),
    consumedAt: readOptionalInteger(row, 'consumed_at'),
    user: readOptionalText(row, 'user_id'),
    agent: readText(row, 'agent'),
    roles: readStrings(row, 'roles'),
    model: readOptionalText(row, 'model'),
    upstream: readText(row, 'upstream'),
    tool: readText(row, 'tool'),
    arguments: readText(row, 'arguments'),
    argumentsHash: readText(row, 'arguments_hash'),
    toolDefinitionHash: readOptionalText(row, 'tool_definition_hash'),
    policyVersion: readText(row, 'policy_version'),
    grants: readStrings(row, 'grants'),
    scopes: readStrings(row, 'scopes'),
    approverRoles: readStrings(row, 'approver_roles'),
    approvalsRequired: readInteger(row, 'approvals_required'),
    votes: readVotes(row, 'votes'),
    ...heldByOf(row),
  };
}

/** Only a held call's request names its replica: the others carry no heldBy at all. */
function heldByOf(row: Row): { heldBy?: string } {
  const heldBy = readOptionalText(row, 'held_by');
  return heldBy === undefined ? {} : { heldBy };
}

/** The validated status filter and page size of a list() call. */
export function checkApprovalQuery(query: ApprovalQuery): {
  status: ApprovalStatus | undefined;
  limit: number;
} {
  if (query.status !== undefined && !APPROVAL_STATUSES.has(query.status)) {
    throw invalid(`unknown approval status ${JSON.stringify(query.status)}`);
  }
  const limit = query.limit ?? APPROVAL_LIST_DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > APPROVAL_LIST_MAX_LIMIT) {
    throw invalid(`limit must be an integer from 1 to ${APPROVAL_LIST_MAX_LIMIT}, got ${limit}`);
  }
  return { status: query.status, limit };
}

/**
 * Runs an approval update so that an error thrown by the caller's `change` rejects the call as it
 * was thrown (the caller branches on its own errors), while driver failures stay StoreErrors.
 */
export async function rethrowingChangeErrors<T>(
  change: ApprovalChange,
  work: (guarded: ApprovalChange) => T | Promise<T>,
): Promise<T> {
  let thrown: { error: unknown } | undefined;
  const guarded: ApprovalChange = (current) => {
    try {
      return change(current);
    } catch (error) {
      thrown = { error };
      throw error;
    }
  };
  try {
    return await work(guarded);
  } catch (error) {
    if (thrown !== undefined) throw thrown.error;
    throw error;
  }
}

/** The changed request's UPDATE parameters; the id is the row's and cannot change. */
export function toApprovalUpdateParams(id: string, next: ApprovalRequest): PolicyValue[] {
  if (next.id !== id) {
    throw invalid(`an approval update cannot change the id (${id} became ${String(next.id)})`);
  }
  return toApprovalParams(next);
}

function strings(field: string, value: readonly string[]): string {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw invalid(`${field} must be an array of strings`);
  }
  return JSON.stringify(value);
}

function votes(value: readonly ApprovalVote[]): string {
  if (!Array.isArray(value)) throw invalid('votes must be an array');
  return JSON.stringify(
    value.map((vote, index) => {
      if (!VOTE_DECISIONS.has(vote.decision)) {
        throw invalid(`votes[${index}].decision must be approve or deny`);
      }
      assertEpochMs(`votes[${index}].at`, vote.at);
      return {
        approver: text(`votes[${index}].approver`, vote.approver),
        decision: vote.decision,
        reason: text(`votes[${index}].reason`, vote.reason),
        at: vote.at,
      };
    }),
  );
}

function optionalEpochMs(field: string, value: number | undefined): number | null {
  if (value === undefined) return null;
  assertEpochMs(field, value);
  return value;
}

/** A non-empty string: the part of a row's key, or a name that is looked up by. */
function key(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw invalid(`${field} must be a non-empty string`);
  }
  return value;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(`${field} must be a string, got ${typeof value}`);
  return value;
}

function optionalText(field: string, value: unknown): string | null {
  return value === undefined ? null : text(field, value);
}

function readOptionalText(row: Row, column: string): string | undefined {
  return row[column] === null || row[column] === undefined ? undefined : readText(row, column);
}

function readBoolean(row: Row, column: string): boolean {
  const value = row[column];
  if (value === true || value === 1) return true;
  if (value === false || value === 0) return false;
  throw unreadableColumn(column, value);
}

function readJson(row: Row, column: string): unknown {
  try {
    return JSON.parse(readText(row, column)) as unknown;
  } catch {
    throw unreadableColumn(column, row[column]);
  }
}

function readStrings(row: Row, column: string): string[] {
  const value = readJson(row, column);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw unreadableColumn(column, row[column]);
  }
  return value as string[];
}

function readVotes(row: Row, column: string): ApprovalVote[] {
  const value = readJson(row, column);
  if (!Array.isArray(value)) throw unreadableColumn(column, row[column]);
  return value.map((vote: unknown): ApprovalVote => {
    const { approver, decision, reason, at } = (vote ?? {}) as Record<string, unknown>;
    if (
      typeof approver !== 'string' ||
      typeof decision !== 'string' ||
      !VOTE_DECISIONS.has(decision) ||
      typeof reason !== 'string' ||
      typeof at !== 'number' ||
      !Number.isSafeInteger(at)
    ) {
      throw unreadableColumn(column, row[column]);
    }
    return { approver, decision: decision as ApprovalVote['decision'], reason, at };
  });
}

function invalid(message: string): StoreError {
  return new StoreError('STORE_INVALID_VALUE', message);
}
