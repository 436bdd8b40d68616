/**
 * The state one approval service works with, made explicit: its injected store, clock, ids and
 * audit sink, its timings, and the holders waiting in this process. Every approval module takes
 * the part of it that it uses.
 */
import type { AuditEntry } from '../domain/audit-record.js';
import type { ApprovalRequest, Store } from '../store/types.js';

/** Holders in this process, by approval id: each is woken at once by a decision made here. */
export type Holders = Map<string, Set<() => void>>;

export interface ApprovalState {
  readonly store: Pick<Store, 'approvals'>;
  readonly now: () => number;
  readonly newId: () => string;
  /** Appends one audit record durably; rejects when it cannot. */
  readonly record: (entry: AuditEntry) => Promise<void>;
  /** Announces a new request (webhooks, console); must not throw. */
  readonly notify: (request: ApprovalRequest) => void;
  /** Tells approvers a request they may have seen can no longer be decided; must not throw. */
  readonly notifyInvalidated: ((request: ApprovalRequest, reason: string) => void) | undefined;
  /** Told about failures that do not change the outcome (a late audit record, a poll). */
  readonly onError: (error: unknown, message: string) => void;
  readonly pollIntervalMs: number;
  readonly progressEveryMs: number;
  /** Stamped on records made without the held call at hand. */
  readonly environment: string | undefined;
  /** Whether an asserted approver (the CLI's `--as`) may decide; `approvals.cli_decisions`. */
  readonly cliDecisions: boolean;
  /** This replica: named on the requests whose calls it holds open. */
  readonly replica: string | undefined;
  readonly holders: Holders;
}

export function addHolder(holders: Holders, id: string, wake: () => void): void {
  const registered = holders.get(id) ?? new Set();
  registered.add(wake);
  holders.set(id, registered);
}

export function removeHolder(holders: Holders, id: string, wake: () => void): void {
  const registered = holders.get(id);
  if (registered === undefined) return;
  registered.delete(wake);
  if (registered.size === 0) holders.delete(id);
}

/** Wakes every holder of `id` in this process, so it reads the request at once. */
export function wakeHolders(holders: Holders, id: string): void {
  for (const wake of holders.get(id) ?? []) wake();
}
