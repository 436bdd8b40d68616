/**
 * What one gateway process knows of its tasks beyond the store: the results of calls it made
 * (kept for `tasks/result`, an hour, at most MAX_KEPT of them, the oldest dropped first), the
 * approvals whose call it is making now, and the messages whose reply becomes a task answer.
 */
import type { Identity } from '../../domain/identity.js';
import type { JsonRpcRequest, JsonRpcResponse } from '../../domain/jsonrpc.js';

/** How long a made call's result is kept for `tasks/result`. */
export const KEEP_RESULTS_MS = 60 * 60 * 1000;
const MAX_KEPT = 1000;

/** Who may read a task: the agent and user that created it, on its upstream. */
export interface TaskOwner {
  readonly agent: string;
  readonly user: string | undefined;
  readonly upstream: string;
}

export interface KeptResult {
  readonly owner: TaskOwner;
  readonly createdAt: number;
  readonly keptUntil: number;
  readonly response: JsonRpcResponse;
}

/** How the reply to a message is answered: which task, and as which answer. */
export interface TaskBinding {
  readonly taskId: string;
  readonly owner: TaskOwner;
  readonly createdAt: number;
  /** The task's ttl, as its Task objects tell it. */
  readonly ttl: number;
  /** `created`: the reply to the task-augmented call itself; `get`, `result`: to a poll. */
  readonly answerAs: 'created' | 'get' | 'result';
}

export interface TaskBook {
  readonly now: () => number;
  /** By task id. */
  readonly results: Map<string, KeptResult>;
  /** Approvals whose call is being made now: another poll waits for it, never makes it twice. */
  readonly releasing: Map<string, Promise<void>>;
  readonly bound: WeakMap<JsonRpcRequest, TaskBinding>;
}

export function createTaskBook(now: () => number = Date.now): TaskBook {
  return { now, results: new Map(), releasing: new Map(), bound: new WeakMap() };
}

export function ownerOf(identity: Identity, upstream: string): TaskOwner {
  return { agent: identity.agent, user: identity.user, upstream };
}

export function isOwner(owner: TaskOwner, identity: Identity, upstream: string): boolean {
  return (
    owner.agent === identity.agent && owner.user === identity.user && owner.upstream === upstream
  );
}

export function keptResult(book: TaskBook, taskId: string): KeptResult | undefined {
  const kept = book.results.get(taskId);
  if (kept === undefined) return undefined;
  if (book.now() < kept.keptUntil) return kept;
  book.results.delete(taskId);
  return undefined;
}

export function keepResult(
  book: TaskBook,
  binding: Pick<TaskBinding, 'taskId' | 'owner' | 'createdAt'>,
  response: JsonRpcResponse,
): void {
  if (book.results.size >= MAX_KEPT) {
    const [oldest] = book.results.keys();
    if (oldest !== undefined) book.results.delete(oldest);
  }
  book.results.set(binding.taskId, {
    owner: binding.owner,
    createdAt: binding.createdAt,
    keptUntil: book.now() + KEEP_RESULTS_MS,
    response,
  });
}
