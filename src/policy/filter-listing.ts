/**
 * Listings are forwarded, and the answer is filtered to what the caller may use (least exposure):
 * an agent never sees a tool it cannot call, nor a resource or prompt it cannot read or get.
 */
import type { Identity } from '../domain/identity.js';
import type { JsonRpcResponse } from '../domain/jsonrpc.js';
import type { Listing } from '../domain/mcp-call.js';
import type { Authorization } from './authorization.js';
import type { PolicyAction } from './cedar-schema.js';
import { decideAction, type DecisionSources } from './decide-action.js';
import type { ToolCatalog } from './tool-catalog.js';
import { readToolDefinitions } from './tool-definition.js';

type ListingResult = Record<string, unknown>;

/** Where each listing keeps its entries, what names an entry, and what using one is. */
const ENTRIES = {
  resources: { key: 'resources', field: 'uri', action: 'read_resource' },
  resource_templates: { key: 'resourceTemplates', field: 'uriTemplate', action: 'read_resource' },
  prompts: { key: 'prompts', field: 'name', action: 'get_prompt' },
} as const satisfies Record<
  Exclude<Listing['of'], 'tools'>,
  { key: string; field: string; action: PolicyAction }
>;

/** Allows the listing; its answer is filtered for `identity` on the way back. */
export function authorizeListing(
  sources: DecisionSources & { readonly catalog: ToolCatalog },
  listing: Listing,
  identity: Identity,
  upstream: string,
): Authorization {
  const may = (action: PolicyAction, name: string) =>
    decideAction(sources, action, identity, { upstream, name }).effect !== 'deny';
  if (listing.of === 'tools') {
    return filtered(async (result) => {
      const statuses = await sources.catalog.observe(upstream, readToolDefinitions(result), {
        complete: listing.cursor === undefined && !hasNextPage(result),
      });
      return {
        ...result,
        tools: entriesOf(result, 'tools').filter((tool) => {
          const name = (tool as { name?: unknown } | null)?.name;
          if (typeof name !== 'string') return false;
          if (statuses.get(name)?.status !== 'approved') return false;
          return may('list_tools', name);
        }),
      };
    });
  }
  const { key, field, action } = ENTRIES[listing.of];
  return filtered(async (result) => ({
    ...result,
    [key]: entriesOf(result, key).filter((entry) => {
      const value = (entry as Record<string, unknown> | null)?.[field];
      return typeof value === 'string' && may(action, value);
    }),
  }));
}

function filtered(filter: (result: ListingResult) => Promise<ListingResult>): Authorization {
  return {
    decision: {
      effect: 'allow',
      reasons: ['listing: the answer is filtered to what the caller may use'],
      policies: [],
    },
    rewrite: async (response: JsonRpcResponse) => {
      if (
        !('result' in response) ||
        response.result === null ||
        typeof response.result !== 'object'
      ) {
        return response;
      }
      return { ...response, result: await filter(response.result) };
    },
  };
}

function hasNextPage(result: ListingResult): boolean {
  const next = result['nextCursor'];
  return typeof next === 'string' && next !== '';
}

function entriesOf(result: ListingResult, key: string): unknown[] {
  const entries = result[key];
  return Array.isArray(entries) ? (entries as unknown[]) : [];
}
