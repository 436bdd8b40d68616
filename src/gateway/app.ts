/**
 * The composition root: the only place that constructs concrete pieces and wires them together.
 */
import { createRevocationsApi } from '../admin/revocations-api.js';
import type { Server as HttpsServer } from 'node:https';
import type { Config, UpstreamConfig } from '../config/config.js';
import { createLegacyBridge, type LegacyBridge } from '../mcp/stateless/legacy-bridge.js';
import { createEraDetector } from '../mcp/stateless/upstream-era.js';
import { createOriginGuard, type OriginGuard } from '../http/origin-guard.js';
import { SessionRegistry } from '../mcp/session-registry.js';
import { guardWithCircuitBreaker, type GuardedConnector } from '../mcp/upstream/circuit-breaker.js';
import { createHttpUpstream, type HttpUpstreamOptions } from '../mcp/upstream/http-upstream.js';
import { createStdioUpstream } from '../mcp/upstream/stdio-upstream.js';
import { backgroundContext } from '../mcp/upstream/types.js';
import type { CallRecorder } from '../audit/call-recorder.js';
import type { RequestAuthenticator } from '../identity/authenticate-request.js';
import type { BuiltinIssuer } from '../identity/builtin-issuer.js';
import { revokeCredential } from '../identity/revoke-credential.js';
import { openStore } from '../store/open-store.js';
import type { Revocation } from '../store/types.js';
import { createAgentDirectory } from './agent-directory.js';
import { loadOrCreateHashKey } from '../audit/hash-key.js';
import { setUpAuditLog } from './audit-log.js';
import { setUpCluster } from './cluster/set-up-cluster.js';
import { setUpAuthentication } from './authentication.js';
import { createExchangeLedger, noteDecisionsIn, noteRecordsIn } from './exchange-ledger.js';
import { startListener } from './http-server.js';
import { setUpTlsListener } from './tls-listener.js';
import type { TlsReloadOutcome } from '../identity/tls-reloader.js';
import { createLogger, type Logger } from './logger.js';
import {
  authenticateRequest,
  createAdminAccessCheck,
  createMcpEndpoint,
  createMessageStages,
  type GatewayRoute,
  type McpEndpoint,
} from './pipeline/index.js';
import { setUpPolicy, type PolicyReload } from './policy.js';
import { followPolicyBundles, loadStartingPolicy } from './policy-bundles.js';
import { createRefusalRecords } from './refusal-records.js';
import { ADMIN_APPROVALS_PATH, setUpApprovals } from './approvals.js';
import { startMetricsListener } from './metrics/metrics-listener.js';
import { METRICS_PATH } from './metrics/metrics-route.js';
import { createGatewayMetrics } from './metrics/set-up-metrics.js';
import { setUpAlerts, type GatewayAlerts } from './alerts/set-up-alerts.js';
import { composeAppendObservers } from './alerts/compose-append-observers.js';

const PARKED_CALL_TIMEOUT_MS = 10 * 60_000;
const ADMIN_REVOCATIONS_PATH = '/admin/revocations';

export interface RunningGateway {
  /** Base URL, e.g. http://127.0.0.1:8080; upstream N is served at `${url}/mcp/N`. */
  readonly url: string;
  readonly port: number;
  /** The built-in token issuer, when configured: the demo prints tokens minted with it. */
  readonly issuer: BuiltinIssuer | undefined;
  /** Revokes at once on this replica, and on the others through the store. */
  revoke(revocation: Revocation): Promise<void>;
  /**
   * Puts the policy of a re-read config in force (roles, grants, scopes, lists, states, quotas,
   * Cedar files) with its agents; one that does not compile is refused and the running policy
   * and agents stay. Other changed sections are named in the outcome: they need a restart.
   * With `policy_source: store` the given config is not read: the newest pushed bundle is.
   */
  reloadPolicy(config: Config): Promise<PolicyReload>;
  /**
   * Re-reads the TLS certificate, key, client CAs and CRLs (their paths as started); a bad file
   * keeps the running ones. New connections get the new ones; open connections keep theirs.
   */
  reloadTls(): TlsReloadOutcome;
  /** Graceful stop: drains exchanges within the configured grace, then stops upstreams. */
  close(): Promise<void>;
}

