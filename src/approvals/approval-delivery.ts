/**
 * How an approval-gated call waits for its approval: `hold` (the call is held open), `retry`
 * (answered at once with a pending result, made again once approved) or `task` (an MCP task, for
 * a client that asked for one; `retry` for any other). A grant's `approval_delivery` overrides
 * `approvals.delivery`; when the grants gating a call disagree, the global setting decides.
 * `auto` is `task`: a task where the client supports it, else `retry`.
 */
import type { ApprovalDelivery } from '../config/approvals-schema.js';
import type { GrantConfig } from '../config/policy-config.js';

export function deliveryOf(
  gatedBy: readonly string[],
  grants: readonly Pick<GrantConfig, 'id' | 'approvalDelivery'>[],
  configured: ApprovalDelivery,
): 'hold' | 'retry' | 'task' {
  const said = new Set<ApprovalDelivery>(
    grants.flatMap((grant) =>
      gatedBy.includes(grant.id) && grant.approvalDelivery !== undefined
        ? [grant.approvalDelivery]
        : [],
    ),
  );
  const [only] = said;
  const chosen = said.size === 1 && only !== undefined ? only : configured;
  return chosen === 'auto' ? 'task' : chosen;
}
