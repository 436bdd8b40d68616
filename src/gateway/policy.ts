/**
 * Wires the policy stage for one gateway: the Cedar engine compiled from config, the run-time
 * inputs (policy states, break-glass grants), tool-definition pinning, the input-schema check
 * and quotas, behind the one authorizer the pipeline calls.
 */
import type { Config } from '../config/config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import { createMessageAuthorizer, type MessageAuthorizer } from '../policy/authorize-message.js';
import { createInputSchemaChecker } from '../policy/input-schema-check.js';
import { createPolicyEngine, type PolicyEngine } from '../policy/policy-engine.js';
import { createPolicyInputs } from '../policy/policy-inputs.js';
import { createToolCatalog } from '../policy/tool-catalog.js';
import type { Store } from '../store/types.js';
import type { Logger } from './logger.js';

export interface GatewayPolicy {
  readonly authorizer: MessageAuthorizer;
  readonly engine: PolicyEngine;
  close(): void;
}

export async function setUpPolicy(
  config: Config,
  store: Store,
  logger: Logger,
  record: (entry: AuditEntry) => Promise<void>,
  now: () => number = Date.now,
): Promise<GatewayPolicy> {
  const engine = createPolicyEngine(config.policy);
  const alert = (message: string, details: Record<string, unknown>) =>
    logger.warn({ alert: 'policy', ...details }, message);
  const inputs = await createPolicyInputs({
    policy: config.policy,
    store,
    now,
    onError: (error) =>
      logger.error({ err: error }, 'policy states could not be refreshed; the last known apply'),
  });
  await record({
    event: 'policy.loaded',
    time: new Date(now()).toISOString(),
    environment: config.environment,
    details: {
      version: engine.version,
      policies: engine.policyCount,
      grants: config.policy.grants.length,
      roles: [...config.policy.roles.keys()],
      files: config.policy.files,
      toolPinning: config.policy.toolPinning,
    },
  });
  const authorizer = createMessageAuthorizer({
    engine: () => engine,
    policy: config.policy,
    inputs,
    catalog: createToolCatalog({ store, mode: config.policy.toolPinning, now, record, alert }),
    schemaChecker: createInputSchemaChecker(),
    store,
    now,
    record,
    alert,
  });
  return { authorizer, engine, close: () => inputs.close() };
}
