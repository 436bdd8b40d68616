/**
 * What the audit log says about one MCP call: which tool or resource, with which arguments, from
 * which identity, in which trace. Pure: the pipeline decides when to record.
 */
import type { AuditEntry } from '../domain/audit-record.js';
import type { Identity } from '../domain/identity.js';

export interface CallFacts {
  readonly requestId: string;
  readonly traceparent: string | undefined;
  readonly identity: Identity;
  readonly upstream: string;
  readonly method: string;
  readonly params: Readonly<Record<string, unknown>> | undefined;
}

/** The target a method acts on (tool, resource URI or prompt) and the arguments it carries. */
export function describeTarget(
  method: string,
  params: Readonly<Record<string, unknown>> | undefined,
): {
  readonly tool: string | undefined;
  readonly args: unknown;
} {
  const name = params?.['name'];
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      return {
        tool: typeof name === 'string' ? name : undefined,
        args: params?.['arguments'] ?? {},
      };
    case 'resources/read': {
      const uri = params?.['uri'];
      return { tool: typeof uri === 'string' ? uri : undefined, args: undefined };
    }
    default:
      return { tool: undefined, args: undefined };
  }
}

/** The W3C trace id of a `traceparent` header (version 00), if it is well formed. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const match =
    traceparent === undefined
      ? null
      : /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  const traceId = match?.[1];
  return traceId === undefined || /^0+$/.test(traceId) ? undefined : traceId;
}

/** The fields every record of a call shares; the event and its outcome are added by the caller. */
export function callEntryBase(
  facts: CallFacts,
  tool: string | undefined,
): Omit<AuditEntry, 'event' | 'time'> {
  const traceId = traceIdOf(facts.traceparent);
  return {
    requestId: facts.requestId,
    ...(traceId !== undefined && { traceId }),
    ...identityFields(facts.identity),
    upstream: facts.upstream,
    method: facts.method,
    ...(tool !== undefined && { tool }),
  };
}

/** Who made a call, as every record of it names them: the model only as declared. */
export function identityFields(
  identity: Identity,
): Pick<AuditEntry, 'environment' | 'tenant' | 'user' | 'agent' | 'roles' | 'model'> {
  return {
    environment: identity.environment,
    ...(identity.tenant !== undefined && { tenant: identity.tenant }),
    ...(identity.user !== undefined && { user: identity.user }),
    agent: identity.agent,
    roles: identity.roles,
    ...(identity.declaredModel !== undefined && { model: identity.declaredModel }),
  };
}
