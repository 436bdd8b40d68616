/**
 * One client message, classified once (STYLE rule 11): what it asks for, read from `params` here
 * and nowhere else. Policy, audit, approvals and spans read the typed value; the message itself
 * travels with it, unchanged, for forwarding. A request of a known method whose params do not say
 * what it uses is a `malformed` call, which the policy refuses: it is never forwarded half-read.
 */
import { isRecord } from './json-object.js';
import {
  isNotification,
  isRequest,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
} from './jsonrpc.js';

/** A tool's or prompt's arguments: a JSON object (`{}` when the client sent none). */
export type CallArguments = Readonly<Record<string, unknown>>;

/** `tools/call`. */
export interface ToolCall {
  readonly kind: 'tool_call';
  readonly message: JsonRpcRequest;
  readonly name: string;
  readonly arguments: CallArguments;
  /** `params._meta.progressToken`: the client asked for progress notifications on this call. */
  readonly progressToken: string | number | undefined;
}

/** `resources/read`. */
export interface ResourceRead {
  readonly kind: 'resource_read';
  readonly message: JsonRpcRequest;
  readonly uri: string;
}

/** `prompts/get`. */
export interface PromptGet {
  readonly kind: 'prompt_get';
  readonly message: JsonRpcRequest;
  readonly name: string;
  readonly arguments: CallArguments;
}

/** What a listing lists. */
export type ListingOf = 'tools' | 'resources' | 'resource_templates' | 'prompts';

/** `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`. */
export interface Listing {
  readonly kind: 'listing';
  readonly message: JsonRpcRequest;
  readonly of: ListingOf;
  readonly cursor: string | undefined;
}

/** What a completion completes an argument of: a prompt, or a resource template. */
export type CompletionRef =
  | { readonly type: 'prompt'; readonly name: string }
  | { readonly type: 'resource'; readonly uri: string };

/** `completion/complete`. */
export interface Completion {
  readonly kind: 'completion';
  readonly message: JsonRpcRequest;
  readonly ref: CompletionRef;
}

/**
 * `resources/subscribe` and `resources/unsubscribe` (one URI), or a 2026-07-28
 * `subscriptions/listen` for the updates of the resources in `notifications.resourceSubscriptions`.
 */
export interface Subscription {
  readonly kind: 'subscription';
  readonly message: JsonRpcRequest;
  readonly action: 'subscribe' | 'unsubscribe' | 'listen';
  /** At least one. */
  readonly uris: readonly string[];
}

/**
 * What uses no tool, resource or prompt: initialize, ping, logging/setLevel, a listen for no
 * resource's updates, methods Warden does not know, every notification (but a cancellation) and
 * every reply to a server's request.
 */
export interface Plumbing {
  readonly kind: 'plumbing';
  readonly message: JsonRpcMessage;
}

/** `notifications/cancelled`: plumbing the pipeline acts on (a call held for approval is withdrawn). */
export interface Cancellation {
  readonly kind: 'cancellation';
  readonly message: JsonRpcNotification;
  readonly requestId: JsonRpcId | undefined;
}

/** A request of a known method whose params do not say what it uses, or not in the form it must. */
export interface MalformedCall {
  readonly kind: 'malformed';
  readonly message: JsonRpcRequest;
  readonly problem: string;
}

export type McpCall =
  | ToolCall
  | ResourceRead
  | PromptGet
  | Listing
  | Completion
  | Subscription
  | Plumbing
  | Cancellation
  | MalformedCall;

/** A classified request: a call that is decided, recorded and answered. */
export type McpRequestCall = Exclude<McpCall, Cancellation> & { readonly message: JsonRpcRequest };

const LISTINGS: Readonly<Record<string, ListingOf>> = {
  'tools/list': 'tools',
  'resources/list': 'resources',
  'resources/templates/list': 'resource_templates',
  'prompts/list': 'prompts',
};

/** Classifies one client message. Pure; total: every message is some McpCall. */
export function classifyMcpCall(message: JsonRpcRequest): McpRequestCall;
export function classifyMcpCall(message: JsonRpcMessage): McpCall;
export function classifyMcpCall(message: JsonRpcMessage): McpCall {
  if (isNotification(message)) {
    if (message.method !== 'notifications/cancelled') return { kind: 'plumbing', message };
    const requestId = message.params?.['requestId'];
    return {
      kind: 'cancellation',
      message,
      requestId:
        typeof requestId === 'string' || typeof requestId === 'number' ? requestId : undefined,
    };
  }
  if (!isRequest(message)) return { kind: 'plumbing', message };
  return classifyRequest(message);
}

