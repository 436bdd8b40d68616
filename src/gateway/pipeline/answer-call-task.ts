/**
 * A task-augmented `tools/call` that goes at once (no approval needed, or approved while held):
 * the gateway declared task support for every tool call, so it is the task's receiver. The call
 * is forwarded without `params.task`, held only as long as the upstream takes, and its reply
 * becomes a task that is already completed (or failed); `tasks/get` and `tasks/result` are
 * answered from this process's memory, for the agent and user that made the call.
 */
import { randomUUID } from 'node:crypto';
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcRequest } from '../../domain/jsonrpc.js';
import type { CallObserver, ClientMessageContext } from '../../mcp/message-gate.js';
import { taskOf, taskResultOf } from '../../mcp/task-messages.js';
import {
  isOwner,
  keptResult,
  KEEP_RESULTS_MS,
  type TaskBinding,
  type TaskBook,
} from './task-book.js';

const CALL_TASK_PREFIX = 'warden-call-';

/** A new task id for a call that goes at once. */
export function newCallTask(
  owner: TaskBinding['owner'],
  now: number,
): Omit<TaskBinding, 'answerAs'> {
  return {
    taskId: `${CALL_TASK_PREFIX}${randomUUID()}`,
    owner,
    createdAt: now,
    ttl: KEEP_RESULTS_MS,
  };
}

export function isCallTask(taskId: unknown): taskId is string {
  return typeof taskId === 'string' && taskId.startsWith(CALL_TASK_PREFIX);
}

/** `tasks/get`, `tasks/result`, `tasks/cancel` of such a task, from what this process kept. */
export function answerCallTask(
  message: JsonRpcRequest,
  taskId: string,
  context: ClientMessageContext,
  book: TaskBook,
): CallObserver & { readonly answer: unknown } {
  const kept = keptResult(book, taskId);
  if (kept === undefined || !isOwner(kept.owner, context.identity, context.upstreamName)) {
    throw taskInvalid(taskId, 'no task of yours has this id (or it is no longer kept)');
  }
  const failed = 'error' in kept.response;
  const task = taskOf(
    taskId,
    { createdAt: kept.createdAt, ttl: KEEP_RESULTS_MS },
    {
      status: failed ? 'failed' : 'completed',
      statusMessage: failed ? 'the call failed' : 'the call was made',
    },
  );
  let answer;
  switch (message.method) {
    case 'tasks/get':
      answer = { jsonrpc: '2.0' as const, id: message.id, result: task };
      break;
    case 'tasks/result':
      answer = taskResultOf(message.id, taskId, kept.response);
      break;
    default:
      throw taskInvalid(
        taskId,
        `it is ${String(task['status'])}; a task that ended cannot be cancelled`,
      );
  }
  return { answer, answered: () => undefined, failed: () => undefined };
}

export function taskInvalid(taskId: string, reason: string): WardenError {
  return new WardenError('WARDEN_TASK_INVALID', `Task ${taskId}: ${reason}.`, {
    details: { taskId, reason },
  });
}
