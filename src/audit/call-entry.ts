/**
 * What the audit log says about one MCP call: which tool or resource, with which arguments, from
 * which identity, in which trace. Pure: the pipeline decides when to record.
 */
import type { AuditCredential, AuditEntry } from '../domain/audit-record.js';
import type { Credential, Identity } from '../domain/identity.js';
import type { McpRequestCall } from '../domain/mcp-call.js';

export interface CallFacts {
  readonly requestId: string;
  readonly traceparent: string | undefined;
  readonly identity: Identity;
  readonly upstream: string;
  /** The call as classified (domain/mcp-call.ts); in the form forwarded, when Warden rewrote it. */
  readonly call: McpRequestCall;
}

/**
 * The target a call acts on (tool, resource URI or prompt), as the log's `tool` field names it,
 * and the arguments it carries.
 */
export function describeTarget(call: McpRequestCall): {
  readonly tool: string | undefined;
  readonly args: unknown;
} {
  switch (call.kind) {
    case 'tool_call':
    case 'prompt_get':
      return { tool: call.name, args: call.arguments };
    case 'resource_read':
      return { tool: call.uri, args: undefined };
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
    method: facts.call.message.method,
    ...(tool !== undefined && { tool }),
  };
}

/** Who made a call, as every record of it names them: the model only as declared. */
export function identityFields(
  identity: Identity,
): Pick<
  AuditEntry,
  'environment' | 'tenant' | 'user' | 'agent' | 'roles' | 'model' | 'credential'
> {
  return {
    environment: identity.environment,
    ...(identity.tenant !== undefined && { tenant: identity.tenant }),
    ...(identity.user !== undefined && { user: identity.user }),
    agent: identity.agent,
    roles: identity.roles,
    ...(identity.declaredModel !== undefined && { model: identity.declaredModel }),
    credential: describeCredential(identity.credential),
  };
}

/** The credential's identifiers, without what a record needs not repeat (expiry, scopes). */
export function describeCredential(credential: Credential): AuditCredential {
  if (credential.kind === 'mtls') {
    return { kind: 'mtls', subject: credential.subject, fingerprint: credential.fingerprint };
  }
  return {
    kind: 'jwt',
    issuer: credential.issuer,
    ...(credential.tokenId !== undefined && { tokenId: credential.tokenId }),
    ...(credential.boundCertificate !== undefined && {
      boundCertificate: credential.boundCertificate,
    }),
  };
}
