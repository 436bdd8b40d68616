/**
 * Quotas held in the store: call rates and cumulative budgets (e.g. the sum of `amount` one agent
 * issues per day). Pure: which quotas a call falls under and what it would charge each. All of a
 * call's charges go to the store in one atomic operation (quota-ledger.ts), so concurrent calls
 * (on any replica) can never pass a limit together.
 */
import type { QuotaConfig } from '../config/policy-config.js';
import type { Identity } from '../domain/identity.js';
import type { QuotaCharge } from '../store/types.js';
import { valueAt } from './policy-engine.js';

/** A call as its quotas see it. */
export interface QuotaCall {
  readonly identity: Pick<Identity, 'agent' | 'user' | 'roles'>;
  /** `upstream.tool` */
  readonly target: string;
  readonly arguments: unknown;
}

/** What a call would charge: one charge per applying quota, in the same order. */
export type QuotaPlan =
  | {
      readonly ok: true;
      readonly quotas: readonly QuotaConfig[];
      readonly charges: readonly QuotaCharge[];
    }
  | { readonly ok: false; readonly quota: string; readonly reason: string };

/** The charges of every quota that applies to this call, or why one cannot be charged at all. */
export function planQuotaCharges(quotas: readonly QuotaConfig[], call: QuotaCall): QuotaPlan {
  const applying = quotas.filter(
    (quota) =>
      (quota.tool === undefined || quota.tool === call.target) &&
      (quota.role === undefined || call.identity.roles.includes(quota.role)),
  );
  const charges: QuotaCharge[] = [];
  for (const quota of applying) {
    let amount = 1;
    if (quota.sum !== undefined) {
      const value = valueAt(call.arguments, quota.sum);
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        return {
          ok: false,
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
  return { ok: true, quotas: applying, charges };
}

/** Why a call does not fit `quota`, of which `used` is already taken in its window. */
export function describeExceeded(quota: QuotaConfig, used: number): string {
  const what = quota.sum === undefined ? 'calls' : `total ${quota.sum}`;
  return `quota ${quota.name} exceeded: ${what} at most ${quota.limit} per ${describeWindow(quota.windowMs)} (used ${used})`;
}

function quotaKey(quota: QuotaConfig, call: QuotaCall): string {
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