export interface GatewayDependencies {
  readonly logger: Logger;
  /**
   * Replaces the configured authenticator. For embedding and benchmarks (to measure what
   * authentication costs); the CLI never sets it, so a deployed gateway always authenticates.
   */
  readonly authenticator: RequestAuthenticator;
  /**
   * Replaces the audit log's call recorder. For benchmarks only (to measure what the audit step
   * costs); the CLI never sets it, so a deployed gateway always records.
   */
  readonly recorder: CallRecorder;
}

export async function startGateway(
  config: Config,
  dependencies: Partial<GatewayDependencies> = {},
): Promise<RunningGateway> {
  const logger = dependencies.logger ?? createLogger(config.log.level);
  // What start-up has opened so far, in order. A failed start closes it as close() does.
  const opened: Closable[] = [];
  try {
    return await assembleGateway(config, dependencies, logger, opened);
  } catch (error) {
    await closeNewestFirst(opened, logger).catch(() => undefined);
    throw error;
  }
}

/** One thing the gateway opened, with the step that closes it; `name` is for the debug log. */
interface Closable {
  readonly name: string;
  close(): Promise<unknown> | void;
}

/**
 * Closes what was opened, newest first: each step only once every step opened after it (and so
 * possibly using it) has closed. A step that fails is logged and the rest still run; rejects with
 * the first failure once all have run.
 */
async function closeNewestFirst(opened: readonly Closable[], logger: Logger): Promise<void> {
  let failure: { error: unknown } | undefined;
  for (const step of [...opened].reverse()) {
    try {
      await step.close();
      logger.debug({ step: step.name }, `${step.name} closed`);
    } catch (error) {
      logger.error({ err: error, step: step.name }, `closing the ${step.name} failed`);
      failure ??= { error };
    }
  }
  if (failure !== undefined) throw failure.error;
}

