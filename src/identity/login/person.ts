/**
 * A person who logged in (or whom an enterprise IdP vouched for), as the authorization server
 * sees them: the user id tokens carry as `sub`, and the roles they hold in Warden.
 */
import type { ClaimMappingConfig } from '../../config/login-schema.js';

export interface Person {
  /** Warden's user id: the token's `sub`, the audit log's user. */
  readonly id: string;
  readonly name: string | undefined;
  readonly email: string | undefined;
  /** Roles the person holds in Warden (from the config or mapped from their groups). */
  readonly roles: readonly string[];
  /** How they proved who they are. */
  readonly via: 'builtin' | 'oidc' | 'id-jag';
}

/**
 * The roles an app acting for a person holds: only those both the person and the app's agent
 * hold, so neither a person nor an app gains a role through the other.
 */
export function actingRoles(
  personRoles: readonly string[],
  agentRoles: readonly string[],
): readonly string[] {
  const agent = new Set(agentRoles);
  return Object.freeze([...new Set(personRoles)].filter((role) => agent.has(role)));
}

/** The roles mapped from an identity provider's groups claim (unknown groups map to none). */
export function rolesFromGroups(
  claims: Readonly<Record<string, unknown>>,
  mapping: ClaimMappingConfig,
): readonly string[] {
  const groups = claims[mapping.groupsClaim];
  const list = Array.isArray(groups) ? groups : typeof groups === 'string' ? [groups] : [];
  const roles = new Set<string>();
  for (const group of list) {
    if (typeof group !== 'string') continue;
    for (const role of mapping.rolesByGroup.get(group) ?? []) roles.add(role);
  }
  return Object.freeze([...roles]);
}

/**
 * The user id a claim set names, if the configured claim is a plain non-empty string. One with
 * white space around it, control or invisible characters, or not in NFC is none: it would pass
 * for another person's id in the audit log and escape a revocation naming that id.
 */
export function userIdFromClaims(
  claims: Readonly<Record<string, unknown>>,
  mapping: ClaimMappingConfig,
): string | undefined {
  const value = claims[mapping.userClaim];
  return typeof value === 'string' && isPlainUserId(value) ? value : undefined;
}

function isPlainUserId(value: string): boolean {
  return (
    value !== '' &&
    value === value.trim() &&
    !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(value) &&
    value === value.normalize('NFC')
  );
}
