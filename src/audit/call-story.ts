/**
 * The story of one call, told from its audit records (those sharing a request id): who asked,
 * for what, what was decided and why, who approved, and how it ended. Pure: `warden audit show`
 * reads the records and prints this text.
 */
import type { AuditCredential, AuditRecord } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import { toTerminalText } from './terminal-text.js';
import { compareTimeline } from './timeline.js';

const LABEL_WIDTH = 16;
const EVENT_WIDTH = 17;

/** The story of the call whose records these are (any order); an empty list tells nothing. */
export function tellCallStory(records: readonly AuditRecord[]): string {
  const ordered = [...records].sort(compareTimeline);
  const first = ordered[0];
  if (!first) return '';
  const pick = <K extends keyof AuditRecord>(field: K): AuditRecord[K] | undefined =>
    ordered.find((record) => record[field] !== undefined)?.[field];

  const lines: string[] = [`Request ${first.requestId ?? '(none)'}`];
  lines.push(field('trace id', pick('traceId') ?? 'none (the client sent no traceparent)'));
  lines.push(field('records', describeRecords(ordered)));

  lines.push('', 'Who');
  lines.push(field('user', pick('user') ?? 'none (the agent acted on its own)'));
  lines.push(field('agent', pick('agent') ?? 'unknown'));
  const roles = pick('roles');
  lines.push(field('roles', roles && roles.length > 0 ? roles.join(', ') : 'none'));
  const model = pick('model');
  lines.push(
    field('model', model === undefined ? 'not declared' : `${model} (declared by the client)`),
  );
  const credential = pick('credential');
  if (credential !== undefined) lines.push(field('credential', describeCredential(credential)));
  lines.push(field('environment', pick('environment') ?? '-'));
  const tenant = pick('tenant');
  if (tenant !== undefined) lines.push(field('tenant', tenant));
  const region = pick('region');
  if (region !== undefined) lines.push(field('region', region));

  lines.push('', 'What');
  lines.push(field('upstream', pick('upstream') ?? '-'));
  lines.push(field('method', pick('method') ?? '-'));
  lines.push(field('tool', pick('tool') ?? '-'));
  const withArguments = ordered.find((record) => 'arguments' in record);
  lines.push(
    field(
      'arguments',
      withArguments === undefined
        ? 'none recorded'
        : `${canonicalJson(withArguments.arguments)} (as logged, after redaction)`,
    ),
  );
  const argumentsHash = pick('argumentsHash');
  if (argumentsHash !== undefined) {
    lines.push(
      field('arguments hash', `${argumentsHash} (keyed hash of the unredacted arguments)`),
    );
  }

  lines.push('', 'What happened, in order');
  for (const record of ordered) {
    const [headline, ...more] = describeEvent(record);
    lines.push(`  ${record.time}  ${record.event.padEnd(EVENT_WIDTH)} ${headline ?? ''}`.trimEnd());
    const indent = ' '.repeat(2 + record.time.length + 2 + EVENT_WIDTH + 1);
    for (const line of more) lines.push(`${indent}${line}`);
  }
  lines.push('', `Outcome: ${describeOutcome(ordered)}`);
  return lines.map(toTerminalText).join('\n').concat('\n');
}

function field(label: string, value: string): string {
  return `  ${label.padEnd(LABEL_WIDTH)}${value}`;
}

function describeCredential(credential: AuditCredential): string {
  if (credential.kind === 'mtls') {
    return `client certificate ${credential.subject}, SHA-256 ${credential.fingerprint}`;
  }
  const id = credential.tokenId === undefined ? 'without jti' : `jti ${credential.tokenId}`;
  const bound =
    credential.boundCertificate === undefined
      ? ''
      : `, bound to certificate SHA-256 ${credential.boundCertificate}`;
  return `token ${id} from ${credential.issuer}${bound}`;
}

function describeRecords(records: readonly AuditRecord[]): string {
  const streams = new Map<string, number[]>();
  for (const record of records) {
    streams.set(record.stream, [...(streams.get(record.stream) ?? []), record.seq]);
  }
  return [...streams]
    .map(([stream, seqs]) => `stream ${stream}, seq ${seqs.join(', ')}`)
    .join('; ');
}

