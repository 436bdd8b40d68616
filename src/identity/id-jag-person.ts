/**
 * The person an accepted ID-JAG names, as Warden knows them: the roles mapped from the IdP's
 * groups, plus those configured for a built-in user of the same id.
 */
import type { BuiltinUserConfig } from '../config/login-schema.js';
import type { VerifiedIdJag } from './id-jag.js';
import { rolesFromGroups } from './login/person.js';
import type { Person } from './login/person.js';

export function personFromIdJag(
  grant: VerifiedIdJag,
  builtinUsers: ReadonlyMap<string, BuiltinUserConfig> | undefined,
): Person {
  const { claims, idp, userId } = grant;
  const configured = builtinUsers?.get(userId);
  const roles = new Set([...rolesFromGroups(claims, idp), ...(configured?.roles ?? [])]);
  return Object.freeze({
    id: userId,
    name: stringClaim(claims['name']) ?? configured?.name,
    email: stringClaim(claims['email']) ?? configured?.email,
    roles: Object.freeze([...roles]),
    via: 'id-jag' as const,
  });
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
