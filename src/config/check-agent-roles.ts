/**
 * An agent holding a role nothing defines would load and then be denied everything, with nothing
 * to say why: every role an agent holds must be declared under `roles:` (or named by a flat
 * grant's `agent_role`), or be one of the admin-surface roles Warden itself checks.
 */
import { suggestName } from './closest-name.js';

/**
 * Roles Warden's own admin surfaces check (src/admin: ADMIN_ROLE, APPROVER_CLIENT_ROLE); held
 * without being declared. A test keeps this list in step with those constants.
 */
export const ADMIN_SURFACE_ROLES: readonly string[] = ['warden_admin', 'warden_approver'];

/** Pushes `agents.<id>.roles: role "x" is not defined; …` for each undeclared role held. */
export function checkAgentRoles(
  agents: ReadonlyMap<string, { readonly roles: readonly string[] }>,
  definedRoles: ReadonlySet<string>,
  issues: string[],
): void {
  const known = [...definedRoles, ...ADMIN_SURFACE_ROLES];
  const listed = definedRoles.size === 0 ? 'none' : [...definedRoles].join(', ');
  for (const [id, agent] of agents) {
    for (const role of agent.roles) {
      if (known.includes(role)) continue;
      const suggestion = suggestName(role, known);
      issues.push(
        `agents.${id}.roles: role "${role}" is not defined${suggestion === '' ? '.' : suggestion} Defined roles: ${listed}. Fix the name, or declare the role under roles: (${role}: { grants: [...] })`,
      );
    }
  }
}