/** What one record says, as a headline and any further lines. */
function describeEvent(record: AuditRecord): string[] {
  const latency = record.latencyMs === undefined ? '' : ` after ${record.latencyMs} ms`;
  switch (record.event) {
    case 'call.allowed':
    case 'call.denied': {
      const decision = record.decision;
      if (!decision) return [record.event === 'call.denied' ? 'DENIED' : 'ALLOWED'];
      const policies = decision.policies.length > 0 ? decision.policies.join(', ') : 'none';
      return [
        `${decision.effect.replace('_', ' ').toUpperCase()}${
          record.event === 'call.allowed' ? ', recorded before forwarding' : ', not forwarded'
        }`,
        `because: ${decision.reasons.length > 0 ? decision.reasons.join('; ') : 'no reason given'}`,
        `policies: ${policies}`,
      ];
    }
    case 'approval.requested':
    case 'approval.granted':
    case 'approval.refused':
    case 'approval.expired':
    case 'approval.invalidated':
      return describeApproval(record);
    case 'call.result': {
      const result = record.result;
      if (!result) return [`answered${latency}`];
      const lines = [
        `answered${latency}: ${result.isError ? 'the tool reported an error' : 'success'}, ${result.size} bytes`,
        `result hash ${result.hash} (SHA-256 of its canonical JSON)`,
      ];
      if (result.excerpt !== undefined) lines.push(`excerpt ${result.excerpt}`);
      return lines;
    }
    case 'call.error': {
      const lines = [`failed${latency}: error code ${record.errorCode ?? 'unknown'}`];
      const message = record.details?.['message'];
      if (typeof message === 'string') lines.push(`message: ${message}`);
      return lines;
    }
    case 'request.refused':
      return [
        `request refused: ${record.errorCode ?? 'no code'}`,
        ...(record.details ? [`details: ${canonicalJson(record.details)}`] : []),
      ];
    case 'auth.failed':
      return [
        `authentication refused: ${record.errorCode ?? 'no code'}`,
        ...(record.details ? [`details: ${canonicalJson(record.details)}`] : []),
      ];
    default:
      return [
        record.errorCode === undefined ? '' : `error code ${record.errorCode}`,
        ...(record.details ? [`details: ${canonicalJson(record.details)}`] : []),
      ];
  }
}

function describeApproval(record: AuditRecord): string[] {
  const approval = record.approval;
  const id = approval?.id === undefined ? '' : ` (approval ${approval.id})`;
  const approvers = approval?.approvers?.length ? approval.approvers.join(', ') : 'unknown';
  const when = approval?.decidedAt === undefined ? '' : ` at ${approval.decidedAt}`;
  const details = record.details ?? {};
  const partial = record.event === 'approval.granted' && details['final'] === false;
  const headline =
    record.event === 'approval.requested'
      ? `approval requested${id}: the call is held until someone decides`
      : partial
        ? `approval vote ${String(details['votes'])} of ${String(details['required'])} by ${approvers}${when}${id}; still waiting`
        : record.event === 'approval.granted'
          ? `approved by ${approvers}${when}${id}`
          : record.event === 'approval.refused' && details['withdrawn'] === true
            ? `withdrawn by the client${when}${id}`
            : record.event === 'approval.refused'
              ? `refused by ${approvers}${when}${id}`
              : record.event === 'approval.invalidated'
                ? `invalidated${id}: ${typeof details['reason'] === 'string' ? details['reason'] : 'the rules changed'}`
                : `expired without a decision${id}`;
  return approval?.argumentsHash === undefined
    ? [headline]
    : [headline, `for arguments hash ${approval.argumentsHash}`];
}

function describeOutcome(records: readonly AuditRecord[]): string {
  const last = (event: string) => records.findLast((record) => record.event === event);
  const result = last('call.result');
  if (result) {
    const how = result.result?.isError ? 'answered with a tool error' : 'answered successfully';
    return result.latencyMs === undefined ? how : `${how} in ${result.latencyMs} ms`;
  }
  const error = last('call.error');
  if (error) return `failed with ${error.errorCode ?? 'an unknown error'}`;
  if (last('call.denied')) return 'denied; the call never reached the upstream';
  if (last('approval.refused')) return 'approval refused; the call was not forwarded';
  if (last('approval.expired')) return 'approval expired; the call was not forwarded';
  if (last('approval.invalidated')) {
    return 'approval invalidated by a change of the rules; the call was not forwarded';
  }
  if (last('auth.failed')) return 'authentication refused; no call was made';
  if (last('request.refused')) return 'refused before any call was decided; nothing was forwarded';
  if (last('call.allowed')) {
    return 'allowed, but no result or error is recorded: the call was still running, or the gateway stopped before it ended';
  }
  return 'no call decision is recorded for this request';
}
