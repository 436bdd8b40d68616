/**
 * Forward: the message goes upstream through the transport (mcp/), in the form the policy judged
 * and with Warden's own upstream credential, never the client's. A forward that fails is the
 * call's outcome: its observer is told, so the record-outcome stage records the failure.
 */
import type { JsonRpcResponse } from '../../domain/jsonrpc.js';
import type { CallObserver } from '../../mcp/message-gate.js';
import type { UpstreamReply } from '../../mcp/upstream/types.js';

export async function forwardCall<T>(
  sending: Promise<T>,
  observer: CallObserver | undefined,
): Promise<T> {
  try {
    return await sending;
  } catch (error) {
    observer?.failed(error);
    throw error;
  }
}

/** The reply to a request the message stages answered themselves (refuse-call.ts): not forwarded. */
export function answeredHere(answer: JsonRpcResponse): UpstreamReply {
  return { kind: 'json', message: answer, raw: JSON.stringify(answer) };
}
