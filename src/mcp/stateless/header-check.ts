/**
 * Revision 2026-07-28 mirrors parts of the body in headers (SEP-2243) so that intermediaries can
 * route without parsing. A mirror that disagrees with the body is how a request smuggles a method
 * or tool name past such an intermediary: every mismatch is refused with -32020.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../../domain/errors.js';
import { firstValue } from '../../http/http-headers.js';
import type { JsonRpcNotification, JsonRpcRequest } from '../../domain/jsonrpc.js';

/** Methods whose target is mirrored in Mcp-Name, and the param it mirrors. */
const NAMED_TARGETS: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};

/** Checks the mirrored headers of a modern request (notifications are exempt from presence). */
export function checkMirroredHeaders(
  headers: IncomingHttpHeaders,
  message: JsonRpcRequest | JsonRpcNotification,
  claimedVersion: string,
): void {
  const isRequest = 'id' in message;
  const version = firstValue(headers['mcp-protocol-version']);
  if (version !== undefined ? version !== claimedVersion : isRequest) {
    throw mismatch('MCP-Protocol-Version', version, claimedVersion);
  }
  const method = firstValue(headers['mcp-method']);
  if (method !== undefined ? method !== message.method : isRequest) {
    throw mismatch('Mcp-Method', method, message.method);
  }
  const param = NAMED_TARGETS[message.method];
  if (param === undefined) return;
  const target = message.params?.[param];
  const rawName = firstValue(headers['mcp-name']);
  const name = rawName === undefined ? undefined : decodeHeaderValue(rawName);
  if (name !== undefined ? name !== target : isRequest) {
    throw mismatch('Mcp-Name', rawName, typeof target === 'string' ? target : String(target));
  }
}

/** The `Mcp-*` headers to pass on to a modern upstream, which checks Mcp-Param-* itself. */
export function mirroredHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('mcp-') && name !== 'mcp-session-id' && name !== 'mcp-protocol-version') {
      const text = firstValue(value);
      if (text !== undefined) out[name] = text;
    }
  }
  return out;
}

/**
 * The mirrored headers for a request Warden forwards in another form than the client sent (a
 * resource URI in its normal form): Mcp-Name follows the body, so the two never disagree.
 */
export function mirrorForwardedRequest(
  headers: Readonly<Record<string, string>>,
  forwarded: JsonRpcRequest,
): Record<string, string> {
  const param = NAMED_TARGETS[forwarded.method];
  const target = param === undefined ? undefined : forwarded.params?.[param];
  if (headers['mcp-name'] === undefined || typeof target !== 'string') return { ...headers };
  return { ...headers, 'mcp-name': encodeHeaderValue(target) };
}

/** Plain header text when it is safe as such, else the `=?base64?…?=` form. */
function encodeHeaderValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) && !value.startsWith('=?')
    ? value
    : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** Decodes the `=?base64?…?=` form used for values that are not safe as plain header text. */
export function decodeHeaderValue(value: string): string | undefined {
  const match = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/.exec(value);
  if (!match) return value;
  const encoded = match[1] ?? '';
  if (encoded.length % 4 !== 0) return undefined;
  return Buffer.from(encoded, 'base64').toString('utf8');
}

function mismatch(header: string, sent: string | undefined, body: string): WardenError {
  return new WardenError(
    'WARDEN_HEADER_MISMATCH',
    `Bad Request: the ${header} header ${sent === undefined ? 'is missing' : `("${sent}") does not match the body`}.`,
    { details: { mismatch: { header: sent ?? '(missing)', body } } },
  );
}
