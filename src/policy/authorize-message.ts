/**
 * Stage 3 of the pipeline: the decision on one client request, before the upstream sees it.
 *
 *   tools/call       pinned definition → the tool's own inputSchema → Cedar (call_tool) → quotas
 *   resources/read   Cedar (read_resource); prompts/get and completions the same way
 *   listings         forwarded, and the answer filtered to what the caller may use (least exposure)
 *   anything else    protocol plumbing (initialize, ping, …): allowed, and recorded as such
 */
import type { PolicyConfig } from '../config/policy-config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import type { Decision } from '../domain/decision.js';
import { WardenError, type ErrorCode } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../domain/jsonrpc.js';
import type { Store } from '../store/types.js';
import type { PolicyAction } from './cedar-schema.js';
import type { InputSchemaChecker } from './input-schema-check.js';
import { refusalCodeOf, type PolicyEngine, type PolicyRequest } from './policy-engine.js';
import type { PolicyInputs } from './policy-inputs.js';
import { chargeQuotas } from './quotas.js';
import type { ToolCatalog } from './tool-catalog.js';
import { readToolDefinitions } from './tool-definition.js';
import { normaliseResourceUri, refuseResourceUri } from './normalise-uri.js';

export interface Authorization {
  readonly decision: Decision;
  /** For a denial: what the caller is told. */
  readonly error?: WardenError;
  /** For listings: the answer, filtered to what the caller may use. */
  readonly rewrite?: (response: JsonRpcResponse) => Promise<JsonRpcResponse>;
  /** tools/call: the hash of the definition the call was decided against (bound into approvals). */
  readonly toolDefinitionHash?: string;
  /**
   * The request to forward in place of the client's: the same request with its resource URI in
   * the normal form the policy judged (normalise-uri.ts), so the upstream reads what was allowed.
   */
  readonly rewriteRequest?: JsonRpcRequest;
}

