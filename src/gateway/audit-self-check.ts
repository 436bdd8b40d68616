/**
 * The gateway re-verifies the audit log in the store now and then (audit.verify_every): every
 * stream's chain and signed checkpoints against the key this gateway signs with, and the witness
 * file when there is one. A rewrite of the database is found while the gateway runs, not only
 * when an auditor next runs `warden audit verify`. A failure is recorded (and so raises the
 * verification_failure alert rules); a success records nothing, to keep the log about decisions.
 */
import { verifyAuditStore, type StoreVerifyReport } from '../audit/verify-audit-store.js';
import type { AuditEntry } from '../domain/audit-record.js';
import type { Logger } from './logger.js';

/** A record carries at most this many problems: enough to start, bounded whatever the damage. */
const MAX_PROBLEMS = 10;

export interface AuditSelfCheckOptions {
  readonly repository: Parameters<typeof verifyAuditStore>[0];
  /** The key checkpoints are verified with: the one this gateway signs with. */
  readonly publicKeyPem: string;
  readonly witnessPath: string | undefined;
  readonly everyMs: number;
  readonly note: (entry: Omit<AuditEntry, 'time'>) => void;
  readonly logger: Logger;
}

export interface AuditSelfCheck {
  /** Runs one verification now (tests, and the timer). Never rejects. */
  runOnce(): Promise<StoreVerifyReport | undefined>;
  close(): Promise<void>;
}

export function startAuditSelfCheck(options: AuditSelfCheckOptions): AuditSelfCheck {
  let running: Promise<StoreVerifyReport | undefined> | undefined;
  const runOnce = (): Promise<StoreVerifyReport | undefined> => {
    // One verification at a time: a slow one is not stacked on by the next tick.
    running ??= verifyOnce(options).finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => void runOnce(), options.everyMs);
  timer.unref();
  return {
    runOnce,
    close: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

async function verifyOnce(options: AuditSelfCheckOptions): Promise<StoreVerifyReport | undefined> {
  try {
    const report = await verifyAuditStore(options.repository, {
      trustedPublicKeyPem: options.publicKeyPem,
      ...(options.witnessPath !== undefined && { witnessPath: options.witnessPath }),
    });
    if (!report.ok) {
      const problems = describeProblems(report);
      options.logger.error(
        { alert: 'audit_verification_failed', problems },
        'the audit log in the store no longer verifies',
      );
      options.note({
        event: 'audit.verification_failed',
        details: { recordsChecked: report.recordsChecked, problems },
      });
    }
    return report;
  } catch (error) {
    // The store unreadable is the audit_unavailable alert's business, not a verification result.
    options.logger.warn({ err: error }, 'audit self-check could not run');
    return undefined;
  }
}

function describeProblems(report: StoreVerifyReport): string[] {
  const problems: string[] = [];
  if (report.keyProblem !== undefined) problems.push(report.keyProblem);
  for (const stream of report.streams) {
    if (stream.problem !== undefined) {
      problems.push(
        `stream ${stream.stream} at seq ${stream.problem.seq}: ${stream.problem.detail}`,
      );
    }
  }
  for (const problem of report.witness?.problems ?? []) {
    problems.push(`witness: ${problem.detail}`);
  }
  return problems.slice(0, MAX_PROBLEMS);
}
