/**
 * A request the message stages answer themselves with a tool result marked `isError` (a denial
 * answered as a result, an approval still pending): the text is for a model, `_meta` for code.
 * The observer it comes in records nothing more: the stage that answered has recorded.
 */
import type { JsonRpcId, JsonRpcResponse } from '../../domain/jsonrpc.js';
import type { CallObserver } from '../../mcp/message-gate.js';

export function answerWithToolError(
  id: JsonRpcId,
  text: string,
  meta: Readonly<Record<string, unknown>>,
): CallObserver & { readonly answer: JsonRpcResponse } {
  return {
    answer: {
      jsonrpc: '2.0',
      id,
      result: { content: [{ type: 'text', text }], isError: true, _meta: meta },
    },
    answered: () => undefined,
    failed: () => undefined,
  };
}
