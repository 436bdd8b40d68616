/**
 * The per-request `_meta` envelope of revision 2026-07-28: every request names its protocol
 * version and the client's capabilities, since there is no initialize handshake.
 */
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcMessage } from '../../domain/jsonrpc.js';
import { STATELESS_REVISION } from '../../domain/protocol.js';

export const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
export const CLIENT_CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
export const CLIENT_INFO_KEY = 'io.modelcontextprotocol/clientInfo';
export const LOG_LEVEL_KEY = 'io.modelcontextprotocol/logLevel';
export const SERVER_INFO_KEY = 'io.modelcontextprotocol/serverInfo';
const ENVELOPE_PREFIX = 'io.modelcontextprotocol/';

/** The revisions a modern request may claim: those server/discover lists, and -32022 names. */
export const MODERN_REVISIONS: readonly string[] = [STATELESS_REVISION];

export interface Envelope {
  readonly protocolVersion: string;
  readonly clientCapabilities: Readonly<Record<string, unknown>>;
  readonly clientInfo: { readonly name: string; readonly version: string } | undefined;
  readonly logLevel: string | undefined;
}

/** True when the message claims revision 2026-07-28 or later in its own body. */
export function claimsModernRevision(message: JsonRpcMessage): boolean {
  return 'method' in message && readMeta(message)?.[PROTOCOL_VERSION_KEY] !== undefined;
}

/** Reads and checks the envelope of a message that claims a modern revision. */
export function readEnvelope(message: JsonRpcMessage & { method: string }): Envelope {
  const meta = readMeta(message) ?? {};
  const version = meta[PROTOCOL_VERSION_KEY];
  if (typeof version !== 'string') {
    throw envelopeError(PROTOCOL_VERSION_KEY, 'must be a string');
  }
  if (!MODERN_REVISIONS.includes(version)) {
    throw new WardenError(
      'WARDEN_UNSUPPORTED_PROTOCOL_VERSION',
      `Unsupported protocol version "${version}".`,
      {
        details: { supported: MODERN_REVISIONS, requested: version },
      },
    );
  }
  const capabilities = meta[CLIENT_CAPABILITIES_KEY];
  if (capabilities === null || typeof capabilities !== 'object' || Array.isArray(capabilities)) {
    throw envelopeError(CLIENT_CAPABILITIES_KEY, 'is required and must be an object');
  }
  const info = meta[CLIENT_INFO_KEY];
  const logLevel = meta[LOG_LEVEL_KEY];
  return {
    protocolVersion: version,
    clientCapabilities: capabilities as Record<string, unknown>,
    clientInfo: isClientInfo(info) ? info : undefined,
    logLevel: typeof logLevel === 'string' ? logLevel : undefined,
  };
}

/** The message's params with the envelope keys removed, for an upstream that predates them. */
export function withoutEnvelope(
  params: Readonly<Record<string, unknown>> | undefined,
): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...params };
  const meta = params?.['_meta'];
  if (meta !== null && typeof meta === 'object') {
    const kept = Object.fromEntries(
      Object.entries(meta as Record<string, unknown>).filter(
        ([key]) => !key.startsWith(ENVELOPE_PREFIX),
      ),
    );
    if (Object.keys(kept).length > 0) copy['_meta'] = kept;
    else delete copy['_meta'];
  }
  return copy;
}

function readMeta(message: JsonRpcMessage): Record<string, unknown> | undefined {
  const params = 'params' in message ? message.params : undefined;
  const meta = params?.['_meta'];
  return meta !== null && typeof meta === 'object' ? (meta as Record<string, unknown>) : undefined;
}

function isClientInfo(value: unknown): value is { name: string; version: string } {
  if (value === null || typeof value !== 'object') return false;
  const info = value as Record<string, unknown>;
  return typeof info['name'] === 'string' && typeof info['version'] === 'string';
}

function envelopeError(key: string, problem: string): WardenError {
  return new WardenError('WARDEN_INVALID_ENVELOPE', `params._meta["${key}"] ${problem}.`, {
    details: { envelope: { key, problem } },
  });
}
