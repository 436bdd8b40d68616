/**
 * The last stage, run when the exchange ends: a refusal that no record tells yet (no decision,
 * no authentication failure, no approval record) becomes a `request.refused` record under the
 * exchange's reference. So every refusal is findable by construction, not by each stage
 * remembering to record it.
 */
import type { ServerResponse } from 'node:http';
import { refusalWrittenTo } from '../../mcp/http-reply.js';
import type { ExchangeFacts } from '../exchange-ledger.js';
import type { RefusalRecords } from '../refusal-records.js';

export function recordUntoldRefusal(
  facts: ExchangeFacts,
  response: ServerResponse,
  refusals: Pick<RefusalRecords, 'recordRefusal'>,
): void {
  const refusal = refusalWrittenTo(response);
  if (refusal === undefined || facts.told) return;
  refusals.recordRefusal(facts, { code: refusal.data.code, status: refusal.status });
}
