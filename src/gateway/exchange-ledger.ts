/**
 * The exchanges the listener is serving, and whether the audit log tells each one's story.
 *
 * Every record written while an exchange is open is noted against it by request id, whichever
 * stage wrote it (the pipeline's decision, an approval, an aggregated authentication failure).
 * When the exchange ends with a refusal that nothing recorded, the listener records it: so a
 * request Warden refuses leaves a record findable by its reference, by construction rather than
 * by each stage remembering to.
 */
import type { IncomingMessage } from 'node:http';
import type { CallRecorder } from '../audit/call-recorder.js';
import type { Identity } from '../domain/identity.js';
import type { GatewayAuditLog } from './audit-log.js';

/** What is known of one exchange; the listener fills in the upstream and identity as it learns them. */
export interface ExchangeFacts {
  readonly requestId: string;
  /**
   * The client's address: refusals of callers not yet known are aggregated per source. For an
   * exchange another replica relayed, the address that replica saw.
   */
  source: string;
  /** The HTTP method. */
  readonly method: string;
  /** The path without its query, which may carry a credential; cut to a bounded length. */
  readonly path: string;
  readonly traceparent: string | undefined;
  upstream: string | undefined;
  identity: Identity | undefined;
  /** A record (or an aggregated report) tells this exchange's story. */
  told: boolean;
}

export interface ExchangeLedger {
  /** Starts tracking an exchange, when its request arrives. */
  open(
    request: IncomingMessage,
    facts: Omit<ExchangeFacts, 'upstream' | 'identity' | 'told'>,
  ): ExchangeFacts;
  /** Stops tracking it, once it has ended. */
  close(facts: ExchangeFacts): void;
  /** The open exchange a request belongs to. */
  of(request: IncomingMessage): ExchangeFacts | undefined;
  /** A record about `requestId` is being written: its exchange, if still open, is told. */
  noteRecorded(requestId: string | undefined): void;
}

export function createExchangeLedger(): ExchangeLedger {
  const byRequestId = new Map<string, ExchangeFacts>();
  const byRequest = new WeakMap<IncomingMessage, ExchangeFacts>();
  return {
    open(request, known) {
      const facts: ExchangeFacts = {
        ...known,
        upstream: undefined,
        identity: undefined,
        told: false,
      };
      byRequestId.set(facts.requestId, facts);
      byRequest.set(request, facts);
      return facts;
    },
    close(facts) {
      byRequestId.delete(facts.requestId);
    },
    of: (request) => byRequest.get(request),
    noteRecorded(requestId) {
      if (requestId === undefined) return;
      const facts = byRequestId.get(requestId);
      if (facts !== undefined) facts.told = true;
    },
  };
}

/**
 * The audit log as the gateway's stages use it, each write noted in the ledger. Noted when the
 * write starts, not when it commits: a record the log could not take has raised its alert
 * (WARDEN_AUDIT_UNAVAILABLE), and trying again with another would fail the same way.
 */
export function noteRecordsIn(auditLog: GatewayAuditLog, ledger: ExchangeLedger): GatewayAuditLog {
  return {
    ...auditLog,
    recorder: noteDecisionsIn(auditLog.recorder, ledger),
    note(entry) {
      ledger.noteRecorded(entry.requestId);
      auditLog.note(entry);
    },
    record(entry) {
      ledger.noteRecorded(entry.requestId);
      return auditLog.record(entry);
    },
  };
}

/** A call recorder whose decisions are noted in the ledger. */
export function noteDecisionsIn(recorder: CallRecorder, ledger: ExchangeLedger): CallRecorder {
  return {
    recordDecision(facts, decision, options) {
      ledger.noteRecorded(facts.requestId);
      return recorder.recordDecision(facts, decision, options);
    },
    close: () => recorder.close(),
  };
}
