/**
 * Charge quotas (policy/): only once the call's decision is recorded, so an audit outage uses up
 * no quota. A call that no longer fits (a concurrent call took the room since the check) is
 * refused after all (WARDEN_QUOTA_EXCEEDED), and that refusal recorded.
 */
import type { CallFacts } from '../../audit/call-entry.js';
import type { CallRecorder } from '../../audit/call-recorder.js';
import { WardenError } from '../../domain/errors.js';
import type { Authorization } from '../../policy/authorize-message.js';
import { recordDenial } from './record-decision.js';

export async function chargeQuotas(
  facts: CallFacts,
  authorization: Authorization,
  recorder: CallRecorder,
): Promise<void> {
  const overQuota = await authorization.quotas?.charge();
  if (overQuota === undefined) return;
  await recordDenial(
    recorder,
    facts,
    overQuota.decision,
    overQuota.error ?? new WardenError('WARDEN_QUOTA_EXCEEDED'),
  );
}

/**
 * Runs the stages between the quota check and the charge: a call that does not go ahead (refused
 * at approval, or a decision the log could not take) leaves its quotas unspent.
 */
export async function releasingQuotasOnFailure<T>(
  authorization: Authorization,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    authorization.quotas?.release();
    throw error;
  }
}
