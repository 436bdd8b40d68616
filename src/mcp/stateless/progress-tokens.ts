/**
 * Progress tokens of bridged calls. Calls of different clients may share an upstream session
 * one after the other, so the client's token is replaced by one the bridge chose, and mapped
 * back on the way to the client.
 */
import type { JsonRpcNotification } from '../../domain/jsonrpc.js';

export interface ProgressMapping {
  readonly upstreamToken: string;
  readonly clientToken: string | number;
}

/** Replaces the client's progress token, if any, by `upstreamToken`. */
export function rewriteProgressToken(
  params: Record<string, unknown>,
  upstreamToken: string,
): { params: Record<string, unknown>; progress: ProgressMapping | undefined } {
  const meta = params['_meta'] as Record<string, unknown> | undefined;
  const clientToken = meta?.['progressToken'];
  if (typeof clientToken !== 'string' && typeof clientToken !== 'number')
    return { params, progress: undefined };
  return {
    params: { ...params, _meta: { ...meta, progressToken: upstreamToken } },
    progress: { upstreamToken, clientToken },
  };
}

/**
 * A progress notification of this call with the client's token back in place; undefined for
 * one that is not the call's own (another call's, or a call without a token).
 */
export function toClientProgress(
  message: JsonRpcNotification,
  progress: ProgressMapping | undefined,
): JsonRpcNotification | undefined {
  if (!progress || message.params?.['progressToken'] !== progress.upstreamToken) return undefined;
  return { ...message, params: { ...message.params, progressToken: progress.clientToken } };
}
