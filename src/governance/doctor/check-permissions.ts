/**
 * The seed's "permanent broad permissions": wildcard grants, grants that never end, a long
 * break-glass cap, and monitor-mode roles (the pilot's "decide but let through") in production.
 */
import { isWildcardTarget } from '../../config/policy-config.js';
import type { DoctorInput, Finding } from './finding.js';
import { formatDuration, isProduction } from './judge-paths.js';

/** The default break-glass cap; longer is an emergency permission that outlives the emergency. */
const LONGEST_BREAKGLASS_MS = 4 * 3_600_000;
/** At most this many key paths are named in one finding; the rest are counted. */
const NAMED_PATHS = 5;

export function checkPermissions({ config }: DoctorInput): Finding[] {
  const findings: Finding[] = [];
  const { roles, grants } = config.policy;
  for (const grant of grants) {
    if (roles.get(grant.role)?.trusted === true && isWildcardTarget(grant.target)) {
      findings.push({
        id: 'permissions.trusted-wildcard',
        stage: 'hardening',
        severity: 'warning',
        problem: `trusted role ${grant.role} holds a wildcard grant: every tool the upstream adds later is granted too`,
        where: grant.keyPath,
        fix: 'grant the tools by name; keep wildcards for a short-lived, expiring grant',
      });
    }
  }
  for (const role of roles.values()) {
    if (role.mode !== 'monitor') continue;
    findings.push({
      id: 'permissions.monitor-role',
      stage: 'hardening',
      severity: isProduction(config) ? 'error' : 'warning',
      problem: `role ${role.name} is in monitor mode: its denied calls are only marked, and go through`,
      where: `roles.${role.name}.mode`,
      fix: 'switch it to mode: enforce once the recorded would-be denials are understood',
    });
  }
  const unbounded = grants.filter((grant) => grant.expiresAt === undefined);
  if (unbounded.length > 0) {
    findings.push({
      id: 'permissions.grants-without-expiry',
      stage: 'governed',
      severity: 'warning',
      problem: `${unbounded.length} of ${grants.length} grants never expire: nothing forces their periodic review`,
      where: namePaths(unbounded.map((grant) => grant.keyPath)),
      fix: 'give each grant expires: (and an owner:) so it is reviewed before it runs out',
    });
  }
  const ownerless = grants.filter((grant) => grant.owner === undefined);
  if (ownerless.length > 0) {
    findings.push({
      id: 'permissions.grants-without-owner',
      stage: 'governed',
      severity: 'info',
      problem: `${ownerless.length} of ${grants.length} grants name no owner: an access review has no one to ask`,
      where: namePaths(ownerless.map((grant) => grant.keyPath)),
      fix: 'set owner: (the person answerable for the grant) on each grant',
    });
  }
  if (config.policy.breakglassMaxTtlMs > LONGEST_BREAKGLASS_MS) {
    findings.push({
      id: 'permissions.long-breakglass-cap',
      stage: 'hardening',
      severity: 'warning',
      problem: `break-glass grants may last ${formatDuration(config.policy.breakglassMaxTtlMs)}: emergency permissions outlive the emergency`,
      where: 'policy.breakglass_max_ttl',
      fix: 'cap them at 4h (the default) and grant again if the emergency lasts',
    });
  }
  return findings;
}

function namePaths(paths: readonly string[]): string {
  const named = paths.slice(0, NAMED_PATHS).join(', ');
  return paths.length > NAMED_PATHS ? `${named} and ${paths.length - NAMED_PATHS} more` : named;
}
