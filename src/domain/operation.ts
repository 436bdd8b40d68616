/**
 * What every operator operation (revoke a credential, rotate keys, grant break-glass, set a policy
 * state, approve a tool definition) is given besides the repositories it writes: the shell that
 * calls it (CLI, admin API) chooses where its audit record goes and which clock it reads.
 */
import type { AuditEntry } from './audit-record.js';

export interface OperationContext {
  /** The deployment's environment, recorded on every audit record. */
  readonly environment: string;
  readonly now: () => number;
  /**
   * Appends the operation's audit record durably; the operation fails when it cannot (the change
   * it made stays, and the operator sees the failure).
   */
  readonly record: (entry: AuditEntry) => Promise<void>;
}
