/**
 * Tamper evidence against whoever can write the database: a checkpoint key kept in the same store
 * as the log lets them rewrite the chain and re-sign it; without a witness outside the store,
 * nothing remembers the heads they replaced.
 */
import type { DoctorInput, Finding } from './finding.js';

export function checkTamperEvidence({ config }: DoctorInput): Finding[] {
  const findings: Finding[] = [];
  if (config.audit.signingKey === undefined) {
    findings.push({
      id: 'audit.signing-key-in-store',
      stage: 'governed',
      severity: 'warning',
      problem:
        'the audit checkpoint key is kept in the store beside the log: whoever can write the database can rewrite the chain and re-sign it',
      where: 'audit.signing_key',
      fix: 'keep the key outside the store (audit.signing_key: { file } or { env }) and pin its public key where auditors verify',
    });
  }
  const witness = config.audit.witness;
  if (witness === undefined || (witness.file === undefined && witness.webhook === undefined)) {
    findings.push({
      id: 'audit.no-witness',
      stage: 'governed',
      severity: 'warning',
      problem:
        'checkpoints are published nowhere outside the store: a rewritten and re-signed chain cannot be told from the original',
      where: 'audit.witness',
      fix: 'publish checkpoints to an append-only file on another volume and/or a webhook (audit.witness), and verify with warden audit verify --witness',
    });
  }
  if (witness !== undefined && config.audit.verifyEveryMs === undefined) {
    findings.push({
      id: 'audit.not-reverified',
      stage: 'governed',
      severity: 'info',
      problem:
        'the gateway never re-verifies the log against its witness: a rewrite is found only when someone runs warden audit verify',
      where: 'audit.verify_every',
      fix: 'set audit.verify_every (e.g. 1h) and a verification_failure alert rule',
    });
  }
  return findings;
}
