/**
 * The admin API's approvals inbox:
 *   GET  /admin/approvals[?status=pending|granted|refused|expired|withdrawn]  → { approvals: [...] }
 *   GET  /admin/approvals/ID                                                  → { approval }
 *   POST /admin/approvals/ID/approve   body { "reason": "…" } (optional)      → { approval }
 *   POST /admin/approvals/ID/deny      body { "reason": "…" } (required)      → { approval }
 *
 * Who decides is the authenticated caller, never a request parameter: the approver is the token's
 * user (`sub`), and their roles come from `approvals.approvers` in config. The calling agent must
 * be an admin-surface client (the warden_admin or warden_approver role in the agent registry), so
 * an ordinary agent holding a token on a user's behalf cannot approve calls; and the agent that
 * made a call can never decide it, whichever user's token it holds.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApprovalService } from '../approvals/approval-service.js';
import {
  APPROVAL_STATUSES,
  toApprovalView,
  type ApprovalStatus,
} from '../approvals/approval-view.js';
import { ApprovalError } from '../approvals/errors.js';
import type { ApprovalsConfig } from '../config/config.js';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import { sendJson } from '../http/json-reply.js';
import { readJsonBody } from '../http/read-body.js';
import {
  ADMIN_ROLE,
  requireAccess,
  type AdminAccess,
  type AdminAuthenticator,
} from './admin-access.js';

/** The role an agent (e.g. the approvals console) needs in the registry to decide approvals. */
export const APPROVER_CLIENT_ROLE = 'warden_approver';

const ACCESS: AdminAccess = {
  surface: 'The approvals API',
  roles: [APPROVER_CLIENT_ROLE, ADMIN_ROLE],
};

const DEFAULT_BASE_PATH = '/admin/approvals';
const MAX_BODY_BYTES = 8 * 1024;
const MAX_REASON_LENGTH = 1000;
/** Approval requests carry full call arguments: no cache may keep them. */
const NO_STORE = { 'cache-control': 'no-store' } as const;

export interface ApprovalsApiOptions {
  readonly authenticate: AdminAuthenticator;
  readonly approvals: Pick<ApprovalService, 'list' | 'get' | 'decide'>;
  /** The approver registry: the only source of an approver's roles. */
  readonly approvers: ApprovalsConfig['approvers'];
  /** Where the handler is mounted; `/admin/approvals` by default. */
  readonly basePath?: string;
}

/**
 * The handler for every request under `basePath`. It throws a WardenError for the caller's
 * error handler to answer (as the revocations API does); successes are answered here.
 */
export function createApprovalsApi(options: ApprovalsApiOptions) {
  const basePath = (options.basePath ?? DEFAULT_BASE_PATH).replace(/\/$/, '');
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const route = parseRoute(request, basePath);
    const caller = await options.authenticate(request, ACCESS);
    const approver = authorizeCaller(caller, options.approvers);
    try {
      if (route.kind === 'list') {
        const approvals = await options.approvals.list(route.status);
        return sendJson(response, 200, { approvals: approvals.map(toApprovalView) }, NO_STORE);
      }
      if (route.kind === 'get') {
        const approval = await options.approvals.get(route.id);
        if (approval === undefined) throw notFound(route.id);
        return sendJson(response, 200, { approval: toApprovalView(approval) }, NO_STORE);
      }
      const reason = parseReason(await readJsonBody(request, MAX_BODY_BYTES), route.verdict);
      if (approver === undefined) {
        throw new WardenError(
          'WARDEN_FORBIDDEN',
          `${caller.user ?? 'This caller'} is not a configured approver (approvals.approvers).`,
        );
      }
      const decided = await options.approvals.decide(route.id, approver, route.verdict, reason);
      return sendJson(response, 200, { approval: toApprovalView(decided) }, NO_STORE);
    } catch (error) {
      throw error instanceof ApprovalError ? toWardenError(error) : error;
    }
  };
}

type Route =
  | { readonly kind: 'list'; readonly status: ApprovalStatus | undefined }
  | { readonly kind: 'get'; readonly id: string }
  | { readonly kind: 'decide'; readonly id: string; readonly verdict: 'approve' | 'deny' };

