/**
 * Authorize (policy/): the pinned tool definition, the tool's own inputSchema, Cedar (grants,
 * scopes, hand-written rules, policy states, break-glass), then quotas (checked, not yet
 * charged); listings are filtered to what the caller may use. A failure inside the policy stage
 * denies (fail closed); it never lets the call through.
 */
import { WardenError } from '../../domain/errors.js';
import type { McpRequestCall } from '../../domain/mcp-call.js';
import type { ClientMessageContext } from '../../mcp/message-gate.js';
import type { Authorization } from '../../policy/authorize-message.js';
import type { MessageStageOptions } from './message-context.js';

export async function authorizeCall(
  call: McpRequestCall,
  context: ClientMessageContext,
  { authorizer, logger }: Pick<MessageStageOptions, 'authorizer' | 'logger'>,
): Promise<Authorization> {
  try {
    return await authorizer.authorize(
      call,
      context.identity,
      context.upstreamName,
      context.listTools,
    );
  } catch (error) {
    logger.error({ err: error, requestId: context.requestId }, 'policy stage failed; denying');
    const reasons = ['the policy stage failed, so the call is refused'];
    return {
      decision: { effect: 'deny', reasons, policies: [], errors: [String(error)] },
      error: new WardenError('WARDEN_POLICY_ERROR', undefined, { details: { reasons } }),
    };
  }
}
