/**
 * Errors raised by the audit core. They are local errors, like StoreError: the gateway maps an
 * AuditUnavailableError to a wire error that refuses the call (fail closed), never forwarding
 * the cause (SQL, paths) to a client.
 */
import { LocalError } from '../domain/errors.js';

/** Stable codes of every AuditError; callers branch on these, never on messages. */
export const AUDIT_ERROR_CODES = [
  /** The audit store did not durably take the record; the call it describes must be refused. */
  'AUDIT_UNAVAILABLE',
  /** The audit chain was used after close(). */
  'AUDIT_CLOSED',
  /** The entry cannot be recorded as given (unknown event, a value JSON cannot carry). */
  'AUDIT_INVALID_ENTRY',
  /** The audit signing key is missing, malformed, not Ed25519, or its halves do not match. */
  'AUDIT_KEY_INVALID',
  /** An export file is not a Warden audit export, or a line of it is not valid JSON. */
  'AUDIT_EXPORT_INVALID',
  /** A checkpoint could not be published to a witness (file or webhook); the chain goes on. */
  'AUDIT_WITNESS_FAILED',
  /** A witness file cannot be read. */
  'AUDIT_WITNESS_INVALID',
] as const;

export type AuditErrorCode = (typeof AUDIT_ERROR_CODES)[number];

export class AuditError extends LocalError {
  declare readonly code: AuditErrorCode;

  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AuditError';
  }
}

/** The record was not committed; every caller of the failed batch receives one of these. */
export class AuditUnavailableError extends AuditError {
  override readonly code = 'AUDIT_UNAVAILABLE' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super('AUDIT_UNAVAILABLE', message, options);
    this.name = 'AuditUnavailableError';
  }
}
