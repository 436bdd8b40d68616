/**
 * Why an approver's decision was not taken. Local errors: the admin API maps them to wire errors
 * (src/admin/approvals-api.ts), the CLI to exit code 1. Callers branch on `code`, never on the
 * message; the message is written for the approver and says what to do.
 */
import { LocalError } from '../domain/errors.js';

export const APPROVAL_ERROR_CODES = [
  /** No approval request has this id. */
  'APPROVAL_NOT_FOUND',
  /** The request is no longer pending (granted, refused, expired or withdrawn). */
  'APPROVAL_ALREADY_DECIDED',
  /** The approver is the requesting user, or the requesting agent (also via delegation). */
  'APPROVAL_SELF_APPROVAL',
  /** The approver holds none of the roles the request accepts. */
  'APPROVAL_NOT_AN_APPROVER',
  /** This approver has voted on the request already; a second approval needs another person. */
  'APPROVAL_ALREADY_VOTED',
  /** The request timed out before this decision; it is now marked expired. */
  'APPROVAL_EXPIRED',
  /** The approver was named on the command line, and `approvals.cli_decisions` is false. */
  'APPROVAL_CLI_DECISIONS_OFF',
] as const;

export type ApprovalErrorCode = (typeof APPROVAL_ERROR_CODES)[number];

export class ApprovalError extends LocalError {
  declare readonly code: ApprovalErrorCode;
  /** The approval request concerned. */
  readonly approvalId: string;

  constructor(code: ApprovalErrorCode, approvalId: string, message: string) {
    super(code, message);
    this.name = 'ApprovalError';
    this.approvalId = approvalId;
  }
}

/**
 * The gateway is stopping with a call still held: its request stays pending, no longer held by
 * this replica, and the client is told to make the call again (any replica releases it once
 * granted). Not a refusal: the pipeline answers it as a pending result.
 */
export class ApprovalHandedOver extends Error {
  readonly approvalId: string;
  readonly expiresAt: number;

  constructor(approvalId: string, expiresAt: number) {
    super(`approval ${approvalId} was handed over: the gateway holding its call is stopping`);
    this.name = 'ApprovalHandedOver';
    this.approvalId = approvalId;
    this.expiresAt = expiresAt;
  }
}
