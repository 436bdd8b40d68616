/**
 * A grant whose `approvers:` names a role no approver holds holds its calls until they expire:
 * nobody can ever answer. Checked once approvers are configured at all (a config without any
 * approvers may still be filling them in from another file or a later change).
 */
import type { ApproverConfig } from './approvals-schema.js';
import { suggestName } from './closest-name.js';
import type { GrantConfig } from './policy-config.js';

export function checkApproverRoles(
  grants: readonly GrantConfig[],
  approvers: ReadonlyMap<string, ApproverConfig>,
  issues: string[],
): void {
  if (approvers.size === 0) return;
  const held = new Set([...approvers.values()].flatMap((approver) => approver.roles));
  for (const grant of grants) {
    if (!grant.requiresApproval) continue;
    const answerable = grant.approvers.some((role) => held.has(role));
    if (answerable) continue;
    const named = grant.approvers.map((role) => `"${role}"`).join(', ');
    const suggestion =
      grant.approvers.length === 1 ? suggestName(grant.approvers[0] ?? '', held) : '';
    issues.push(
      `${grant.keyPath}.approvers: no approver holds ${named}${suggestion === '' ? ',' : suggestion} so nobody could approve its calls (roles held under approvals.approvers: ${[...held].join(', ')})`,
    );
  }
}
