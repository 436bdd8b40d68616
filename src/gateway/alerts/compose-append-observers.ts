/** One audit-append observer that tells each given one in turn; an observer that throws is skipped. */
import type { AuditAppendObserver } from '../audit-log.js';

export function composeAppendObservers(
  ...observers: readonly (AuditAppendObserver | undefined)[]
): AuditAppendObserver | undefined {
  const present = observers.filter((observer) => observer !== undefined);
  if (present.length <= 1) return present[0];
  return (records, latencyMs) => {
    for (const observer of present) {
      try {
        observer(records, latencyMs);
      } catch {
        // Watching the log must never fail a record, nor keep the other observers from it.
      }
    }
  };
}
