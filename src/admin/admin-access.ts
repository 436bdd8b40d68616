/**
 * Who may use the admin API: an agent holding one of a route's roles in the agent registry.
 * The gateway checks it where it authenticates the caller, so a caller without the role is
 * refused and reported as an authentication failure; each API checks it again, so the rule holds
 * whoever serves the API.
 */
import type { IncomingMessage } from 'node:http';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';

/** The role an agent needs in the registry to use the admin API. */
export const ADMIN_ROLE = 'warden_admin';

/** What an admin route asks of its caller. */
export interface AdminAccess {
  /** The API, as its refusal names it ("The admin API"). */
  readonly surface: string;
  /** The caller must hold one of these roles. */
  readonly roles: readonly string[];
}

/**
 * Authenticates an admin API request. Given `access`, an authenticator may refuse a caller
 * without its roles itself (with `requireAccess`); the API checks it again either way.
 */
export type AdminAuthenticator = (
  request: IncomingMessage,
  access?: AdminAccess,
) => Promise<Identity>;

/** Refuses (WARDEN_FORBIDDEN) a caller that holds none of the route's roles. */
export function requireAccess(identity: Identity, access: AdminAccess): void {
  if (access.roles.some((role) => identity.roles.includes(role))) return;
  throw new WardenError(
    'WARDEN_FORBIDDEN',
    `${access.surface} needs the ${access.roles.join(' or ')} role.`,
  );
}
