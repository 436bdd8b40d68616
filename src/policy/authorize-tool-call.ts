/**
 * The decision on one tools/call: the pinned definition → the tool's own inputSchema → Cedar
 * (call_tool) → quotas (checked here, charged by the pipeline once the decision is recorded).
 */
import type { AuditEntry } from '../domain/audit-record.js';
import type { Decision } from '../domain/decision.js';
import type { Identity } from '../domain/identity.js';
import type { ToolCall } from '../domain/mcp-call.js';
import { authorizationOf, refuse, type Authorization } from './authorization.js';
import { decideAction, type DecisionSources } from './decide-action.js';
import type { InputSchemaChecker } from './input-schema-check.js';
import type { QuotaLedger } from './quota-ledger.js';
import type { ToolCatalog } from './tool-catalog.js';
import { readToolDefinitions } from './tool-definition.js';

export interface ToolCallSources extends DecisionSources {
  readonly catalog: ToolCatalog;
  readonly schemaChecker: InputSchemaChecker;
  readonly quotas: QuotaLedger;
  /** breakglass.used records. */
  readonly record: (entry: AuditEntry) => Promise<void>;
  readonly alert: (message: string, details: Record<string, unknown>) => void;
}

export interface ToolCallOptions {
  /** Lists the upstream's tools on the caller's session, for a tool never seen listed. */
  readonly listTools?: (() => Promise<unknown[]>) | undefined;
  /**
   * `claim`: an allowed call's quota room is claimed until the pipeline charges it. `check`: the
   * quotas are only checked (a held call decided again at release, which its release charges).
   */
  readonly quotas: 'claim' | 'check';
}

/** Decides a tools/call on `upstream` for `identity`. */
export async function authorizeToolCall(
  sources: ToolCallSources,
  call: ToolCall,
  identity: Identity,
  upstream: string,
  options: ToolCallOptions,
): Promise<Authorization> {
  const { name } = call;
  let known = await sources.catalog.lookup(upstream, name);
  if (known.status === 'unknown' && options.listTools !== undefined) {
    await sources.catalog.observe(
      upstream,
      readToolDefinitions({ tools: await options.listTools() }),
    );
    known = await sources.catalog.lookup(upstream, name);
  }
  if (known.status === 'changed') {
    return refuse('WARDEN_TOOL_DEFINITION_CHANGED', [
      `tool_definition_changed: ${upstream}.${name} changed since it was approved`,
    ]);
  }
  if (known.status === 'unapproved') {
    return refuse('WARDEN_TOOL_NOT_APPROVED', [`tool ${upstream}.${name} is not approved for use`]);
  }
  if (known.status === 'unknown') {
    // A tool the upstream does not list has no definition to pin or check arguments against.
    return refuse('WARDEN_TOOL_NOT_APPROVED', [
      `tool ${upstream}.${name} is not in the upstream's tool list, so it cannot be approved or checked`,
    ]);
  }
  const check = sources.schemaChecker.check(
    known.hash,
    known.definition.inputSchema,
    call.arguments,
  );
  if (!check.ok) {
    return refuse(
      'WARDEN_ARGUMENTS_INVALID',
      ["the arguments do not match the tool's input schema"],
      {
        errors: check.errors,
      },
    );
  }
  const decision = decideAction(sources, 'call_tool', identity, {
    upstream,
    name,
    arguments: call.arguments,
  });
  if (decision.breakglass) await reportBreakglass(sources, decision, identity, upstream, name);
  const decided = { ...authorizationOf(decision), toolDefinitionHash: known.hash };
  if (decision.effect === 'deny') return decided;
  // Nobody is asked to approve a call its budget or rate would refuse anyway; a held call's room
  // is not claimed while it waits (that could be hours): it is charged when released.
  const quotas = await sources.quotas.check(
    { identity, target: `${upstream}.${name}`, arguments: call.arguments },
    { hold: decision.effect === 'allow' && options.quotas === 'claim' },
  );
  if (!quotas.fits) return quotas.refusal;
  return { ...decided, quotas: quotas.claim };
}

async function reportBreakglass(
  sources: ToolCallSources,
  decision: Decision,
  identity: Identity,
  upstream: string,
  name: string,
): Promise<void> {
  const now = sources.now();
  const grant = sources.inputs.breakglassFor(identity.agent, now).get(`${upstream}.${name}`);
  sources.alert('break-glass grant used', { agent: identity.agent, upstream, tool: name, grant });
  await sources.record({
    event: 'breakglass.used',
    time: new Date(now).toISOString(),
    agent: identity.agent,
    ...(identity.user !== undefined && { user: identity.user }),
    roles: identity.roles,
    upstream,
    tool: name,
    decision,
    details: { grant },
  });
}
