/**
 * A replica with `policy_source: store` follows the pushed policy bundles: at start it takes the
 * newest (or, when none has been pushed, its file's policy, and says so), and then applies each
 * newly pushed bundle through the same path as a reload. PostgreSQL tells it of a push at once
 * (LISTEN/NOTIFY); a poll of the newest id catches what a lost notification (or SQLite, which has
 * none across processes) would miss. A bundle that does not load or compile here leaves the
 * running policy in force, and is logged and recorded (`policy.rejected`).
 */
import type { Config } from '../config/config.js';
import { applyBundleSections, readBundleSections } from '../config/policy-bundle.js';
import type { AuditEntry } from '../domain/audit-record.js';
import { ConfigError } from '../domain/errors.js';
import { createPolicyEngine } from '../policy/policy-engine.js';
import { PolicyLoadError } from '../policy/policy-load-error.js';
import type { PolicyBundle, Store } from '../store/types.js';
import type { Logger } from './logger.js';
import type { PolicyReload } from './policy.js';

/** Well inside the 2 s in which every replica applies a push, were a notification lost. */
const POLL_MS = 1_000;

export interface BundleContext {
  readonly store: Pick<Store, 'policyBundles'>;
  readonly logger: Logger;
  readonly record: (entry: AuditEntry) => Promise<void>;
  readonly now: () => number;
}

/** `running` with a stored bundle's policy and agents; throws ConfigError when it does not load. */
function configOfBundle(running: Config, bundle: PolicyBundle): Config {
  const source = `policy bundle #${bundle.id}`;
  const sections = readBundleSections(bundle.text, source);
  // The text is read back exactly as it was pushed, or the store was written around the CLI.
  if (sections.contentHash !== bundle.contentHash) {
    throw new ConfigError(source, [
      `its text does not match its content hash (${bundle.contentHash.slice(0, 12)}): it was changed in the store after the push`,
    ]);
  }
  return applyBundleSections(running, sections, source);
}

async function reject(
  context: BundleContext,
  running: Config,
  bundle: PolicyBundle,
  problems: readonly string[],
): Promise<void> {
  context.logger.error(
    { event: 'policy.rejected', bundle: bundle.id, problems },
    `policy bundle #${bundle.id} does not load on this replica; the running policy and agents stay in force`,
  );
  await context
    .record({
      event: 'policy.rejected',
      time: new Date(context.now()).toISOString(),
      environment: running.environment,
      details: { bundle: bundle.id, contentHash: bundle.contentHash, problems },
    })
    .catch((error: unknown) =>
      context.logger.error({ err: error }, 'could not record a rejected policy bundle'),
    );
}

/**
 * The configuration to start with: the newest pushed bundle's policy and agents over `config`,
 * or `config` itself (its file's) when none has been pushed or the newest does not load.
 */
export async function loadStartingPolicy(
  config: Config,
  context: BundleContext,
): Promise<{ readonly config: Config; readonly bundle: number | undefined }> {
  const newest = await context.store.policyBundles.latest();
  if (newest === undefined) {
    context.logger.warn(
      { policySource: 'store' },
      `no policy bundle has been pushed yet: the policy and agents of ${config.source} apply until one is (warden policy push)`,
    );
    return { config, bundle: undefined };
  }
  try {
    const loaded = configOfBundle(config, newest);
    createPolicyEngine(loaded.policy);
    context.logger.info(
      { policySource: 'store', bundle: newest.id },
      `policy and agents from pushed bundle #${newest.id}`,
    );
    return { config: loaded, bundle: newest.id };
  } catch (error) {
    if (!(error instanceof ConfigError) && !(error instanceof PolicyLoadError)) throw error;
    await reject(context, config, newest, problemsOf(error));
    context.logger.warn({}, `the policy and agents of ${config.source} apply instead`);
    return { config, bundle: undefined };
  }
}

export interface PolicyBundleFollower {
  /** Reads the newest bundle again and applies it, even when it is the one in force (SIGHUP). */
  refresh(): Promise<PolicyReload>;
  close(): Promise<void>;
}

export async function followPolicyBundles(
  options: BundleContext & {
    /** The configuration the bundles' sections replace policy and agents of. */
    readonly running: Config;
    /** The bundle in force at start, if any. */
    readonly started: number | undefined;
    /** Puts a configuration's policy and agents in force (the reload path). */
    readonly apply: (config: Config) => Promise<PolicyReload>;
    /** The version in force, for a refresh that finds nothing pushed. */
    readonly version: () => string;
  },
): Promise<PolicyBundleFollower> {
  const { store, logger, running } = options;
  /** The newest bundle already tried (applied or rejected): it is not tried again unasked. */
  let seen = options.started;
  let checking: Promise<PolicyReload> | undefined;
  let again = false;
  let closed = false;

  async function applyNewest(force: boolean): Promise<PolicyReload> {
    const newest = await store.policyBundles.latest();
    if (newest === undefined) {
      if (force) logger.info({}, 'no policy bundle has been pushed yet: the policy in force stays');
      return { ok: true, version: options.version(), needRestart: [] };
    }
    if (!force && newest.id === seen) {
      return { ok: true, version: options.version(), needRestart: [] };
    }
    seen = newest.id;
    let loaded: Config;
    try {
      loaded = configOfBundle(running, newest);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      await reject(options, running, newest, error.issues);
      return { ok: false, problems: error.issues };
    }
    const outcome = await options.apply(loaded);
    if (outcome.ok) {
      logger.info(
        { event: 'policy.applied', bundle: newest.id, version: outcome.version },
        `policy bundle #${newest.id} applied`,
      );
    } else {
      await reject(options, running, newest, outcome.problems);
    }
    return outcome;
  }

  /** One check at a time; a push heard during one is looked at right after it. */
  function check(force = false): Promise<PolicyReload> {
    if (checking !== undefined) {
      again = true;
      if (!force) return checking;
      return checking.then(() => check(true));
    }
    checking = (async () => {
      let outcome = await applyNewest(force);
      while (again && !closed) {
        again = false;
        outcome = await applyNewest(false);
      }
      return outcome;
    })().finally(() => {
      checking = undefined;
    });
    return checking;
  }

  const checkInBackground = (): void => {
    if (closed) return;
    check().catch((error: unknown) =>
      logger.warn({ err: error }, 'could not read the pushed policy bundles; trying again'),
    );
  };
  let unsubscribe: (() => Promise<void>) | undefined;
  try {
    unsubscribe = await store.policyBundles.subscribe(checkInBackground);
  } catch (error) {
    logger.warn({ err: error }, 'cannot listen for policy pushes; polling for them instead');
  }
  const poller = setInterval(checkInBackground, POLL_MS);
  poller.unref();
  // A push between the start's read and the subscription is not missed.
  checkInBackground();
  return {
    refresh: () => check(true),
    async close() {
      closed = true;
      clearInterval(poller);
      await unsubscribe?.();
      await checking?.catch(() => undefined);
    },
  };
}

function problemsOf(error: ConfigError | PolicyLoadError): readonly string[] {
  return error instanceof ConfigError ? error.issues : error.problems;
}
