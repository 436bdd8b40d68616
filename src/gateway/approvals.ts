/**
 * Wires approvals for one gateway: the service that holds approval-gated calls (its records go to
 * this replica's audit chain), webhook notifications, and the admin API through which
 * approvers decide with their own token. Decisions made here release a held call at once; those
 * made by the CLI or another replica are seen by polling the store.
 */
import { createApprovalsApi } from '../admin/approvals-api.js';
import { traceIdOf } from '../audit/call-entry.js';
import { deliveryOf } from '../approvals/approval-delivery.js';
import { createApprovalNotifier } from '../approvals/approval-notifier.js';
import { createApprovalService, type ApprovalService } from '../approvals/approval-service.js';
import type { Config } from '../config/config.js';
import type { GrantConfig } from '../config/policy-config.js';
import type { Identity } from '../domain/identity.js';
import type { Store } from '../store/types.js';
import type { GatewayAuditLog } from './audit-log.js';
import type { Logger } from './logger.js';
import type { ApprovalHolder } from './pipeline/index.js';

export const ADMIN_APPROVALS_PATH = '/admin/approvals';

export interface GatewayApprovals {
  readonly holder: ApprovalHolder;
  /** The admin API handler, for `/admin/approvals` and below. */
  readonly api: ReturnType<typeof createApprovalsApi>;
  /**
   * Invalidates the pending requests a change makes stale (a reloaded policy, a changed tool
   * definition): approvers are told, and the held calls are refused with WARDEN_APPROVAL_STALE.
   */
  invalidatePending: ApprovalService['invalidatePending'];
  /** Withdraws the requests a stopped or dead replica held calls open for. */
  withdrawHeldBy: ApprovalService['withdrawHeldBy'];
  /** Lets pending webhook deliveries finish. */
  close(): Promise<void>;
}

export function setUpApprovals(
  config: Config,
  store: Store,
  auditLog: GatewayAuditLog,
  logger: Logger,
  authenticate: (
    request: Parameters<ReturnType<typeof createApprovalsApi>>[0],
  ) => Promise<Identity>,
  now: () => number = Date.now,
  /** The grants in force (they change on reload), for their `approval_delivery`. */
  grants: () => readonly GrantConfig[] = () => [],
): GatewayApprovals {
  const notifier = createApprovalNotifier({
    webhooks: config.approvals.webhooks,
    onError: (error) =>
      logger.warn({ alert: 'approval_webhook_failed', err: error }, 'approval webhook failed'),
  });
  const service = createApprovalService({
    store,
    replica: config.cluster.replica,
    config: config.approvals,
    now,
    record: auditLog.record,
    notify: (request) => {
      logger.warn(
        {
          event: 'approval.requested',
          approval: request.id,
          tool: `${request.upstream}.${request.tool}`,
        },
        'a call waits for approval',
      );
      notifier.notify(request);
    },
    notifyInvalidated: (request, reason) => {
      logger.warn(
        { event: 'approval.invalidated', approval: request.id, reason },
        'an approval request was invalidated',
      );
      notifier.notifyInvalidated(request, reason);
    },
    onError: (error, message) => logger.error({ err: error }, message),
    environment: config.environment,
    progressEveryMs: config.approvals.progressIntervalMs,
  });
  // The call as the service holds it: with its trace id and the audit log's arguments hash.
  const toHeldCall = <T extends { traceparent: string | undefined; arguments: unknown }>({
    traceparent,
    ...call
  }: T) => {
    const traceId = traceIdOf(traceparent);
    return {
      ...call,
      ...(traceId !== undefined && { traceId }),
      argumentsHash: auditLog.hashArguments(call.arguments),
    };
  };
  const holder: ApprovalHolder = {
    deliveryFor: (decision) =>
      deliveryOf(decision.approval?.grants ?? [], grants(), config.approvals.delivery),
    offersTasks: () =>
      grants().some((grant) => ['auto', 'task'].includes(grant.approvalDelivery ?? '')) ||
      ['auto', 'task'].includes(config.approvals.delivery),
    notifiesByElicitation: () => config.approvals.notifyElicitation,
    hold: (call) => service.hold(toHeldCall(call)),
    answerRetry: (call) => service.answerRetry(toHeldCall(call)),
    get: (id) => service.get(id),
    cancelTask: (request) => service.cancelTask(request),
  };
  const api = createApprovalsApi({
    authenticate,
    approvals: service,
    approvers: config.approvals.approvers,
    basePath: ADMIN_APPROVALS_PATH,
  });
  return {
    holder,
    api,
    invalidatePending: (affected, reason) => service.invalidatePending(affected, reason),
    withdrawHeldBy: (replica) => service.withdrawHeldBy(replica),
    close: () => notifier.idle(),
  };
}
