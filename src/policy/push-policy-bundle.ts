/**
 * Pushes a policy bundle (`warden policy push`): checks it as the loader and the policy compiler
 * would against the running configuration, stores it as the newest version, and records
 * `policy.pushed`. A bundle that does not load or compile is refused with every problem and
 * recorded as `policy.rejected`; the same content as the newest version is stored only once.
 */
import type { Config } from '../config/config.js';
import { applyBundleSections, readBundleSections } from '../config/policy-bundle.js';
import { ConfigError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { PolicyBundle, PolicyBundleRepository } from '../store/types.js';
import { PolicyLoadError } from './policy-load-error.js';

export interface PushPolicyBundleRequest {
  /** The file's text: a warden.yaml, or just its policy sections and agents. */
  readonly text: string;
  /** Where it came from, for messages and the audit record. */
  readonly file: string;
  /** `user@host` of whoever pushes. */
  readonly by: string;
}

export interface PushPolicyBundleDependencies extends OperationContext {
  /** The running configuration: the bundle is checked against its upstreams, approvers, auth. */
  readonly config: Config;
  readonly policyBundles: Pick<PolicyBundleRepository, 'push'>;
}

export interface PushedPolicyBundle {
  readonly bundle: PolicyBundle;
  /** False: the newest version holds this content already; nothing was stored. */
  readonly created: boolean;
  /** Top-level keys of the file that are not part of a bundle (listen, upstreams, …). */
  readonly ignored: readonly string[];
}

/**
 * Throws ConfigError (with the loader's messages) or PolicyLoadError (with the compiler's) for a
 * bundle that would not load, after recording the refusal.
 */
export async function pushPolicyBundle(
  dependencies: PushPolicyBundleDependencies,
  request: PushPolicyBundleRequest,
): Promise<PushedPolicyBundle> {
  const { config, record, now } = dependencies;
  let checked: { contentHash: string; text: string; ignored: readonly string[]; version: string };
  try {
    const bundle = readBundleSections(request.text, request.file);
    const loaded = applyBundleSections(config, bundle, request.file);
    // Loaded here: the Cedar engine is not for every command of an operator session.
    const { createPolicyEngine } = await import('./policy-engine.js');
    checked = { ...bundle, version: createPolicyEngine(loaded.policy).version };
  } catch (error) {
    if (error instanceof ConfigError || error instanceof PolicyLoadError) {
      await record({
        event: 'policy.rejected',
        time: new Date(now()).toISOString(),
        environment: dependencies.environment,
        details: {
          file: request.file,
          by: request.by,
          problems: error instanceof ConfigError ? error.issues : error.problems,
        },
      });
    }
    throw error;
  }
  const pushedAt = now();
  const { bundle, created } = await dependencies.policyBundles.push({
    contentHash: checked.contentHash,
    policyVersion: checked.version,
    text: checked.text,
    pushedAt,
    pushedBy: request.by,
  });
  if (created) {
    await record({
      event: 'policy.pushed',
      time: new Date(pushedAt).toISOString(),
      environment: dependencies.environment,
      details: {
        bundle: bundle.id,
        contentHash: bundle.contentHash,
        version: bundle.policyVersion,
        file: request.file,
        by: request.by,
      },
    });
  }
  return { bundle, created, ignored: checked.ignored };
}
