/**
 * Wires the policy stage for one gateway: the Cedar engine compiled from config, the run-time
 * inputs (policy states, break-glass grants), tool-definition pinning, the input-schema check
 * and quotas, behind the one authorizer the pipeline calls. A reload puts a new policy and agent
 * registry in force together, and says which other changed sections wait for a restart.
 */
import { listSectionsNeedingRestart, type ConfigSection } from '../config/changed-sections.js';
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
import type { PolicyConfig } from '../config/policy-config.js';
import type { Store } from '../store/types.js';
import type { AgentDirectory } from './agent-directory.js';
import type { Logger } from './logger.js';
import { watchForUnlistedGrants } from './unlisted-grant-watch.js';

export type PolicyReload =
  | {
      readonly ok: true;
      readonly version: string;
      /** Changed sections of the file a reload does not apply (listen, upstreams, …). */
      readonly needRestart: readonly ConfigSection[];
    }
  | { readonly ok: false; readonly problems: readonly string[] };

export interface GatewayPolicy {
  readonly authorizer: MessageAuthorizer;
  engine(): PolicyEngine;
  /** The policy in force (it changes on reload). */
  config(): PolicyConfig;
  /**
   * Compiles the policy of a newly loaded config and puts it in force with its agent registry; a
   * policy that does not compile leaves the running policy and agents in force and says why.
   */
  reload(config: Config): Promise<PolicyReload>;
  close(): void;
}

export async function setUpPolicy(
  config: Config,
  /** The registry the authenticator reads; a reload replaces its agents with the policy. */
  agents: AgentDirectory,
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
        agents: [...loaded.agents.keys()],
        files: loaded.policy.files,
        toolPinning: loaded.policy.toolPinning,
      },
    });
  await recordLoaded(config, current.engine, false);
  const unlistedGrants = watchForUnlistedGrants(
    createToolCatalog({
      store,
      mode: config.policy.toolPinning,
      now,
      record,
      alert,
      ...(onToolChanged !== undefined && { onDefinitionChanged: onToolChanged }),
    }),
    {
      policy: () => ({ version: current.engine.version, config: current.policy }),
      environment: config.environment,
      now,
      record,
      alert,
      onError: (error) =>
        logger.error({ err: error }, 'could not record grants naming unlisted tools'),
    },
  );
  // A caller holding nothing on an upstream is refused before anything else is decided there.
  const authorizer = refuseWithoutUpstreamGrant(
    createMessageAuthorizer({
      engine: () => current.engine,
      policy: () => current.policy,
      inputs,
      catalog: unlistedGrants.catalog,
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
    config: () => current.policy,
    async reload(loaded) {
      let engine: PolicyEngine;
      let upstreamGrants: UpstreamGrantIndex;
      try {
        engine = createPolicyEngine(loaded.policy);
        upstreamGrants = indexUpstreamGrants(loaded.policy);
      } catch (error) {
        const problems = error instanceof PolicyLoadError ? error.problems : [String(error)];
        logger.error({ problems }, 'reload refused; the running policy and agents stay in force');
        return { ok: false, problems };
      }
      // One step: no request sees the new policy with the old agents, or the other way round.
      current = { engine, policy: loaded.policy, upstreamGrants };
      agents.replace(loaded.agents);
      await inputs.refresh();
      await recordLoaded(loaded, engine, true);
      const needRestart = listSectionsNeedingRestart(config, loaded);
      if (loaded.policy.source !== config.policy.source) {
        // Whether the store is followed is decided at start (gateway/policy-bundles.ts).
        logger.warn(
          { policySource: loaded.policy.source },
          `policy_source changed to ${loaded.policy.source}: restart to apply`,
        );
      }
      logger.info(
        { version: engine.version, agents: loaded.agents.size, needRestart },
        'policy and agents reloaded',
      );
      if (needRestart.length > 0) {
        logger.warn(
          { needRestart },
          `changed in the config but not reloaded, restart to apply: ${needRestart.join(', ')}`,
        );
      }
      await unlistedGrants.recheck();
      return { ok: true, version: engine.version, needRestart };
    },
    close: () => inputs.close(),
  };
}