export interface MessageAuthorizer {
  /**
   * Decides one request. `listTools` lets a call to a tool never seen listed be checked against
   * the upstream's current definition (fetched on the caller's own session).
   */
  authorize(
    request: JsonRpcRequest,
    identity: Identity,
    upstream: string,
    listTools?: () => Promise<unknown[]>,
  ): Promise<Authorization>;
  /**
   * Decides a held call again at the moment it is released, with the policy, policy states,
   * break-glass grants, tool definition and quotas in force now (the run-time inputs are re-read
   * from the store first, not taken from the last poll). Nothing is charged.
   */
  reauthorize(
    request: JsonRpcRequest,
    identity: Identity,
    upstream: string,
  ): Promise<Authorization>;
  /** Charges the call's quotas; for approval-gated calls, once the approval is granted. */
  chargeQuotas(
    request: JsonRpcRequest,
    identity: Identity,
    upstream: string,
  ): Promise<Authorization | undefined>;
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

const NO_TARGETS: ReadonlySet<string> = new Set();

/** Most calls have no break-glass grant: they share one empty set instead of building one each. */
function breakglassTargets(grants: ReadonlyMap<string, string>): ReadonlySet<string> {
  return grants.size === 0 ? NO_TARGETS : new Set(grants.keys());
}

const PROTOCOL: Decision = {
  effect: 'allow',
  reasons: ['protocol message: no tool, resource or prompt is used'],
  policies: [],
};

export function createMessageAuthorizer(options: MessageAuthorizerOptions): MessageAuthorizer {
  const { now } = options;

  const ask = (
    action: PolicyAction,
    identity: Identity,
    upstream: string,
    name: string,
    args?: unknown,
  ): Decision => {
    const at = now();
    const request: PolicyRequest = {
      action,
      identity,
      upstream,
      name,
      ...(args !== undefined && { arguments: args }),
      now: at,
      states: options.inputs.states(),
      breakglass: breakglassTargets(options.inputs.breakglassFor(identity.agent, at)),
    };
    return options.engine().decide(request);
  };

  const deny = (
    code: ErrorCode,
    reasons: string[],
    extra: Record<string, unknown> = {},
  ): Authorization => ({
    decision: { effect: 'deny', reasons, policies: [] },
    error: new WardenError(code, undefined, { details: { reasons, ...extra } }),
  });

  const fromDecision = (decision: Decision): Authorization => {
    if (decision.effect !== 'deny') return { decision };
    const code =
      refusalCodeOf(decision) ??
      (decision.evaluationFailed ? 'WARDEN_POLICY_ERROR' : 'WARDEN_POLICY_DENIED');
    return {
      decision,
      error: new WardenError(code, undefined, {
        details: { reasons: decision.reasons },
      }),
    };
  };

  const authorizeToolCall = async (
    request: JsonRpcRequest,
    identity: Identity,
    upstream: string,
    listTools: (() => Promise<unknown[]>) | undefined,
  ): Promise<Authorization> => {
    const params = request.params ?? {};
    const name = params['name'];
    if (typeof name !== 'string' || name === '') {
      return deny('WARDEN_ARGUMENTS_INVALID', ['tools/call needs params.name']);
    }
    const args = params['arguments'] ?? {};
    let known = await options.catalog.lookup(upstream, name);
    if (known.status === 'unknown' && listTools !== undefined) {
      await options.catalog.observe(upstream, readToolDefinitions({ tools: await listTools() }));
      known = await options.catalog.lookup(upstream, name);
    }
    if (known.status === 'changed') {
      return deny('WARDEN_TOOL_DEFINITION_CHANGED', [
        `tool_definition_changed: ${upstream}.${name} changed since it was approved`,
      ]);
    }
    if (known.status === 'unapproved') {
      return deny('WARDEN_TOOL_NOT_APPROVED', [`tool ${upstream}.${name} is not approved for use`]);
    }
    if (known.status === 'unknown') {
      // A tool the upstream does not list has no definition to pin or check arguments against.
      return deny('WARDEN_TOOL_NOT_APPROVED', [
        `tool ${upstream}.${name} is not in the upstream's tool list, so it cannot be approved or checked`,
      ]);
    }
    const check = options.schemaChecker.check(known.hash, known.definition.inputSchema, args);
    if (!check.ok) {
      return deny(
        'WARDEN_ARGUMENTS_INVALID',
        ["the arguments do not match the tool's input schema"],
        {
          errors: check.errors,
        },
      );
    }
    const decision = ask('call_tool', identity, upstream, name, args);
    const authorization: Authorization = {
      ...fromDecision(decision),
      toolDefinitionHash: known.hash,
    };
    if (decision.breakglass) await reportBreakglass(decision, identity, upstream, name);
    if (decision.effect === 'allow') {
      const refused = await charge(request, identity, upstream);
      if (refused) return refused;
    }
    if (decision.effect === 'approval_required') {
      // Nobody is asked to approve a call its budget or rate would refuse anyway; it is charged
      // only when released.
      const refused = await charge(request, identity, upstream, { dryRun: true });
      if (refused) return refused;
    }
    return authorization;
  };

  const reportBreakglass = async (
    decision: Decision,
    identity: Identity,
    upstream: string,
    name: string,
  ) => {
    const grant = options.inputs.breakglassFor(identity.agent, now()).get(`${upstream}.${name}`);
    options.alert('break-glass grant used', { agent: identity.agent, upstream, tool: name, grant });
    await options.record({
      event: 'breakglass.used',
      time: new Date(now()).toISOString(),
      agent: identity.agent,
      ...(identity.user !== undefined && { user: identity.user }),
      roles: identity.roles,
      upstream,
      tool: name,
      decision,
      details: { grant },
    });
  };

  const charge = async (
    request: JsonRpcRequest,
    identity: Identity,
    upstream: string,
    mode: { readonly dryRun?: boolean } = {},
  ): Promise<Authorization | undefined> => {
    const name = request.params?.['name'];
    if (typeof name !== 'string') return undefined;
    let verdict;
    try {
      verdict = await chargeQuotas(
        options.policy().quotas,
        options.store,
        {
          identity,
          target: `${upstream}.${name}`,
          arguments: request.params?.['arguments'] ?? {},
          now: now(),
        },
        mode,
      );
    } catch (cause) {
      return deny('WARDEN_POLICY_ERROR', ['quotas could not be checked, so the call is refused'], {
        cause: String(cause),
      });
    }
    if (verdict.admitted) return undefined;
    return deny('WARDEN_QUOTA_EXCEEDED', [verdict.reason], { quota: verdict.quota });
  };

  const listing = (
    filter: (result: Record<string, unknown>) => Promise<Record<string, unknown>>,
  ): Authorization => ({
    decision: {
      effect: 'allow',
      reasons: ['listing: the answer is filtered to what the caller may use'],
      policies: [],
    },
    rewrite: async (response) => {
      if (
        !('result' in response) ||
        response.result === null ||
        typeof response.result !== 'object'
      ) {
        return response;
      }
      return { ...response, result: await filter(response.result as Record<string, unknown>) };
    },
  });

  const filterTools = (identity: Identity, upstream: string) =>
    listing(async (result) => {
      const definitions = readToolDefinitions(result);
      const statuses = await options.catalog.observe(upstream, definitions);
      const tools = Array.isArray(result['tools']) ? (result['tools'] as unknown[]) : [];
      return {
        ...result,
        tools: tools.filter((tool) => {
          const name = (tool as { name?: unknown }).name;
          if (typeof name !== 'string') return false;
          if (statuses.get(name)?.status !== 'approved') return false;
          return ask('list_tools', identity, upstream, name).effect !== 'deny';
        }),
      };
    });

  const filterEntries = (
    key: 'resources' | 'resourceTemplates' | 'prompts',
    field: 'uri' | 'uriTemplate' | 'name',
    action: PolicyAction,
    identity: Identity,
    upstream: string,
  ) =>
    listing(async (result) => {
      const entries = Array.isArray(result[key]) ? (result[key] as unknown[]) : [];
      return {
        ...result,
        [key]: entries.filter((entry) => {
          const value = (entry as Record<string, unknown> | null)?.[field];
          return (
            typeof value === 'string' && ask(action, identity, upstream, value).effect !== 'deny'
          );
        }),
      };
    });

  return {
    async authorize(request, identity, upstream, listTools) {
      const params = request.params ?? {};
      switch (request.method) {
        case 'tools/call':
          return authorizeToolCall(request, identity, upstream, listTools);
        case 'tools/list':
          return filterTools(identity, upstream);
        case 'resources/list':
          return filterEntries('resources', 'uri', 'read_resource', identity, upstream);
        case 'resources/templates/list':
          return filterEntries(
            'resourceTemplates',
            'uriTemplate',
            'read_resource',
            identity,
            upstream,
          );
        case 'prompts/list':
          return filterEntries('prompts', 'name', 'get_prompt', identity, upstream);
        case 'resources/read':
        case 'resources/subscribe':
        case 'resources/unsubscribe':
          return named(params['uri'], 'read_resource', identity, upstream, {
            template: false,
            rewrite: (uri) => ({ ...request, params: { ...params, uri } }),
          });
        case 'prompts/get':
          return named(params['name'], 'get_prompt', identity, upstream);
        case 'completion/complete': {
          const ref = params['ref'] as
            { type?: unknown; name?: unknown; uri?: unknown } | undefined;
          if (ref?.type === 'ref/prompt') return named(ref.name, 'get_prompt', identity, upstream);
          if (ref?.type === 'ref/resource')
            return named(ref.uri, 'read_resource', identity, upstream, {
              template: true,
              rewrite: (uri) => ({ ...request, params: { ...params, ref: { ...ref, uri } } }),
            });
          return deny('WARDEN_POLICY_DENIED', [
            'completion/complete needs a prompt or resource ref',
          ]);
        }
        default:
          return { decision: PROTOCOL };
      }
    },
    async reauthorize(request, identity, upstream) {
      await options.inputs.refresh();
      return request.method === 'tools/call'
        ? authorizeToolCall(request, identity, upstream, undefined)
        : this.authorize(request, identity, upstream);
    },
    chargeQuotas: (request, identity, upstream) => charge(request, identity, upstream),
  };

  /**
   * A read, subscription or completion names its resource by URI (`resource` given): the URI is
   * judged in its normal form and forwarded in it (`rewriteRequest`); one that stays ambiguous
   * is refused. `template`: the URI is a completion's uriTemplate, whose `{…}` are kept.
   */
  function named(
    value: unknown,
    action: PolicyAction,
    identity: Identity,
    upstream: string,
    resource?: { template: boolean; rewrite: (uri: string) => JsonRpcRequest },
  ): Authorization {
    if (typeof value !== 'string' || value === '') {
      return deny('WARDEN_POLICY_DENIED', ['the request does not name what it uses']);
    }
    if (resource === undefined) return fromDecision(ask(action, identity, upstream, value));
    const uri = normaliseResourceUri(value, { template: resource.template });
    if (!uri.ok) {
      const decision = refuseResourceUri(uri.problem);
      const details = { reasons: decision.reasons };
      return {
        decision,
        error: new WardenError('WARDEN_RESOURCE_URI_AMBIGUOUS', undefined, { details }),
      };
    }
    const authorization = fromDecision(ask(action, identity, upstream, uri.uri));
    return uri.uri === value || authorization.decision.effect === 'deny'
      ? authorization
      : { ...authorization, rewriteRequest: resource.rewrite(uri.uri) };
  }
}
