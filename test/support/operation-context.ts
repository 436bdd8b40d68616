/** An OperationContext for unit tests of the operations: a frozen clock, records kept in order. */
import type { AuditEntry } from '../../src/domain/audit-record.js';
import type { OperationContext } from '../../src/domain/operation.js';

export function recordingContext(
  now: number,
  environment = 'production',
): OperationContext & { readonly records: AuditEntry[] } {
  const records: AuditEntry[] = [];
  return {
    environment,
    now: () => now,
    record: async (entry) => {
      records.push(entry);
    },
    records,
  };
}
