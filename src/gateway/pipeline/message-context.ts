/** What the message stages share: their dependencies, and the facts a call's records carry. */
import type { CallFacts } from '../../audit/call-entry.js';
import type { CallRecorder } from '../../audit/call-recorder.js';
import type { McpRequestCall } from '../../domain/mcp-call.js';
import type { RevocationList } from '../../identity/revocation-list.js';
import type { ClientMessageContext } from '../../mcp/message-gate.js';
import type { MessageAuthorizer } from '../../policy/authorize-message.js';
import type { Logger } from '../logger.js';
import type { ApprovalHolder } from './approve-call.js';

export interface MessageStageOptions {
  readonly authorizer: MessageAuthorizer;
  readonly recorder: CallRecorder;
  readonly logger: Logger;
  /** Holds approval-gated calls; without it they are refused (WARDEN_APPROVAL_UNAVAILABLE). */
  readonly approvals?: ApprovalHolder;
  /** Whether a tool is configured to fail open (non-sensitive tools only) when the log is down. */
  readonly failsOpen?: (upstream: string, tool: string | undefined) => boolean;
  /** Revocations in force now: a held call whose token, agent or user is revoked never goes. */
  readonly revocations?: Pick<RevocationList, 'find' | 'refresh'>;
}

export function callFacts(call: McpRequestCall, context: ClientMessageContext): CallFacts {
  return {
    requestId: context.requestId,
    traceparent: context.traceparent,
    identity: context.identity,
    upstream: context.upstreamName,
    call,
  };
}
