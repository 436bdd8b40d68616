/**
 * How an approval-gated call waits for its approval: `hold` (the call is held open) or `retry`
 * (answered at once with a pending result, made again once approved). A grant's
 * `approval_delivery` overrides `approvals.delivery`; when the grants gating a call disagree,
 * the global setting decides. `auto` is `retry` for every client: MCP tasks, where a client
 * supports them, are not offered yet.
 */
import type { ApprovalDelivery } from '../config/approvals-schema.js';
import type { GrantConfig } from '../config/policy-config.js';

export function deliveryOf(
  gatedBy: readonly string[],
  grants: readonly Pick<GrantConfig, 'id' | 'approvalDelivery'>[],
  configured: ApprovalDelivery,
): 'hold' | 'retry' {
  const said = new Set(
    grants.flatMap((grant) =>
      gatedBy.includes(grant.id) && grant.approvalDelivery !== undefined
        ? [grant.approvalDelivery]
        : [],
    ),
  );
  const [only] = said;
  const chosen = said.size === 1 && only !== undefined ? only : configured;
  return chosen === 'hold' ? 'hold' : 'retry';
}
