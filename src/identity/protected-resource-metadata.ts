/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728), which MCP clients read to find the
 * authorization server. The gateway as a whole is one resource (`auth.resource`); each upstream
 * endpoint is also a resource of its own, `${auth.resource}/<upstream>`, so a client may ask for
 * a token valid at one endpoint only.
 */
import type { AuthConfig } from '../config/config.js';

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** The URL where the metadata for `resource` is published (RFC 9728 §3.1). */
export function metadataUrlFor(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}${WELL_KNOWN}${path}`;
}

/** The resource identifier of one upstream's endpoint. */
export function endpointResource(auth: AuthConfig, upstream: string): string {
  return `${auth.resource.replace(/\/$/, '')}/${encodeURIComponent(upstream)}`;
}

/**
 * Maps a request path under /.well-known/oauth-protected-resource to the resource it describes:
 * the gateway's own, or one upstream's. Unknown paths map to nothing (404).
 */
export function resolveMetadataPath(
  auth: AuthConfig,
  requestPath: string,
  upstreams: ReadonlySet<string>,
): string | undefined {
  if (!requestPath.startsWith(WELL_KNOWN)) return undefined;
  const rest = requestPath.slice(WELL_KNOWN.length).replace(/\/$/, '');
  const resourcePath = new URL(auth.resource).pathname.replace(/\/$/, '');
  if (rest === '' || rest === resourcePath) return auth.resource;
  if (rest.startsWith(`${resourcePath}/`)) {
    const upstream = decodeURIComponent(rest.slice(resourcePath.length + 1));
    if (upstreams.has(upstream)) return endpointResource(auth, upstream);
  }
  return undefined;
}

export function describeProtectedResource(
  auth: AuthConfig,
  resource: string,
  options: { readonly mtls: boolean },
): Record<string, unknown> {
  return {
    resource,
    authorization_servers: auth.issuers.map((issuer) => issuer.issuer),
    bearer_methods_supported: ['header'],
    scopes_supported: auth.requiredScopes,
    resource_name: 'Warden MCP gateway',
    tls_client_certificate_bound_access_tokens: options.mtls,
  };
}
