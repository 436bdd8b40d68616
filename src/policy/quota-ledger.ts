/**
 * Quotas checked when a call is decided and charged only once its decision is in the audit log:
 * a call the log could not take (an outage) uses up no quota.
 *
 * Between the check and the charge lies the decision's durable append, so concurrent calls would
 * all pass a check that only some of them fit. Room is therefore claimed in this process when a
 * call is allowed, and every later check counts the room claimed before it: of ten concurrent
 * calls against a limit of three, seven are refused up front. The store stays the one authority:
 * the charge itself is atomic there, and a call that no longer fits then (a call on another
 * replica took the room) is refused with WARDEN_QUOTA_EXCEEDED after all.
 */
import type { QuotaConfig } from '../config/policy-config.js';
import type { QuotaCharge, QuotaOutcome, Store } from '../store/types.js';
import { refuse, type Authorization, type QuotaClaim } from './authorization.js';
import { describeExceeded, planQuotaCharges, type QuotaCall, type QuotaPlan } from './quotas.js';

/**
 * A claim older than this no longer holds room: a safety net, since every claim is charged or
 * released as its call goes ahead or not. The store's check, made at the charge, is unaffected.
 */
const CLAIM_LIFETIME_MS = 60_000;

export type QuotaCheck =
  | { readonly fits: true; readonly claim: QuotaClaim }
  | { readonly fits: false; readonly refusal: Authorization };

export interface QuotaLedger {
  /**
   * Whether the call fits its quotas now (nothing is charged), counting the room claimed by calls
   * decided in this process and not yet charged. `hold`: the room it fits in is claimed until the
   * claim is charged or released (for a call going ahead now, not one waiting for approval).
   */
  check(call: QuotaCall, options: { readonly hold: boolean }): Promise<QuotaCheck>;
}

interface HeldRoom {
  readonly at: number;
  readonly amounts: ReadonlyMap<string, number>;
}

export function createQuotaLedger(options: {
  /** The quotas in force (they change with a reload). */
  readonly quotas: () => readonly QuotaConfig[];
  readonly store: Pick<Store, 'quotas'>;
  readonly now: () => number;
}): QuotaLedger {
  const { store, now } = options;
  /** Room claimed and not yet charged, in the order it was claimed. */
  const held = new Set<HeldRoom>();

  /** What claims made before `mine` (all claims, without one) hold of `key`. */
  const heldBefore = (key: string, mine: HeldRoom | undefined, at: number): number => {
    let total = 0;
    for (const room of held) {
      if (room === mine) break;
      if (room.at <= at - CLAIM_LIFETIME_MS) held.delete(room);
      else total += room.amounts.get(key) ?? 0;
    }
    return total;
  };

  const exceeded = (plan: QuotaPlan & { ok: true }, outcome: QuotaOutcome, extra: number[]) => {
    const index = outcome.exceeded ?? 0;
    const quota = plan.quotas[index] as QuotaConfig;
    const used = (outcome.used[index] ?? 0) + (extra[index] ?? 0);
    return refuse('WARDEN_QUOTA_EXCEEDED', [describeExceeded(quota, used)], { quota: quota.name });
  };

  const unplannable = (plan: QuotaPlan & { ok: false }) =>
    refuse('WARDEN_QUOTA_EXCEEDED', [plan.reason], { quota: plan.quota });

  const storeFailed = (what: string, cause: unknown) =>
    refuse('WARDEN_POLICY_ERROR', [`quotas could not be ${what}, so the call is refused`], {
      cause: String(cause),
    });

  /** Charges the call under the quotas in force now; a refusal when it no longer fits. */
  const charge = async (call: QuotaCall): Promise<Authorization | undefined> => {
    const plan = planQuotaCharges(options.quotas(), call);
    if (!plan.ok) return unplannable(plan);
    if (plan.charges.length === 0) return undefined;
    let outcome: QuotaOutcome;
    try {
      outcome = await store.quotas.charge(plan.charges, now());
    } catch (cause) {
      return storeFailed('charged', cause);
    }
    return outcome.admitted ? undefined : exceeded(plan, outcome, []);
  };

  return {
    async check(call, { hold }) {
      const plan = planQuotaCharges(options.quotas(), call);
      if (!plan.ok) return { fits: false, refusal: unplannable(plan) };
      const at = now();
      let mine: HeldRoom | undefined;
      if (hold && plan.charges.length > 0) {
        mine = { at, amounts: amountsOf(plan.charges) };
        held.add(mine);
      }
      const release = () => {
        if (mine !== undefined) held.delete(mine);
      };
      if (plan.charges.length > 0) {
        // Claimed and counted in one synchronous step with the store's read: no check in between
        // can miss this claim or count one it should not.
        const claimed = plan.charges.map((c) => heldBefore(c.key, mine, at));
        const fitted = plan.charges.map((c, i) => ({ ...c, limit: c.limit - (claimed[i] ?? 0) }));
        let outcome: QuotaOutcome;
        try {
          outcome = await store.quotas.charge(fitted, at, { dryRun: true });
        } catch (cause) {
          release();
          return { fits: false, refusal: storeFailed('checked', cause) };
        }
        if (!outcome.admitted) {
          release();
          return { fits: false, refusal: exceeded(plan, outcome, claimed) };
        }
      }
      let settled = false;
      return {
        fits: true,
        claim: {
          charge() {
            if (settled) return Promise.resolve(undefined);
            settled = true;
            // Released as the charge goes to the store: from then on the store counts it.
            release();
            return charge(call);
          },
          release() {
            settled = true;
            release();
          },
        },
      };
    },
  };
}

function amountsOf(charges: readonly QuotaCharge[]): ReadonlyMap<string, number> {
  const amounts = new Map<string, number>();
  for (const { key, amount } of charges) amounts.set(key, (amounts.get(key) ?? 0) + amount);
  return amounts;
}
