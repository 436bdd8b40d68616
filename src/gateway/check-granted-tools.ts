/**
 * Connects to every configured upstream, lists its tools, and finds the grants naming tools it
 * does not list: what `warden policy validate --live` reports before anyone calls. Each upstream
 * is listed on a session of Warden's own, through the same transports the gateway uses.
 */
import type { Config, UpstreamConfig } from '../config/config.js';
import { listToolsOnce } from '../mcp/list-tools-once.js';
import { createHttpUpstream } from '../mcp/upstream/http-upstream.js';
import { createStdioUpstream } from '../mcp/upstream/stdio-upstream.js';
import type { UpstreamConnector } from '../mcp/upstream/types.js';
import { findUnlistedGrants, type UnlistedGrant } from '../policy/find-unlisted-grants.js';
import { readToolDefinitions } from '../policy/tool-definition.js';

/** One upstream's listing: how many tools it has, or why they could not be listed. */
export type UpstreamListing =
  | { readonly upstream: string; readonly tools: number }
  | { readonly upstream: string; readonly error: unknown };

export interface GrantedToolsCheck {
  readonly listings: readonly UpstreamListing[];
  readonly unlisted: readonly UnlistedGrant[];
}

/** Lists the upstreams one after another (a stdio upstream is a child process each). */
export async function checkGrantedTools(config: Config): Promise<GrantedToolsCheck> {
  const listings: UpstreamListing[] = [];
  const unlisted: UnlistedGrant[] = [];
  for (const upstream of config.upstreams.values()) {
    const connector = connectTo(upstream, config.limits.reclaimIdleAfterMs);
    try {
      const names = readToolDefinitions({ tools: await listToolsOnce(connector) }).map(
        (tool) => tool.name,
      );
      listings.push({ upstream: upstream.name, tools: names.length });
      unlisted.push(...findUnlistedGrants(config.policy, upstream.name, new Set(names)));
    } catch (error) {
      listings.push({ upstream: upstream.name, error });
    } finally {
      await connector.close();
    }
  }
  return { listings, unlisted };
}

function connectTo(upstream: UpstreamConfig, reclaimIdleAfterMs: number): UpstreamConnector {
  // A check has no log: a child's stderr and restarts are the gateway's business, not the CLI's.
  const quiet = { warn: () => undefined, debug: () => undefined };
  return upstream.kind === 'http'
    ? createHttpUpstream(upstream)
    : createStdioUpstream(upstream, quiet, { reclaimIdleAfterMs });
}