function parseRoute(request: IncomingMessage, basePath: string): Route {
  const url = new URL(request.url ?? '/', 'http://admin.invalid');
  const rest = url.pathname.startsWith(basePath) ? url.pathname.slice(basePath.length) : '?';
  const parts = rest.split('/').filter((part) => part !== '');
  if ((rest !== '' && !rest.startsWith('/')) || parts.length > 2) {
    throw new WardenError('WARDEN_NOT_FOUND');
  }
  const [encodedId, action] = parts;
  const method = request.method ?? 'GET';
  if (encodedId === undefined || action === undefined) {
    if (method !== 'GET') {
      throw new WardenError('WARDEN_METHOD_NOT_ALLOWED', undefined, { details: { allow: 'GET' } });
    }
    if (encodedId === undefined) {
      const status = url.searchParams.get('status') ?? undefined;
      if (status !== undefined && !APPROVAL_STATUSES.includes(status as ApprovalStatus)) {
        throw new WardenError(
          'WARDEN_INVALID_MESSAGE',
          `status must be one of ${APPROVAL_STATUSES.join(', ')}.`,
        );
      }
      return { kind: 'list', status: status as ApprovalStatus | undefined };
    }
    return { kind: 'get', id: decodeId(encodedId) };
  }
  if (action !== 'approve' && action !== 'deny') throw new WardenError('WARDEN_NOT_FOUND');
  if (method !== 'POST') {
    throw new WardenError('WARDEN_METHOD_NOT_ALLOWED', undefined, { details: { allow: 'POST' } });
  }
  return { kind: 'decide', id: decodeId(encodedId), verdict: action };
}

function decodeId(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new WardenError('WARDEN_NOT_FOUND');
  }
}

/**
 * The admin-surface check every route shares, and the approver the caller decides as (undefined
 * when the token's user is not in the approver registry: such a caller may only read, and only
 * with the admin role).
 */
function authorizeCaller(
  caller: Identity,
  approvers: ApprovalsConfig['approvers'],
): { user: string; roles: readonly string[]; via: readonly string[] } | undefined {
  requireAccess(caller, ACCESS);
  const isAdmin = caller.roles.includes(ADMIN_ROLE);
  const entry = caller.user === undefined ? undefined : approvers.get(caller.user);
  if (entry === undefined) {
    if (isAdmin) return undefined;
    throw new WardenError(
      'WARDEN_FORBIDDEN',
      caller.user === undefined
        ? 'The approvals API needs a token issued for a user (sub).'
        : `${caller.user} is not a configured approver (approvals.approvers).`,
    );
  }
  return {
    user: entry.user,
    roles: entry.roles,
    // The requesting agent must never decide its own call, whichever user's token it holds.
    via: [caller.agent, ...caller.delegation],
  };
}

function parseReason(value: unknown, verdict: 'approve' | 'deny'): string {
  if (value === undefined) value = {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WardenError('WARDEN_INVALID_MESSAGE', 'Send a JSON object { reason }.');
  }
  const reason = (value as Record<string, unknown>)['reason'] ?? '';
  if (typeof reason !== 'string' || reason.length > MAX_REASON_LENGTH) {
    throw new WardenError(
      'WARDEN_INVALID_MESSAGE',
      `reason must be a string of up to ${MAX_REASON_LENGTH} characters.`,
    );
  }
  if (verdict === 'deny' && reason.trim() === '') {
    throw new WardenError('WARDEN_INVALID_MESSAGE', 'A denial needs a reason.');
  }
  return reason.trim();
}

/** The wire error for a refusal by the approval rules; the message says what to do. */
export function toWardenError(error: ApprovalError): WardenError {
  const details = { approvalId: error.approvalId, reason: error.code };
  switch (error.code) {
    case 'APPROVAL_NOT_FOUND':
      return notFound(error.approvalId);
    case 'APPROVAL_SELF_APPROVAL':
    case 'APPROVAL_NOT_AN_APPROVER':
    case 'APPROVAL_CLI_DECISIONS_OFF': // not from here: the API's approver is authenticated
      return new WardenError('WARDEN_FORBIDDEN', error.message, { details });
    case 'APPROVAL_ALREADY_DECIDED':
    case 'APPROVAL_ALREADY_VOTED':
    case 'APPROVAL_EXPIRED':
      return new WardenError('WARDEN_APPROVAL_ALREADY_DECIDED', error.message, {
        details,
      });
  }
}

function notFound(id: string): WardenError {
  return new WardenError('WARDEN_NOT_FOUND', 'No approval request has this id.', {
    details: { approvalId: id },
  });
}
