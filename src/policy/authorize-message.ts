/**
 * Stage 3 of the pipeline: the decision on one classified call, before the upstream sees it.
 *
 *   tool call        pinned definition → the tool's own inputSchema → Cedar (call_tool) → quotas
 *                    (authorize-tool-call.ts; checked here, charged once the decision is recorded)
 *   resource read    Cedar (read_resource); subscriptions, prompts/get and completions the same
 *                    way (authorize-named-target.ts)
 *   listing          forwarded, and the answer filtered to what the caller may use
 *                    (filter-listing.ts)
 *   malformed        refused (WARDEN_ARGUMENTS_INVALID): a call that does not say what it uses
 *   plumbing         initialize, ping, …: allowed, and recorded as such
 */
import type { PolicyConfig } from '../config/policy-config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import type { Decision } from '../domain/decision.js';
import type { Identity } from '../domain/identity.js';
import type { McpCall, ToolCall } from '../domain/mcp-call.js';
import type { Store } from '../store/types.js';
import { refuse, type Authorization } from './authorization.js';
import { authorizeNamedTarget } from './authorize-named-target.js';
import { authorizeToolCall, type ToolCallSources } from './authorize-tool-call.js';
import { authorizeListing } from './filter-listing.js';
import type { InputSchemaChecker } from './input-schema-check.js';
import type { PolicyEngine } from './policy-engine.js';
import type { PolicyInputs } from './policy-inputs.js';
import { createQuotaLedger } from './quota-ledger.js';
import type { ToolCatalog } from './tool-catalog.js';

export type { Authorization, QuotaClaim } from './authorization.js';

export interface MessageAuthorizer {
  /**
   * Decides one call. `listTools` lets a call to a tool never seen listed be checked against
   * the upstream's current definition (fetched on the caller's own session). An allowed tool
   * call's quotas are claimed, not charged (`Authorization.quotas`).
   */
  authorize(
    call: McpCall,
    identity: Identity,
    upstream: string,
    listTools?: () => Promise<unknown[]>,
  ): Promise<Authorization>;
  /**
   * Decides a held call again at the moment it is released, with the policy, policy states,
   * break-glass grants, tool definition and quotas in force now (the run-time inputs are re-read
   * from the store first, not taken from the last poll). Quotas are only checked: the held
   * call's own claim is charged at its release.
   */
  reauthorize(call: ToolCall, identity: Identity, upstream: string): Promise<Authorization>;
}

export interface MessageAuthorizerOptions {
  /** The policy in force: both change together when a reload succeeds. */
  readonly engine: () => PolicyEngine;
  readonly policy: () => PolicyConfig;
  readonly inputs: PolicyInputs;
  readonly catalog: ToolCatalog;
  readonly schemaChecker: InputSchemaChecker;
  readonly store: Pick<Store, 'quotas'>;
  readonly now: () => number;
  /** breakglass.used records. */
  readonly record: (entry: AuditEntry) => Promise<void>;
  readonly alert: (message: string, details: Record<string, unknown>) => void;
}

const PROTOCOL: Decision = {
  effect: 'allow',
  reasons: ['protocol message: no tool, resource or prompt is used'],
  policies: [],
};

export function createMessageAuthorizer(options: MessageAuthorizerOptions): MessageAuthorizer {
  const sources: ToolCallSources = {
    engine: options.engine,
    inputs: options.inputs,
    now: options.now,
    catalog: options.catalog,
    schemaChecker: options.schemaChecker,
    quotas: createQuotaLedger({
      quotas: () => options.policy().quotas,
      store: options.store,
      now: options.now,
    }),
    record: options.record,
    alert: options.alert,
  };
  return {
    async authorize(call, identity, upstream, listTools) {
      switch (call.kind) {
        case 'tool_call':
          return authorizeToolCall(sources, call, identity, upstream, {
            listTools,
            quotas: 'claim',
          });
        case 'listing':
          return authorizeListing(sources, call, identity, upstream);
        case 'resource_read':
        case 'subscription':
        case 'prompt_get':
        case 'completion':
          return authorizeNamedTarget(sources, call, identity, upstream);
        case 'malformed':
          return refuse('WARDEN_ARGUMENTS_INVALID', [call.problem]);
        case 'plumbing':
        case 'cancellation':
          return { decision: PROTOCOL };
      }
    },
    async reauthorize(call, identity, upstream) {
      await options.inputs.refresh();
      return authorizeToolCall(sources, call, identity, upstream, { quotas: 'check' });
    },
  };
}
