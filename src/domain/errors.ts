/**
 * Every error Warden sends to a client or an operator has a stable code registered here.
 * One function (`toWireError`) maps them to HTTP statuses and JSON-RPC errors, so internal
 * detail never reaches the wire. docs/errors.md lists the same codes; a test keeps them in step.
 */

export interface ErrorSpec {
  /** HTTP status when the error ends an HTTP exchange. */
  readonly status: number;
  /** JSON-RPC error code when the error answers a JSON-RPC request. */
  readonly rpcCode: number;
  /** What happened and what to do, in words a client developer or operator can act on. */
  readonly summary: string;
}

export const ERROR_CATALOGUE = {
  WARDEN_PARSE_ERROR: {
    status: 400,
    rpcCode: -32700,
    summary: 'The request body is not valid JSON. Send one JSON-RPC 2.0 message per POST.',
  },
  WARDEN_INVALID_MESSAGE: {
    status: 400,
    rpcCode: -32600,
    summary: 'The body is JSON but not a valid JSON-RPC 2.0 message. Check jsonrpc, id and method.',
  },
  WARDEN_BATCH_UNSUPPORTED: {
    status: 400,
    rpcCode: -32600,
    summary:
      'JSON-RPC batches are not accepted (removed from MCP in 2025-06-18). Send one message per POST.',
  },
  WARDEN_NESTING_TOO_DEEP: {
    status: 400,
    rpcCode: -32600,
    summary:
      'The message nests objects and arrays deeper than the gateway accepts (limits.max_json_depth; data.maxDepth). Flatten the arguments.',
  },
  WARDEN_NUMBER_OUT_OF_RANGE: {
    status: 400,
    rpcCode: -32600,
    summary:
      'A number in the message would not reach the upstream as written: it is beyond what a 64-bit float holds (e.g. 1e999), too close to zero, or has more significant digits than one keeps (e.g. 9007199254740993). Send such values as strings; data.offset says where it starts.',
  },
  WARDEN_INVALID_UNICODE: {
    status: 400,
    rpcCode: -32600,
    summary:
      'A string in the message holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is not Unicode text and could reach a tool as something other than what the policy checked. Send well-formed text.',
  },
  WARDEN_INVALID_PATH: {
    status: 400,
    rpcCode: -32000,
    summary:
      'The request path is malformed (e.g. a broken percent-encoding). MCP endpoints are served at /mcp/<upstream>.',
  },
  WARDEN_REQUEST_TIMEOUT: {
    status: 408,
    rpcCode: -32000,
    summary:
      'The request body did not arrive in time (limits.request_timeout), so the request was refused and the connection closed. Send the whole request at once.',
  },
  WARDEN_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    rpcCode: -32000,
    summary: 'POST bodies must be sent with Content-Type: application/json.',
  },
  WARDEN_NOT_ACCEPTABLE: {
    status: 406,
    rpcCode: -32000,
    summary: 'The Accept header must list the media types this request can be answered with.',
  },
  WARDEN_BODY_TOO_LARGE: {
    status: 413,
    rpcCode: -32000,
    summary: 'The request body exceeds the configured limit (limits.max_body_bytes).',
  },
  WARDEN_METHOD_NOT_ALLOWED: {
    status: 405,
    rpcCode: -32000,
    summary: 'This HTTP method is not supported on this endpoint.',
  },
  WARDEN_UNKNOWN_UPSTREAM: {
    status: 404,
    rpcCode: -32000,
    summary: 'No upstream is configured at this path. MCP endpoints are served at /mcp/<upstream>.',
  },
  WARDEN_NOT_FOUND: {
    status: 404,
    rpcCode: -32000,
    summary: 'Nothing is served at this path.',
  },
  WARDEN_SESSION_REQUIRED: {
    status: 400,
    rpcCode: -32000,
    summary: 'This request needs the Mcp-Session-Id header returned by initialize.',
  },
  WARDEN_SESSION_NOT_FOUND: {
    status: 404,
    rpcCode: -32001,
    summary: 'The session does not exist or has ended. Send a new initialize request.',
  },
  WARDEN_HOP_REFUSED: {
    status: 403,
    rpcCode: -32600,
    summary:
      'A request relayed between replicas did not carry a valid, fresh hop signature meant for this replica.',
  },
  WARDEN_SESSION_CONFLICT: {
    status: 400,
    rpcCode: -32600,
    summary: 'initialize must be sent without an Mcp-Session-Id header; it starts a new session.',
  },
  WARDEN_UNSUPPORTED_PROTOCOL_VERSION: {
    status: 400,
    rpcCode: -32022,
    summary:
      'The request names an MCP protocol revision this gateway does not serve; data.supported lists those it does.',
  },
  WARDEN_INVALID_ENVELOPE: {
    status: 400,
    rpcCode: -32602,
    summary:
      'A 2026-07-28 request needs params._meta with io.modelcontextprotocol/protocolVersion and clientCapabilities.',
  },
  WARDEN_METHOD_NOT_FOUND: {
    status: 404,
    rpcCode: -32601,
    summary: 'This method does not exist in the protocol revision the request uses.',
  },
  WARDEN_INVALID_REQUEST_STATE: {
    status: 400,
    rpcCode: -32602,
    summary:
      'The requestState of this retry is unknown, expired or belongs to another request. Send the original request again.',
  },
  WARDEN_TASK_INVALID: {
    status: 400,
    rpcCode: -32602,
    summary:
      'This task request cannot be answered: params.task is not an object, or (tasks/get, tasks/result, tasks/cancel) no task of yours has this id, it already ended (cancel), is still working (result), or its result is no longer kept here; data.reason says which.',
  },
  WARDEN_HEADER_MISMATCH: {
    status: 400,
    rpcCode: -32020,
    summary: 'An Mcp-Method or Mcp-Name header is missing or does not match the request body.',
  },
  WARDEN_UNAUTHENTICATED: {
    status: 401,
    rpcCode: -32010,
    summary:
      'This endpoint needs credentials: an OAuth bearer token in the Authorization header (see the resource_metadata link in WWW-Authenticate), or a registered client certificate.',
  },
  WARDEN_INVALID_TOKEN: {
    status: 401,
    rpcCode: -32011,
    summary:
      'The access token was refused (expired, revoked, not for this gateway or environment, or not genuine). Get a new token.',
  },
  WARDEN_INSUFFICIENT_SCOPE: {
    status: 403,
    rpcCode: -32012,
    summary: 'The access token lacks a scope this endpoint needs; WWW-Authenticate names it.',
  },
  WARDEN_INVALID_AUTH_REQUEST: {
    status: 400,
    rpcCode: -32013,
    summary:
      'Credentials were sent the wrong way: use one Authorization: Bearer header, never a token in the URL.',
  },
  WARDEN_CERTIFICATE_REQUIRED: {
    status: 401,
    rpcCode: -32014,
    summary:
      'This token is bound to a client certificate (RFC 8705); present that certificate over TLS.',
  },
  WARDEN_FORBIDDEN: {
    status: 403,
    rpcCode: -32016,
    summary: 'The caller is authenticated but may not use this endpoint.',
  },
  WARDEN_ISSUER_UNAVAILABLE: {
    status: 503,
    rpcCode: -32015,
    summary:
      "The token issuer's signing keys cannot be fetched right now, so no token can be verified. Retry shortly.",
  },
  WARDEN_FORBIDDEN_HOST: {
    status: 403,
    rpcCode: -32000,
    summary: 'The Host header is not one this gateway serves (DNS rebinding protection).',
  },
  WARDEN_FORBIDDEN_ORIGIN: {
    status: 403,
    rpcCode: -32000,
    summary: 'The Origin header is not allowed (DNS rebinding protection).',
  },
  WARDEN_TOO_MANY_SESSIONS: {
    status: 503,
    rpcCode: -32000,
    summary: 'The session limit for this upstream is reached. Retry later or end idle sessions.',
  },
  WARDEN_TOO_MANY_SESSIONS_FOR_AGENT: {
    status: 429,
    rpcCode: -32043,
    summary:
      'This agent already holds as many sessions (and 2026-07-28 requests in flight) on this upstream as limits.max_sessions_per_agent allows, and all of its own are in use (a GET stream open or a request in flight). End a session with DELETE, or retry when a request has finished; data.limit is the cap.',
  },
  WARDEN_UPSTREAM_UNAVAILABLE: {
    status: 502,
    rpcCode: -32002,
    summary:
      'The upstream MCP server could not be reached or has stopped. Retry later; if it persists, tell the operator the reference id.',
  },
  WARDEN_UPSTREAM_TIMEOUT: {
    status: 504,
    rpcCode: -32003,
    summary: 'The upstream MCP server did not answer in time. The call may not have completed.',
  },
  WARDEN_UPSTREAM_PROTOCOL_ERROR: {
    status: 502,
    rpcCode: -32004,
    summary: 'The upstream MCP server answered with something that is not valid MCP.',
  },
  WARDEN_AUDIT_UNAVAILABLE: {
    status: 503,
    rpcCode: -32005,
    summary:
      'The audit log cannot record this call, so it was not forwarded (fail closed). Retry shortly; operators are alerted.',
  },
  WARDEN_NO_GRANT_ON_UPSTREAM: {
    status: 403,
    rpcCode: -32042,
    summary:
      'The caller holds no grant on this upstream (no role grant, break-glass grant or policy names it), so it may not open a session or send requests there. Ask an operator for a grant; data.reasons says what was checked.',
  },
  WARDEN_POLICY_DENIED: {
    status: 403,
    rpcCode: -32030,
    summary:
      'Policy denied this call; data.reasons says which rule or constraint failed. Change the arguments, or ask an operator for a grant (warden policy explain shows why).',
  },
  WARDEN_ARGUMENTS_INVALID: {
    status: 400,
    rpcCode: -32602,
    summary:
      "The arguments do not match the tool's own input schema; data.errors lists where. Fix the arguments and call again.",
  },
  WARDEN_ARGUMENT_SUSPICIOUS_TEXT: {
    status: 400,
    rpcCode: -32602,
    summary:
      'An argument the policy compares holds text a tool could read differently from the policy (leading or trailing whitespace, a control, invisible or format character), or is also sent under a look-alike key (another case or width, an invisible character) a tool could read in its place; data.reasons names the argument. Send the plain value under its own key.',
  },
  WARDEN_RESOURCE_URI_AMBIGUOUS: {
    status: 400,
    rpcCode: -32602,
    summary:
      'The resource URI could be resolved to another resource than the one the policy would judge (dot segments, encoded slashes or dots, backslashes, control or invisible characters, a fragment, …); data.reasons says what. Send the URI in its plain form.',
  },
  WARDEN_TOOL_DEFINITION_CHANGED: {
    status: 403,
    rpcCode: -32031,
    summary:
      'The upstream changed this tool since it was approved, so it is blocked until an operator approves the new definition (warden tools approve).',
  },
  WARDEN_TOOL_NOT_APPROVED: {
    status: 403,
    rpcCode: -32032,
    summary:
      'This tool has not been approved for use through the gateway yet. Ask an operator to review it (warden tools approve).',
  },
  WARDEN_QUOTA_EXCEEDED: {
    status: 429,
    rpcCode: -32033,
    summary:
      'A call-rate or budget quota is used up; data.quota names it. Retry after the window passes, or ask an operator to raise it.',
  },
  WARDEN_POLICY_ERROR: {
    status: 500,
    rpcCode: -32034,
    summary:
      'The policy engine could not evaluate this call, so it was denied (fail closed). Tell the operator the reference id.',
  },
  WARDEN_APPROVAL_REFUSED: {
    status: 403,
    rpcCode: -32035,
    summary:
      'An approver refused this call; data.reason says why. It was not forwarded. Do not retry the same call without talking to the approver.',
  },
  WARDEN_APPROVAL_EXPIRED: {
    status: 403,
    rpcCode: -32036,
    summary:
      'No approver decided within the approval timeout, so the call was refused and not forwarded. Call again to request a new approval.',
  },
  WARDEN_APPROVAL_UNAVAILABLE: {
    status: 503,
    rpcCode: -32037,
    summary:
      'This call needs approval but the approval service cannot take requests now, so it was refused (fail closed). Retry shortly; operators are alerted.',
  },
  WARDEN_APPROVAL_STALE: {
    status: 403,
    rpcCode: -32041,
    summary:
      'The call was approved, but when it was decided again at release something had changed (policy, policy state, tool definition, revocation, break-glass grant or quota), so it was refused and not forwarded. data.reason says what; call again to be decided under the rules in force now.',
  },
  WARDEN_APPROVAL_ALREADY_DECIDED: {
    status: 409,
    rpcCode: -32040,
    summary:
      'This approval request can no longer take this decision: it is already decided, expired, or this approver has voted on it. Reload it to see its status.',
  },
  WARDEN_UPSTREAM_CIRCUIT_OPEN: {
    status: 503,
    rpcCode: -32038,
    summary:
      'The upstream failed repeatedly, so calls to it are refused at once for a short while (circuit breaker). Retry after data.retryAfterMs.',
  },
  WARDEN_UPSTREAM_FAILED: {
    status: 502,
    rpcCode: -32039,
    summary:
      'The upstream MCP server answered with a server error (HTTP 5xx). The call may not have completed. Tell the operator the reference id if it persists.',
  },
  WARDEN_UPSTREAM_CREDENTIAL_FAILED: {
    status: 502,
    rpcCode: -32044,
    summary:
      "Warden could not obtain its credential for this upstream on the caller's behalf (the upstream's authorization server refused the token exchange, answered with something malformed, or could not be reached), so the call was refused and not forwarded (fail closed). Retry later; if it persists, tell the operator the reference id.",
  },
  WARDEN_SHUTTING_DOWN: {
    status: 503,
    rpcCode: -32000,
    summary: 'The gateway is shutting down. Retry against another replica or in a moment.',
  },
  WARDEN_INTERNAL: {
    status: 500,
    rpcCode: -32603,
    summary: 'The gateway failed unexpectedly. Tell the operator the reference id.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Base class of every error Warden raises on purpose. `message` may reach the client. */
/**
 * Refusals that answer what was decided about an authenticated JSON-RPC request: policy, input
 * checks, pinned definitions, quotas, approvals, the audit log and the upstream. They are sent as
 * a JSON-RPC error response with HTTP 200 (JSON or SSE), so that an MCP client's SDK raises an MCP
 * error whose data carries code, reasons and reference, not a transport failure. Authentication
 * failures and refusals of the HTTP exchange or the protocol itself (media types, sizes,
 * sessions, revisions, unknown methods, a 2026-07-28 request state, draining) keep their HTTP
 * status, as the MCP transport and authorization specifications ask.
 */
export const ANSWERED_IN_BAND: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WARDEN_ARGUMENTS_INVALID',
  'WARDEN_ARGUMENT_SUSPICIOUS_TEXT',
  'WARDEN_RESOURCE_URI_AMBIGUOUS',
  'WARDEN_POLICY_DENIED',
  'WARDEN_POLICY_ERROR',
  'WARDEN_TOOL_DEFINITION_CHANGED',
  'WARDEN_TOOL_NOT_APPROVED',
  'WARDEN_NO_GRANT_ON_UPSTREAM',
  'WARDEN_QUOTA_EXCEEDED',
  'WARDEN_APPROVAL_REFUSED',
  'WARDEN_APPROVAL_EXPIRED',
  'WARDEN_APPROVAL_STALE',
  'WARDEN_APPROVAL_UNAVAILABLE',
  'WARDEN_TASK_INVALID',
  'WARDEN_AUDIT_UNAVAILABLE',
  'WARDEN_UPSTREAM_UNAVAILABLE',
  'WARDEN_UPSTREAM_PROTOCOL_ERROR',
  'WARDEN_UPSTREAM_FAILED',
  'WARDEN_UPSTREAM_CREDENTIAL_FAILED',
  'WARDEN_UPSTREAM_CIRCUIT_OPEN',
  'WARDEN_UPSTREAM_TIMEOUT',
  'WARDEN_INTERNAL',
]);

