/** Who owns a session or a parked call: the agent, the user it acts for, and the tenant. */
import type { Identity } from '../domain/identity.js';

export function ownerOf(identity: Identity): string {
  return JSON.stringify([identity.agent, identity.user ?? null, identity.tenant ?? null]);
}
