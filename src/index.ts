/**
 * Warden as a library: load a configuration and run the gateway in-process. The `warden` command
 * (src/cli) is a thin layer over these.
 */
export { loadConfigFile, parseConfig } from './config/load.js';
export type { Config } from './config/config.js';
export { startGateway } from './gateway/app.js';
export type { GatewayDependencies, RunningGateway } from './gateway/app.js';
export { applyV8Workarounds } from './gateway/v8-workarounds.js';
export { ConfigError, WardenError } from './domain/errors.js';
export type { Decision } from './domain/decision.js';
export { createPolicyEngine } from './policy/policy-engine.js';
export type { PolicyEngine, PolicyRequest } from './policy/policy-engine.js';
