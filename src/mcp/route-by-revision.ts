/**
 * Which revision an exchange speaks: 2026-07-28, whose requests carry their own envelope and have
 * no session, or one of the sessionful revisions. An exchange that names a revision it does not
 * keep to, or one this endpoint does not serve, is refused.
 */
import { WardenError } from '../domain/errors.js';
import { isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../domain/jsonrpc.js';
import {
  isSupportedRevision,
  STATELESS_REVISION,
  SUPPORTED_REVISIONS,
} from '../domain/protocol.js';
import type { PostedExchange } from './read-exchange.js';
import { claimsModernRevision } from './stateless/envelope.js';

/**
 * True for a 2026-07-28 message: its body claims the revision, or its header does (only a POST
 * can: read-exchange.ts refuses any other method in 2026-07-28). A header without the body's
 * claim is refused as the SDK does.
 */
export function speaksModernRevision(exchange: PostedExchange): boolean {
  const { message } = exchange;
  if (claimsModernRevision(message)) return true;
  if (exchange.version !== STATELESS_REVISION) return false;
  if (isRequest(message) && message.method === 'initialize') {
    throw new WardenError(
      'WARDEN_HEADER_MISMATCH',
      'initialize belongs to the sessionful revisions; it cannot be sent as 2026-07-28.',
      { details: { mismatch: { header: STATELESS_REVISION, body: 'initialize' } } },
    );
  }
  throw new WardenError('WARDEN_INVALID_ENVELOPE', undefined, {
    details: { envelope: { missing: ['_meta'] } },
  });
}

/** A sessionful exchange may name any revision this endpoint serves in MCP-Protocol-Version. */
export function requireSessionfulRevision(version: string | undefined): void {
  if (version === undefined || isSupportedRevision(version)) return;
  throw new WardenError(
    'WARDEN_UNSUPPORTED_PROTOCOL_VERSION',
    `Unsupported MCP-Protocol-Version "${version}".`,
    { details: { supported: SUPPORTED_REVISIONS, requested: version } },
  );
}

/** The sessionful handshake: the one message that opens a session rather than using one. */
export function isInitialize(message: JsonRpcMessage): message is JsonRpcRequest {
  return isRequest(message) && message.method === 'initialize';
}
