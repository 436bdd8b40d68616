/**
 * An approval request as approvers see it (admin API, CLI `--json`, webhooks): times as ISO 8601,
 * the full arguments as JSON rather than canonical text, and the commands that decide it.
 */
import type { ApprovalRequest, ApprovalStatus } from '../store/types.js';

export type { ApprovalRequest, ApprovalStatus };

/** Every status a request can be in, for filters. */
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = [
  'pending',
  'granted',
  'refused',
  'expired',
  'withdrawn',
  'invalidated',
];

export interface ApprovalView {
  readonly id: string;
  readonly requestId: string;
  readonly status: ApprovalStatus;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly decidedAt: string | null;
  readonly consumedAt: string | null;
  readonly user: string | null;
  readonly agent: string;
  readonly roles: readonly string[];
  readonly model: string | null;
  readonly upstream: string;
  readonly tool: string;
  /** The full, unredacted arguments: what the approver approves. */
  readonly arguments: unknown;
  readonly argumentsHash: string;
  readonly toolDefinitionHash: string | null;
  readonly policyVersion: string;
  readonly grants: readonly string[];
  readonly scopes: readonly string[];
  readonly approverRoles: readonly string[];
  readonly approvalsRequired: number;
  readonly votes: readonly {
    readonly approver: string;
    readonly decision: 'approve' | 'deny';
    readonly reason: string;
    readonly at: string;
  }[];
}

export function toApprovalView(request: ApprovalRequest): ApprovalView {
  return {
    id: request.id,
    requestId: request.requestId,
    status: request.status,
    createdAt: isoTime(request.createdAt),
    expiresAt: isoTime(request.expiresAt),
    decidedAt: request.decidedAt === undefined ? null : isoTime(request.decidedAt),
    consumedAt: request.consumedAt === undefined ? null : isoTime(request.consumedAt),
    user: request.user ?? null,
    agent: request.agent,
    roles: request.roles,
    model: request.model ?? null,
    upstream: request.upstream,
    tool: request.tool,
    arguments: parseArguments(request.arguments),
    argumentsHash: request.argumentsHash,
    toolDefinitionHash: request.toolDefinitionHash ?? null,
    policyVersion: request.policyVersion,
    grants: request.grants,
    scopes: request.scopes,
    approverRoles: request.approverRoles,
    approvalsRequired: request.approvalsRequired,
    votes: request.votes.map((vote) => ({ ...vote, at: isoTime(vote.at) })),
  };
}

/** The stored canonical text back as JSON; text that does not parse is shown as it is. */
export function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The CLI commands that decide a request, for notifications. */
export function approvalCommands(id: string): { approve: string; deny: string } {
  return {
    approve: `warden approvals approve ${id} --as <your user id>`,
    deny: `warden approvals deny ${id} --as <your user id> --reason "…"`,
  };
}

/** The approvers who voted to approve, each once, in voting order. */
export function approvingVoters(request: ApprovalRequest): string[] {
  return [
    ...new Set(
      request.votes.filter((vote) => vote.decision === 'approve').map((vote) => vote.approver),
    ),
  ];
}

export function isoTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}