/** Whether the call is a request (a call to decide and record), not a notification or a reply. */
export function isRequestCall(call: McpCall): call is McpRequestCall {
  return call.kind !== 'cancellation' && isRequest(call.message);
}

function classifyRequest(message: JsonRpcRequest): McpRequestCall {
  const params = message.params ?? {};
  const malformed = (problem: string): MalformedCall => ({ kind: 'malformed', message, problem });
  const { method } = message;
  const listing = LISTINGS[method];
  if (listing !== undefined) {
    const cursor = params['cursor'] ?? undefined;
    if (cursor !== undefined && typeof cursor !== 'string') {
      return malformed(`${method}: params.cursor must be a string`);
    }
    return { kind: 'listing', message, of: listing, cursor };
  }
  switch (method) {
    case 'tools/call':
    case 'prompts/get': {
      const name = params['name'];
      if (!isName(name)) return malformed(`${method} needs params.name`);
      // Absent (or null) arguments are no arguments, as an SDK server reads them.
      const args = params['arguments'] ?? {};
      if (!isRecord(args)) return malformed(`${method}: params.arguments must be an object`);
      return method === 'prompts/get'
        ? { kind: 'prompt_get', message, name, arguments: args }
        : {
            kind: 'tool_call',
            message,
            name,
            arguments: args,
            progressToken: progressTokenOf(params),
          };
    }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe': {
      const uri = params['uri'];
      if (!isName(uri)) return malformed(`${method} needs params.uri`);
      if (method === 'resources/read') return { kind: 'resource_read', message, uri };
      const action = method === 'resources/subscribe' ? 'subscribe' : 'unsubscribe';
      return { kind: 'subscription', message, action, uris: [uri] };
    }
    case 'subscriptions/listen': {
      const notifications = params['notifications'];
      const uris = isRecord(notifications) ? notifications['resourceSubscriptions'] : undefined;
      if (uris === undefined || (Array.isArray(uris) && uris.length === 0)) {
        return { kind: 'plumbing', message };
      }
      if (!Array.isArray(uris) || !uris.every(isName)) {
        return malformed('subscriptions/listen: resourceSubscriptions must list resource URIs');
      }
      return { kind: 'subscription', message, action: 'listen', uris };
    }
    case 'completion/complete': {
      const ref = params['ref'];
      if (isRecord(ref) && ref['type'] === 'ref/prompt' && isName(ref['name'])) {
        return { kind: 'completion', message, ref: { type: 'prompt', name: ref['name'] } };
      }
      if (isRecord(ref) && ref['type'] === 'ref/resource' && isName(ref['uri'])) {
        return { kind: 'completion', message, ref: { type: 'resource', uri: ref['uri'] } };
      }
      return malformed('completion/complete needs a prompt or resource ref');
    }
    default:
      return { kind: 'plumbing', message };
  }
}

/**
 * The request to forward for a call whose resource URIs Warden judged in another (normal) form:
 * the client's request with those URIs in their place (one per URI the call names, in order),
 * everything else as sent.
 */
export function withResourceUris(
  call: ResourceRead | Subscription | Completion,
  uris: readonly string[],
): JsonRpcRequest {
  const { message } = call;
  const params = message.params ?? {};
  switch (call.kind) {
    case 'resource_read':
      return { ...message, params: { ...params, uri: uris[0] ?? call.uri } };
    case 'subscription': {
      if (call.action !== 'listen') {
        return { ...message, params: { ...params, uri: uris[0] ?? call.uris[0] } };
      }
      const notifications = params['notifications'] as Record<string, unknown>;
      return {
        ...message,
        params: { ...params, notifications: { ...notifications, resourceSubscriptions: uris } },
      };
    }
    case 'completion': {
      if (call.ref.type !== 'resource') return message;
      const ref = params['ref'] as Record<string, unknown>;
      return { ...message, params: { ...params, ref: { ...ref, uri: uris[0] ?? call.ref.uri } } };
    }
  }
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function progressTokenOf(params: Record<string, unknown>): string | number | undefined {
  const meta = params['_meta'];
  const token = isRecord(meta) ? meta['progressToken'] : undefined;
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}