async function assembleGateway(
  config: Config,
  dependencies: Partial<GatewayDependencies>,
  logger: Logger,
  opened: Closable[],
): Promise<RunningGateway> {
  const store = await openStore(config.store, {
    onError: (error) => logger.error({ err: error }, 'store background failure'),
  });
  opened.push({ name: 'store', close: () => store.close() });
  // Before anything is recorded: a second writer on this audit stream refuses to start here.
  let policyVersion = (): string => '';
  // Replicas found dead before the approvals service is up wait for it here.
  const goneBeforeApprovals: string[] = [];
  const orphans: { withdraw?: (replica: string) => Promise<void> } = {};
  const cluster = await setUpCluster({
    config,
    store,
    hashKey: loadOrCreateHashKey(config.audit.hashKeyFile),
    policyVersion: () => policyVersion(),
    logger,
    // A dead replica's held calls died with it: their requests must not stay pending.
    onReplicaGone: async (replica) => {
      if (orphans.withdraw === undefined) goneBeforeApprovals.push(replica.id);
      else await orphans.withdraw(replica.id);
    },
  });
  // Leaves last: its sessions have ended by then.
  opened.push({ name: 'cluster membership', close: () => cluster.close() });
  // Every record is noted against its exchange, so the listener can record what none tells.
  const ledger = createExchangeLedger();
  // Counted from the audit log's appended records: what the log tells, the metrics count.
  const metrics = config.metrics.enabled ? createGatewayMetrics(config) : undefined;
  // Alerts watch the same records, beside the metrics (neither replaces the other).
  const alerts = setUpAlerts(config, logger);
  const auditLog = noteRecordsIn(
    await setUpAuditLog(
      config,
      store,
      logger,
      composeAppendObservers(metrics?.onAppended, alerts?.onAppended),
      alerts && ((error, entry) => alerts.auditUnavailable(error, entry)),
    ),
    ledger,
  );
  opened.push({ name: 'audit log', close: () => auditLog.close() });
  if (alerts !== undefined) {
    alerts.recordWith(auditLog.note);
    // Closes before the audit log, so the last deliveries are recorded.
    opened.push({ name: 'alerts', close: () => alerts.close() });
  }
  const refusals = createRefusalRecords({
    logger,
    environment: config.environment,
    note: auditLog.note,
  });
  // Its pending summaries are recorded before the audit log closes.
  opened.push({ name: 'refusal records', close: () => refusals.flush() });
  // The admin API's role check, on the caller the pipeline's authenticate stage named.
  const authenticateAdmin = createAdminAccessCheck({ ledger, refusals });
  // policy_source: store starts from the newest pushed bundle's policy and agents.
  const bundleContext = { store, logger, record: auditLog.record, now: Date.now };
  const starting =
    config.policy.source === 'store'
      ? await loadStartingPolicy(config, bundleContext)
      : { config, bundle: undefined };
  // One registry for the authenticator and the policy: a reload replaces its agents.
  const agents = createAgentDirectory(starting.config.agents);
  const authentication = await setUpAuthentication(
    { ...config, agents },
    store,
    logger,
    auditLog.note,
  );
  // Its close records pending summaries of refused token requests, before the audit log closes.
  opened.push({ name: 'authentication', close: () => authentication.close() });
  const policy = await setUpPolicy(
    starting.config,
    agents,
    store,
    logger,
    auditLog.record,
    Date.now,
    (upstream, tool) =>
      approvals
        .invalidatePending(
          (request) => request.upstream === upstream && request.tool === tool,
          `the upstream changed the definition of ${upstream}.${tool} while the request waited`,
        )
        .then(
          () => undefined,
          (error: unknown) =>
            logger.error(
              { err: error },
              'could not invalidate pending approvals of a changed tool',
            ),
        ),
  );
  opened.push({ name: 'policy', close: () => policy.close() });
  policyVersion = () => policy.engine().version;
  await metrics
    ?.learnPinnedTools(store)
    .catch((error: unknown) => logger.error({ err: error }, 'metrics could not read pinned tools'));
  const authenticator = dependencies.authenticator ?? authentication.authenticator;
  const approvals = setUpApprovals(
    config,
    store,
    auditLog,
    logger,
    authenticateAdmin,
    Date.now,
    () => policy.config().grants,
  );
  // Lets pending webhook deliveries finish.
  opened.push({ name: 'approvals', close: () => approvals.close() });
  const withdrawHeldBy = async (replica: string): Promise<void> => {
    const withdrawn = await approvals.withdrawHeldBy(replica);
    if (withdrawn.length > 0) {
      logger.warn(
        { event: 'approval.withdrawn', replica, approvals: withdrawn },
        'withdrew the approvals whose calls a stopped replica held open',
      );
    }
  };
  // Calls this replica held open before a crash died with it, as did those of replicas found
  // dead while it started: withdraw what they left pending.
  orphans.withdraw = withdrawHeldBy;
  for (const replica of [config.cluster.replica, ...goneBeforeApprovals]) {
    await withdrawHeldBy(replica).catch((error: unknown) =>
      logger.error({ err: error, replica }, 'could not withdraw orphaned approvals'),
    );
  }
  // The one path by which a re-read file or a pushed bundle puts policy and agents in force.
  const applyPolicy = async (reloaded: Config): Promise<PolicyReload> => {
    const outcome = await policy.reload(reloaded);
    if (outcome.ok) {
      // An approver must never answer a question the new policy would ask differently.
      await approvals
        .invalidatePending(
          (request) => request.policyVersion !== outcome.version,
          'the policy was reloaded while the request waited',
        )
        .catch((error: unknown) =>
          logger.error({ err: error }, 'could not invalidate pending approvals after a reload'),
        );
    }
    return outcome;
  };
  const bundles =
    config.policy.source === 'store'
      ? await followPolicyBundles({
          ...bundleContext,
          running: config,
          started: starting.bundle,
          apply: applyPolicy,
          version: () => policy.engine().version,
        })
      : undefined;
  if (bundles !== undefined) opened.push({ name: 'policy bundles', close: () => bundles.close() });
  // Upstreams open after what records and decides, so they close before it.
  const connectors = [...config.upstreams.values()].map((upstream) =>
    createConnector(
      upstream,
      logger,
      config.limits.reclaimIdleAfterMs,
      {
        ...(authentication.subjectTokenSigner && { signer: authentication.subjectTokenSigner }),
      },
      alerts,
    ),
  );
  opened.push({
    name: 'upstreams',
    close: () => Promise.all(connectors.map((connector) => connector.close())),
  });
  const sessions = new SessionRegistry(
    {
      maxSessions: config.limits.maxSessions,
      maxPerAgent: config.limits.maxSessionsPerAgent,
      idleTimeoutMs: config.limits.sessionIdleTimeoutMs,
    },
    (session, reason) => {
      logger.info(
        { event: 'session.ended', reason, upstream: session.upstreamName, agent: session.agent },
        'client session ended',
      );
      // Also for a reclaimed stdio child: the session must not start a new one for a late request.
      void session.upstream
        .terminate(backgroundContext(`session-${reason}`))
        .catch(() => undefined);
    },
  );
  opened.push({ name: 'client sessions', close: () => sessions.close() });
  const { homes } = cluster;
  if (homes !== undefined) sessions.onForget = (session) => homes.forget(session.id);
  metrics?.readGaugesFrom({
    auditQueued: () => auditLog.queued(),
    circuits: () =>
      connectors.map((connector) => ({ upstream: connector.name, state: connector.state() })),
    sessionUpstreams: () => sessions.all().map((session) => session.upstreamName),
    pendingApprovals: async (limit) =>
      (await store.approvals.list({ status: 'pending', limit })).length,
    onReadError: (error) => logger.warn({ err: error }, 'metrics could not read pending approvals'),
  });
  const messageStages = createMessageStages({
    authorizer: metrics ? metrics.timeDecisions(policy.authorizer) : policy.authorizer,
    recorder:
      dependencies.recorder === undefined
        ? auditLog.recorder
        : noteDecisionsIn(dependencies.recorder, ledger),
    logger,
    approvals: approvals.holder,
    failsOpen: (upstream, tool) =>
      tool !== undefined && config.upstreams.get(upstream)?.tools.get(tool)?.onFailure === 'open',
    revocations: authentication.revocations,
    policy: () => policy.config(),
  });
  const eraOf = createEraDetector();
  // A parked multi round-trip call waits as long as a person may take to answer an elicitation.
  const bridges = connectors.map((upstream) =>
    createLegacyBridge({
      connector: upstream,
      parkTimeoutMs: PARKED_CALL_TIMEOUT_MS,
      signer: cluster.requestStates,
      maxIdlePerAgent: config.limits.maxSessionsPerAgent,
      maxParkedPerAgent: config.limits.maxSessionsPerAgent,
    }),
  );
  opened.push({
    name: 'legacy bridges',
    close: () => Promise.all(bridges.map((bridge) => bridge.close())),
  });
  const endpoints = new Map<string, McpEndpoint>(
    connectors.map((upstream, index) => [
      upstream.name,
      createMcpEndpoint({
        upstream,
        sessions,
        homes,
        requestStates: cluster.requestStates,
        maxBodyBytes: config.limits.maxBodyBytes,
        maxJsonDepth: config.limits.maxJsonDepth,
        messageStages,
        modern: { bridge: bridges[index] as LegacyBridge, eraOf },
      }),
    ]),
  );

  const revocationsApi = createRevocationsApi({
    authenticate: authenticateAdmin,
    revoke: async (request) => {
      const revocation = await revokeCredential(
        {
          environment: config.environment,
          now: Date.now,
          record: auditLog.record,
          auth: config.auth,
          // In force on this replica at once, and on the others through the store.
          revocations: { add: (entry) => authentication.revocations.revoke(entry) },
        },
        request,
      );
      logger.warn({ event: 'token.revoked', ...revocation }, 'revoked');
      return revocation;
    },
  });
  const metricsRoute = metrics?.route({ ledger, refusals });
  // The guard needs the bound port, known only after listen (port 0 in tests).
  const guard: { current: OriginGuard } = { current: failClosedGuard };
  const tlsListener =
    config.listen.tls &&
    setUpTlsListener({
      tls: config.listen.tls,
      environment: config.environment,
      logger,
      note: auditLog.note,
      isSerialRevoked: (serial) => authentication.revocations.findCertificate(serial) !== undefined,
    });
  const listener = await startListener({
    host: config.listen.host,
    port: config.listen.port,
    tls: tlsListener?.serverOptions,
    ...(tlsListener && { tlsHandshakes: tlsListener }),
    stages: {
      endpoints,
      route: (path): GatewayRoute | undefined => {
        if (path === ADMIN_REVOCATIONS_PATH) {
          return { handler: revocationsApi, access: 'authenticated' };
        }
        if (path === ADMIN_APPROVALS_PATH || path.startsWith(`${ADMIN_APPROVALS_PATH}/`)) {
          return { handler: approvals.api, access: 'authenticated' };
        }
        // With a listener of their own, the metrics are not served here at all.
        if (path === METRICS_PATH && metricsRoute && config.metrics.listen === undefined) {
          return metricsRoute;
        }
        const handler = authentication.route(path);
        return handler && { handler, access: 'public' };
      },
      authenticate: (request, upstream) =>
        authenticateRequest(authenticator, request, upstream, homes?.certificateOf(request)),
      homes,
      holdsSession: (id) => sessions.holds(id),
      cluster: () => cluster.membership.report(),
      isCallerRefusal: (error) => authentication.isCallerRefusal(error),
      challenge: (error, upstream) => authentication.challenge(error, upstream),
      refusals,
      guard: () => guard.current,
      isReady: () => true,
    },
    ledger,
    timeouts: {
      headersMs: config.limits.headersTimeoutMs,
      requestMs: config.limits.requestTimeoutMs,
    },
    logger,
  });
  if (tlsListener) {
    tlsListener.attach(listener.server as HttpsServer);
    opened.push({ name: 'tls files', close: () => tlsListener.close() });
  }
  // The listener drains exchanges within the grace before anything they use closes.
  opened.push({
    name: 'listener',
    close: () => listener.close(config.limits.shutdownGraceMs),
  });
  if (metricsRoute && config.metrics.listen) {
    const metricsListener = await startMetricsListener({
      ...config.metrics.listen,
      route: metricsRoute,
      refusals,
      cluster: () => cluster.membership.report(),
      ledger,
      timeouts: {
        headersMs: config.limits.headersTimeoutMs,
        requestMs: config.limits.requestTimeoutMs,
      },
      logger,
    });
    opened.push({ name: 'metrics listener', close: () => metricsListener.close(0) });
    logger.info(
      { port: metricsListener.port, host: config.metrics.listen.host },
      'metrics listening',
    );
  }
  guard.current = createOriginGuard({
    listenHost: config.listen.host,
    port: listener.port,
    allowedHosts: config.listen.allowedHosts,
    allowedOrigins: config.listen.allowedOrigins,
  });
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const scheme = config.listen.tls ? 'https' : 'http';
  const url = `${scheme}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${listener.port}`;
  logger.info(
    { url, upstreams: [...endpoints.keys()], environment: config.environment },
    'warden listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port: listener.port,
    issuer: authentication.issuer,
    revoke: (revocation) => authentication.revocations.revoke(revocation),
    // A store-sourced replica re-reads the store, not the file it was given.
    reloadPolicy: (reloaded) => (bundles === undefined ? applyPolicy(reloaded) : bundles.refresh()),
    reloadTls: () =>
      tlsListener ? tlsListener.reload() : { ok: false, problems: ['listen.tls is not set'] },
    close() {
      closing ??= (async () => {
        logger.info({}, 'warden shutting down');
        await closeNewestFirst(opened, logger);
        logger.info({}, 'warden stopped');
      })();
      return closing;
    },
  };
}

function createConnector(
  upstream: UpstreamConfig,
  logger: Logger,
  reclaimIdleAfterMs: number,
  httpOptions: HttpUpstreamOptions,
  alerts: Pick<GatewayAlerts, 'circuitChanged'> | undefined,
): GuardedConnector {
  const connector =
    upstream.kind === 'http'
      ? createHttpUpstream(upstream, httpOptions)
      : createStdioUpstream(upstream, logger, { reclaimIdleAfterMs });
  return guardWithCircuitBreaker(connector, {
    ...upstream.circuitBreaker,
    onStateChange: (change) => {
      logger.warn({ event: 'upstream.circuit', ...change }, 'upstream circuit changed state');
      alerts?.circuitChanged(change);
    },
  });
}

const failClosedGuard: OriginGuard = {
  check() {
    throw new Error('listener not ready');
  },
};
