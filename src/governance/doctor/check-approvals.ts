/**
 * Operational hardening, "approval routing": some grant asks a person, requests are announced,
 * and the seed's "skipping approval records": a gated grant with no approval in the window.
 */
import type { DoctorInput, Finding } from './finding.js';

export function checkApprovals({ config, store, windowDays, now }: DoctorInput): Finding[] {
  const findings: Finding[] = [];
  const gated = config.policy.grants.filter((grant) => grant.requiresApproval);
  if (gated.length === 0) {
    findings.push({
      id: 'approvals.none-gated',
      stage: 'hardening',
      severity: 'warning',
      problem:
        'no grant requires a human approval: every allowed call, however sensitive, runs at once',
      where: 'roles.*.grants.*.requires_approval',
      fix: 'set requires_approval: true on the grants that move money, delete or change records',
    });
    return findings;
  }
  if (config.approvals.webhooks.length === 0) {
    findings.push({
      id: 'approvals.not-announced',
      stage: 'hardening',
      severity: 'warning',
      problem:
        'approval requests are announced nowhere: held calls wait until someone happens to look',
      where: 'approvals.webhooks',
      fix: 'add approvals.webhooks (a chat or ticketing hook) so approvers are told at once',
    });
  }
  if (store === undefined) return findings;
  const since = now - windowDays * 86_400_000;
  for (const grant of gated) {
    const tool =
      grant.target.kind === 'tool' ? `${grant.target.upstream}.${grant.target.name}` : '';
    const asked = store.approvals.some(
      (approval) =>
        approval.createdAt >= since &&
        (approval.grants.includes(grant.id) || (tool !== '' && approval.tool === tool)),
    );
    if (asked) continue;
    findings.push({
      id: 'approvals.gated-without-records',
      stage: 'hardening',
      severity: 'warning',
      problem: `grant ${grant.id} requires approval but no approval request was recorded in the last ${windowDays} days: either it is unused (revoke it) or its calls bypass the gate`,
      where: `${grant.keyPath}.requires_approval`,
      fix: 'check with warden audit query that its calls are held; remove the grant if nobody uses it',
    });
  }
  return findings;
}
