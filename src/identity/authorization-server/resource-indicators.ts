/**
 * RFC 8707 resource indicators at the authorization server: a token is for the gateway as a
 * whole (`auth.resource`) or for one configured upstream's endpoint (`<auth.resource>/<name>`);
 * anything else is `invalid_target`.
 */
import { endpointResource } from '../protected-resource-metadata.js';
import type { AuthConfig } from '../../config/config.js';

/** The resource indicators tokens may be issued for, given the upstreams configured now. */
export function servedResources(
  auth: AuthConfig,
  upstreams: Iterable<string>,
): ReadonlySet<string> {
  const served = new Set([auth.resource]);
  for (const upstream of upstreams) served.add(endpointResource(auth, upstream));
  return served;
}

/** The audience for a requested resource indicator, or undefined when it is not served here. */
export function audienceFor(
  resource: string,
  auth: AuthConfig,
  upstreams: Iterable<string>,
): string | undefined {
  return servedResources(auth, upstreams).has(resource) ? resource : undefined;
}
