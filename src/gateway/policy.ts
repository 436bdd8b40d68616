/**
 * Wires the policy stage for one gateway: the Cedar engine compiled from config, the run-time
 * inputs (policy states, break-glass grants), tool-definition pinning, the input-schema check
 * and quotas, behind the one authorizer the pipeline calls.
 */
import type { Config } from '../config/config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import { createMessageAuthorizer, type MessageAuthorizer } from '../policy/authorize-message.js';
import {
  decideUpstreamUse,
  indexUpstreamGrants,
  refuseWithoutUpstreamGrant,
  type UpstreamGrantIndex,
} from '../policy/may-use-upstream.js';
import { createInputSchemaChecker } from '../policy/input-schema-check.js';
import { PolicyLoadError } from '../policy/policy-load-error.js';
import { createPolicyEngine, type PolicyEngine } from '../policy/policy-engine.js';
import { createPolicyInputs } from '../policy/policy-inputs.js';
import { createToolCatalog } from '../policy/tool-catalog.js';
import type { Store } from '../store/types.js';
import type { Logger } from './logger.js';

export type PolicyReload =
  | { readonly ok: true; readonly version: string }
  | { readonly ok: false; readonly problems: readonly string[] };

export interface GatewayPolicy {
  readonly authorizer: MessageAuthorizer;
  engine(): PolicyEngine;
  /**
   * Compiles the policy of a newly loaded config and puts it in force; a policy that does not
   * compile leaves the running one in force and says why.
   */
  reload(config: Config): Promise<PolicyReload>;
  close(): void;
}

export async function setUpPolicy(
  config: Config,
  store: Store,
  logger: Logger,
  record: (entry: AuditEntry) => Promise<void>,
  now: () => number = Date.now,
  /** Told when an upstream changes an approved tool's definition. */
  onToolChanged?: (upstream: string, tool: string) => Promise<void>,
): Promise<GatewayPolicy> {
  let current = {
    engine: createPolicyEngine(config.policy),
    policy: config.policy,
    upstreamGrants: indexUpstreamGrants(config.policy),
  };
  const alert = (message: string, details: Record<string, unknown>) =>
    logger.warn({ alert: 'policy', ...details }, message);
  const inputs = await createPolicyInputs({
    policy: () => current.policy,
    store,
    now,
    onError: (error) =>
      logger.error({ err: error }, 'policy states could not be refreshed; the last known apply'),
  });
  const recordLoaded = (loaded: Config, engine: PolicyEngine, reload: boolean) =>
    record({
      event: 'policy.loaded',
      time: new Date(now()).toISOString(),
      environment: loaded.environment,
      details: {
        version: engine.version,
        reload,
        policies: engine.policyCount,
        grants: loaded.policy.grants.length,
        roles: [...loaded.policy.roles.keys()],
        files: loaded.policy.files,
        toolPinning: loaded.policy.toolPinning,
      },
    });
  await recordLoaded(config, current.engine, false);
  // A caller holding nothing on an upstream is refused before anything else is decided there.
  const authorizer = refuseWithoutUpstreamGrant(
    createMessageAuthorizer({
      engine: () => current.engine,
      policy: () => current.policy,
      inputs,
      catalog: createToolCatalog({
        store,
        mode: config.policy.toolPinning,
        now,
        record,
        alert,
        ...(onToolChanged !== undefined && { onDefinitionChanged: onToolChanged }),
      }),
      schemaChecker: createInputSchemaChecker(),
      store,
      now,
      record,
      alert,
    }),
    (identity, upstream) => {
      const at = now();
      return decideUpstreamUse(current.upstreamGrants, {
        identity,
        upstream,
        now: at,
        breakglass: inputs.breakglassFor(identity.agent, at),
      });
    },
  );
  return {
    authorizer,
    engine: () => current.engine,
    async reload(loaded) {
      let engine: PolicyEngine;
      let upstreamGrants: UpstreamGrantIndex;
      try {
        engine = createPolicyEngine(loaded.policy);
        upstreamGrants = indexUpstreamGrants(loaded.policy);
      } catch (error) {
        const problems = error instanceof PolicyLoadError ? error.problems : [String(error)];
        logger.error({ problems }, 'policy reload refused; the running policy stays in force');
        return { ok: false, problems };
      }
      current = { engine, policy: loaded.policy, upstreamGrants };
      await inputs.refresh();
      await recordLoaded(loaded, engine, true);
      logger.info({ version: engine.version }, 'policy reloaded');
      return { ok: true, version: engine.version };
    },
    close: () => inputs.close(),
  };
}
