/**
 * What operators change at run time and every decision reads: policy states (`warden policy state
 * set payments_freeze on`) and break-glass grants. Kept in memory and refreshed from the store
 * every half second, so a change made by the CLI or on another replica applies within that.
 */
import type { PolicyConfig } from '../config/policy-config.js';
import type { BreakGlassGrant, Store } from '../store/types.js';

export const POLICY_INPUTS_REFRESH_MS = 500;
const NONE: ReadonlyMap<string, string> = new Map();

export interface PolicyInputs {
  /** Every configured state: the operator's value, else the configured default. */
  states(): ReadonlyMap<string, boolean>;
  /** The `upstream.tool` targets this agent holds an unexpired break-glass grant for, and their ids. */
  breakglassFor(agent: string, now: number): ReadonlyMap<string, string>;
  /** Reads the store now (after a local change, so it applies at once). */
  refresh(): Promise<void>;
  close(): void;
}

export async function createPolicyInputs(options: {
  /** The policy in force (its states and their defaults may change with a reload). */
  readonly policy: () => PolicyConfig;
  readonly store: Pick<Store, 'policyStates' | 'breakGlass'>;
  readonly now: () => number;
  readonly onError: (error: unknown) => void;
  readonly refreshMs?: number;
}): Promise<PolicyInputs> {
  const { store, now } = options;
  let states: ReadonlyMap<string, boolean> = new Map(options.policy().states);
  let grants: readonly BreakGlassGrant[] = [];

  const refresh = async () => {
    const [stored, active] = await Promise.all([
      store.policyStates.list(),
      store.breakGlass.listActive(now()),
    ]);
    const next = new Map(options.policy().states);
    // A state set in the store but no longer configured is ignored: Cedar's schema has no slot for it.
    for (const state of stored) if (next.has(state.name)) next.set(state.name, state.on);
    states = next;
    grants = active;
  };
  // The first read must succeed: deciding with a freeze unknown would be deciding blind.
  await refresh();
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    refresh()
      .catch(options.onError)
      .finally(() => {
        running = false;
      });
  }, options.refreshMs ?? POLICY_INPUTS_REFRESH_MS);
  timer.unref();

  return {
    states: () => states,
    breakglassFor(agent, at) {
      if (grants.length === 0) return NONE;
      const targets = new Map<string, string>();
      for (const grant of grants) {
        if (grant.agent === agent && grant.expiresAt > at && grant.revokedAt === undefined) {
          targets.set(grant.tool, grant.id);
        }
      }
      return targets;
    },
    refresh,
    close: () => clearInterval(timer),
  };
}
