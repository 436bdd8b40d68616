/**
 * Quotas held in the store: call rates and cumulative budgets (e.g. the sum of `amount` one agent
 * issues per day). All the quotas a call falls under are charged in one atomic store operation,
 * so concurrent calls (on any replica) can never pass a limit together.
 */
import type { QuotaConfig } from '../config/policy-config.js';
import type { Identity } from '../domain/identity.js';
import type { QuotaCharge, Store } from '../store/types.js';
import { valueAt } from './policy-engine.js';

export type QuotaVerdict =
  | { readonly admitted: true; readonly charged: readonly string[] }
  | { readonly admitted: false; readonly quota: string; readonly reason: string };

/**
 * Charges every quota that applies to this call; none is charged when any would overflow.
 * With `dryRun`, only tells whether the call would fit now and charges nothing.
 */
export async function chargeQuotas(
  quotas: readonly QuotaConfig[],
  store: Pick<Store, 'quotas'>,
  call: {
    readonly identity: Pick<Identity, 'agent' | 'user' | 'roles'>;
    readonly target: string;
    readonly arguments: unknown;
    readonly now: number;
  },
  options: { readonly dryRun?: boolean } = {},
): Promise<QuotaVerdict> {
  const applying = quotas.filter(
    (quota) =>
      (quota.tool === undefined || quota.tool === call.target) &&
      (quota.role === undefined || call.identity.roles.includes(quota.role)),
  );
  if (applying.length === 0) return { admitted: true, charged: [] };
  const charges: QuotaCharge[] = [];
  for (const quota of applying) {
    let amount = 1;
    if (quota.sum !== undefined) {
      const value = valueAt(call.arguments, quota.sum);
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        return {
          admitted: false,
          quota: quota.name,
          reason: `quota ${quota.name} sums ${quota.sum}, which must be a non-negative number`,
        };
      }
      amount = value;
    }
    charges.push({
      key: quotaKey(quota, call),
      amount,
      limit: quota.limit,
      windowMs: quota.windowMs,
    });
  }
  const outcome = await store.quotas.charge(charges, call.now, options);
  if (outcome.admitted) return { admitted: true, charged: applying.map((q) => q.name) };
  const index = outcome.exceeded ?? 0;
  const quota = applying[index] as QuotaConfig;
  const used = outcome.used[index] ?? 0;
  const what = quota.sum === undefined ? 'calls' : `total ${quota.sum}`;
  return {
    admitted: false,
    quota: quota.name,
    reason: `quota ${quota.name} exceeded: ${what} at most ${quota.limit} per ${describeWindow(quota.windowMs)} (used ${used})`,
  };
}

function quotaKey(
  quota: QuotaConfig,
  call: { identity: Pick<Identity, 'agent' | 'user' | 'roles'>; target: string },
): string {
  const scope = quota.tool ?? 'all';
  switch (quota.per) {
    case 'agent':
      return `${quota.name}|agent|${call.identity.agent}|${scope}`;
    case 'user':
      return `${quota.name}|user|${call.identity.user ?? `agent:${call.identity.agent}`}|${scope}`;
    case 'role':
      return `${quota.name}|role|${quota.role ?? [...call.identity.roles].sort().join(',')}|${scope}`;
    case 'tool':
      return `${quota.name}|tool|${call.target}`;
  }
}

function describeWindow(ms: number): string {
  if (ms % 86_400_000 === 0) return ms === 86_400_000 ? 'day' : `${ms / 86_400_000} days`;
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000} hours`;
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000} minutes`;
  return `${ms / 1000} s`;
}
