/**
 * The `fetch` oidc-provider uses for documents that clients name (Client ID Metadata Documents,
 * and the jwks_uri of registered clients): every request goes through Warden's SSRF-safe
 * dispatcher (no loopback, private or link-local addresses unless configured, checked at connect
 * time), with its size and time limits, and no redirects followed.
 */
import type { Dispatcher } from 'undici';
import { safeFetch } from '../../http/safe-fetch.js';

export interface ClientMetadataFetchOptions {
  readonly dispatcher: Dispatcher;
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

/** A fetch-compatible function for oidc-provider's `fetch` configuration. */
export function createClientMetadataFetch(
  options: ClientMetadataFetchOptions,
): (url: string | URL, init?: { readonly method?: string }) => Promise<Response> {
  return async (url, init) => {
    // oidc-provider only reads documents; anything else is not this function's to send.
    if (init?.method !== undefined && init.method !== 'GET')
      throw new TypeError(`refusing to send ${init.method} to a client-named URL`);
    const fetched = await safeFetch(String(url), {
      dispatcher: options.dispatcher,
      maxBytes: options.maxBytes,
      timeoutMs: options.timeoutMs,
    });
    // A null-body status (204, 304) cannot carry one in a Response.
    const empty = fetched.status === 204 || fetched.status === 304;
    return new Response(empty ? null : new Uint8Array(fetched.body), {
      status: fetched.status,
      headers: fetched.headers,
    });
  };
}