/**
 * The HTTP status that carries `error`: 200 for a refusal answered in band when there is a
 * JSON-RPC request to answer (a non-null id), else the error's own status.
 */
export function httpStatusOf(
  error: WardenError,
  rpcId: string | number | null | undefined,
): number {
  return rpcId !== null && rpcId !== undefined && ANSWERED_IN_BAND.has(error.code)
    ? 200
    : error.status;
}

export class WardenError extends Error {
  readonly code: ErrorCode;
  /** Structured facts a client may act on (e.g. the supported revisions); sent in error.data. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message ?? ERROR_CATALOGUE[code].summary, options);
    this.name = 'WardenError';
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }

  get rpcCode(): number {
    return ERROR_CATALOGUE[this.code].rpcCode;
  }
}

/** Raised for configuration problems; names the file and the key path. Never sent on the wire. */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: readonly string[];

  constructor(file: string, issues: readonly string[]) {
    super(`invalid configuration in ${file}:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

/**
 * Base class of the local errors: raised on purpose, each with a stable `code`, for an operator
 * or a caller in the process to act on (StoreError, AuditError, ApprovalError, IssuerError,
 * OperationError). Never sent on the wire as they are: a shell maps them (the CLI to an exit
 * code, the admin API to a WardenError). Callers branch on `code`, never on the message.
 */
export class LocalError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Stable codes of every OperationError: why an operator's request (revoke, grant, approve a tool,
 * set a state) was not carried out. Callers branch on these, never on the message.
 */
export const OPERATION_ERROR_CODES = [
  /** The request names something that does not exist or asks for what is not allowed. */
  'OPERATION_INVALID',
  /** There is nothing to act on: no such grant in force, no version pending approval. */
  'OPERATION_NOT_FOUND',
] as const;

export type OperationErrorCode = (typeof OPERATION_ERROR_CODES)[number];

/**
 * An operation refused an operator's request. A local error: the CLI prints the message (exit 2
 * for OPERATION_INVALID, 1 for OPERATION_NOT_FOUND), the admin API maps it to a wire error.
 */
export class OperationError extends LocalError {
  declare readonly code: OperationErrorCode;

  constructor(code: OperationErrorCode, message: string) {
    super(code, message);
    this.name = 'OperationError';
  }
}

export interface WireError {
  readonly status: number;
  readonly rpcCode: number;
  readonly message: string;
  readonly data: { readonly code: ErrorCode; readonly reference: string } & Readonly<
    Record<string, unknown>
  >;
}

/**
 * Maps any thrown value to what may be sent to a client. Unknown errors become WARDEN_INTERNAL
 * with a generic message: stack traces, SQL and key material stay in the logs.
 */
export function toWireError(error: unknown, reference: string): WireError {
  const known = error instanceof WardenError ? error : new WardenError('WARDEN_INTERNAL');
  return {
    status: known.status,
    rpcCode: known.rpcCode,
    message: known.message,
    data: { ...known.details, code: known.code, reference },
  };
}

/** The JSON-RPC error response that answers request `id` with `error`, as sent to a client. */
export function toErrorResponse(
  error: unknown,
  reference: string,
  id: string | number | null,
): {
  jsonrpc: '2.0';
  id: string | number | null;
  error: { code: number; message: string; data: WireError['data'] };
} {
  const wire = toWireError(error, reference);
  return {
    jsonrpc: '2.0',
    id,
    error: { code: wire.rpcCode, message: wire.message, data: wire.data },
  };
}
