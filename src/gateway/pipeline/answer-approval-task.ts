/**
 * `task` delivery (approvals.delivery, MCP 2025-11-25 tasks): a task-augmented `tools/call`
 * (`params.task`) that needs approval is answered at once with a task bound to its approval, and
 * nothing is forwarded. The gateway answers `tasks/get`, `tasks/result` and `tasks/cancel` for
 * its own tasks (ids from approvals/approval-task.ts and answer-call-task.ts; any other id is
 * the upstream's and goes there), for the agent and user that created them only: anyone else is
 * told there is no such task.
 *
 * The call is made on the first `tasks/get` or `tasks/result` after the grant, not when the
 * person approves: the poll runs the call through the message stages again as the same
 * `tools/call` (retry-approval.ts), so it is decided again under the rules in force, its
 * approval is consumed once in one store transaction (exactly once, across replicas), and it is
 * recorded and forwarded like any call, on a request whose client is there to receive it. Its
 * result is kept in this process (task-book.ts) for `tasks/result`.
 */
import { toErrorResponse, WardenError } from '../../domain/errors.js';
import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from '../../domain/jsonrpc.js';
import type { McpCall } from '../../domain/mcp-call.js';
import type { ApprovalRequest } from '../../store/types.js';
import {
  approvalIdOfTask,
  readApprovalTask,
  taskFailureOf,
  taskIdOf,
} from '../../approvals/approval-task.js';
import type { CallObserver, ClientMessageContext } from '../../mcp/message-gate.js';
import {
  readTaskParams,
  speaksTasks,
  taskOf,
  taskResultOf,
  withoutTaskParams,
  withTasksCapability,
  type TaskStatus,
} from '../../mcp/task-messages.js';
import { answerCallTask, isCallTask, newCallTask, taskInvalid } from './answer-call-task.js';
import {
  keepResult,
  keptResult,
  ownerOf,
  type KeptResult,
  type TaskBinding,
  type TaskBook,
} from './task-book.js';

/** What the approvals service gives the task answers (gateway/approvals.ts). */
export interface ApprovalTasks {
  get(approvalId: string): Promise<ApprovalRequest | undefined>;
  cancelTask(request: ApprovalRequest): Promise<ApprovalRequest | undefined>;
}

type AnsweredHere = CallObserver & { readonly answer: JsonRpcResponse };
type Admit = (message: JsonRpcRequest) => Promise<CallObserver | undefined>;

/**
 * `params.task` of a task-augmented request on a session that speaks tasks; undefined otherwise
 * (a 2026-07-28 client's tasks are an extension the gateway does not negotiate: `retry`).
 */
export function taskAugmentationOf(
  message: JsonRpcRequest,
  context: Pick<ClientMessageContext, 'sessionId' | 'protocolVersion'>,
): { readonly ttl?: number } | undefined {
  const task = readTaskParams(message);
  if (task === undefined || context.sessionId === undefined) return undefined;
  return speaksTasks(context.protocolVersion) ? task : undefined;
}

/** Whether the call is a task's call, made again on a poll: it is never held. */
export function isTaskReplay(message: JsonRpcRequest, book: TaskBook | undefined): boolean {
  const answerAs = book?.bound.get(message)?.answerAs;
  return answerAs === 'get' || answerAs === 'result';
}

/** The answer to a task-augmented call whose approval is pending: the task, working. */
export function createdTaskAnswer(
  id: JsonRpcId,
  approval: Pick<ApprovalRequest, 'id' | 'createdAt' | 'expiresAt'>,
): AnsweredHere {
  const task = taskOf(taskIdOf(approval.id), timesOf(approval), {
    status: 'working',
    statusMessage: `waiting for approval ${approval.id}: a person must approve it`,
  });
  return answered({ jsonrpc: '2.0', id, result: { task } });
}

/** A task-augmented call granted before it was made goes now: its reply becomes its task. */
export function bindReleasedTask(
  message: JsonRpcRequest,
  approval: Pick<ApprovalRequest, 'id' | 'createdAt' | 'expiresAt'>,
  context: ClientMessageContext,
  book: TaskBook,
): void {
  book.bound.set(message, approvalBinding(approval, context, 'created'));
}

/**
 * `tasks/get`, `tasks/result`, `tasks/cancel` of one of the gateway's tasks: answered here.
 * `admit` runs the message stages on a message (the task's call, made on a poll). Undefined for
 * anything else, which goes on as usual.
 */
export async function answerGatewayTask(
  call: McpCall,
  context: ClientMessageContext,
  approvals: ApprovalTasks | undefined,
  book: TaskBook,
  admit: Admit,
): Promise<CallObserver | undefined> {
  if (call.kind === 'tool_call') {
    // A malformed params.task is refused before anything is decided, never half-read.
    readTaskParams(call.message);
    return undefined;
  }
  if (call.kind !== 'plumbing' || !('id' in call.message) || !('method' in call.message)) {
    return undefined;
  }
  const message = call.message;
  const { method } = message;
  if (method !== 'tasks/get' && method !== 'tasks/result' && method !== 'tasks/cancel') {
    return undefined;
  }
  const taskId = message.params?.['taskId'];
  if (isCallTask(taskId)) return answerCallTask(message, taskId, context, book);
  const approvalId = approvalIdOfTask(taskId);
  if (approvalId === undefined || approvals === undefined) return undefined;
  const request = await ownRequest(approvals, approvalId, context);
  if (method === 'tasks/cancel') return cancelTask(message.id, request, approvals, book);
  const kept = keptResult(book, taskIdOf(approvalId));
  const read = readApprovalTask(request, book.now());
  if (read === 'release' && kept === undefined) {
    return releaseTask(message, method, request, { book, admit, context });
  }
  return answerFromState(message.id, method, request, read, kept);
}

/**
 * The observer of a call whose reply becomes a task answer: a task's call made on a poll, one
 * released at once, or a task-augmented call that goes without approval (answer-call-task.ts).
 * The task marker goes no further than the gateway; the upstream's answer is kept as the task's
 * result, and the client is told the task. Other calls pass unchanged.
 */
export function answerAsTask(
  message: JsonRpcRequest,
  observer: CallObserver,
  book: TaskBook,
  context: ClientMessageContext,
): CallObserver {
  let binding = book.bound.get(message);
  if (binding === undefined && message.method === 'tools/call') {
    if (taskAugmentationOf(message, context) === undefined) return observer;
    const owner = ownerOf(context.identity, context.upstreamName);
    binding = { ...newCallTask(owner, book.now()), answerAs: 'created' };
  }
  if (binding === undefined) return observer;
  const bound = binding;
  let result: JsonRpcResponse | undefined;
  return {
    forward: withoutTaskParams(observer.forward ?? message),
    async rewrite(response) {
      result = observer.rewrite ? await observer.rewrite(response) : response;
      keepResult(book, bound, result);
      return taskAnswer(message.id, bound, result);
    },
    answered(response) {
      observer.answered(result ?? response);
    },
    failed(error) {
      observer.failed(error);
      keepResult(book, bound, toErrorResponse(error, context.requestId, message.id));
    },
  };
}

/**
 * A relayed `initialize` result declares task-augmented `tools/call` (and `tasks/cancel`) when
 * `task` delivery can happen, merged with what the upstream declares itself.
 */
export function advertiseTasks(
  call: McpCall,
  observer: CallObserver,
  offered: boolean,
): CallObserver {
  if (!offered || !('method' in call.message) || call.message.method !== 'initialize') {
    return observer;
  }
  return {
    ...(observer.forward !== undefined && { forward: observer.forward }),
    answered: (response) => observer.answered(response),
    failed: (error) => observer.failed(error),
    async rewrite(response) {
      return withTasksCapability(observer.rewrite ? await observer.rewrite(response) : response);
    },
  };
}

/** The request behind the task, if it is the caller's own on this upstream. */
async function ownRequest(
  approvals: ApprovalTasks,
  approvalId: string,
  context: ClientMessageContext,
): Promise<ApprovalRequest> {
  const request = await approvals.get(approvalId).catch((cause: unknown) => {
    throw new WardenError('WARDEN_APPROVAL_UNAVAILABLE', undefined, { cause });
  });
  const { identity } = context;
  if (
    request === undefined ||
    request.agent !== identity.agent ||
    request.user !== identity.user ||
    request.upstream !== context.upstreamName
  ) {
    throw taskInvalid(taskIdOf(approvalId), 'no task of yours has this id');
  }
  return request;
}

/** `tasks/cancel`: a pending request is withdrawn; a task that already ended cannot be. */
async function cancelTask(
  id: JsonRpcId,
  request: ApprovalRequest,
  approvals: ApprovalTasks,
  book: TaskBook,
): Promise<AnsweredHere> {
  const taskId = taskIdOf(request.id);
  const withdrawn = request.status === 'pending' ? await approvals.cancelTask(request) : undefined;
  if (withdrawn === undefined) {
    const now = (await approvals.get(request.id)) ?? request;
    const read = readApprovalTask(now, book.now());
    const status = read === 'release' ? 'no longer pending' : read.status;
    throw taskInvalid(taskId, `it is ${status}; only a task still working can be cancelled`);
  }
  const task = taskOf(taskId, timesOf(withdrawn), {
    status: 'cancelled',
    statusMessage: `cancelled by the client; approval ${withdrawn.id} was withdrawn`,
  });
  return answered({ jsonrpc: '2.0', id, result: task });
}

/**
 * The task's call, made now (granted and not used yet), or found too late (the retry path
 * expires it): the message stages run on it as the same `tools/call`. A poll that finds another
 * making it waits for that one.
 */
async function releaseTask(
  message: JsonRpcRequest,
  method: 'tasks/get' | 'tasks/result',
  request: ApprovalRequest,
  making: {
    readonly book: TaskBook;
    readonly admit: Admit;
    readonly context: ClientMessageContext;
  },
): Promise<CallObserver> {
  const { book, admit, context } = making;
  const taskId = taskIdOf(request.id);
  const inFlight = book.releasing.get(request.id);
  if (inFlight !== undefined) {
    await inFlight;
    return answerFromState(message.id, method, request, undefined, keptResult(book, taskId));
  }
  const replay: JsonRpcRequest = {
    jsonrpc: '2.0',
    id: message.id,
    method: 'tools/call',
    params: { name: request.tool, arguments: JSON.parse(request.arguments) as unknown },
  };
  const binding = approvalBinding(request, context, method === 'tasks/get' ? 'get' : 'result');
  book.bound.set(replay, binding);
  let done = (): void => undefined;
  book.releasing.set(
    request.id,
    new Promise<void>((resolve) => {
      done = () => {
        book.releasing.delete(request.id);
        resolve();
      };
    }),
  );
  let observer: CallObserver | undefined;
  try {
    observer = await admit(replay);
  } catch (error) {
    // Refused at release (refused, expired, stale): that is the task's outcome.
    keepResult(book, binding, toErrorResponse(error, context.requestId, message.id));
    done();
    if (method === 'tasks/result') throw error;
    return answered({ jsonrpc: '2.0', id: message.id, result: failedTask(request, error) });
  }
  if (observer === undefined || observer.answer !== undefined) {
    // Pending after all (a newer request for the same call decides): the task keeps working.
    done();
    const task = taskOf(taskId, timesOf(request), {
      status: 'working',
      statusMessage: `waiting for approval of this call (approval ${request.id})`,
    });
    return answered({ jsonrpc: '2.0', id: message.id, result: task });
  }
  return tellingWhenAnswered(observer, done);
}

/** The observer, telling `done` once the forwarded call is answered or failed. */
function tellingWhenAnswered(observer: CallObserver, done: () => void): CallObserver {
  return {
    ...(observer.forward !== undefined && { forward: observer.forward }),
    ...(observer.rewrite !== undefined && { rewrite: observer.rewrite.bind(observer) }),
    answered(response) {
      observer.answered(response);
      done();
    },
    failed(error) {
      observer.failed(error);
      done();
    },
  };
}

/** A task's answer from what the store and this process know, without making the call. */
function answerFromState(
  id: JsonRpcId,
  method: 'tasks/get' | 'tasks/result',
  request: ApprovalRequest,
  read: ReturnType<typeof readApprovalTask> | undefined,
  kept: KeptResult | undefined,
): AnsweredHere {
  const taskId = taskIdOf(request.id);
  if (kept !== undefined) {
    if (method === 'tasks/result') return answered(taskResultOf(id, taskId, kept.response));
    const failed = 'error' in kept.response;
    const task = taskOf(taskId, timesOf(request), {
      status: failed ? 'failed' : 'completed',
      statusMessage: failed
        ? `approval ${request.id} was used, but the call failed`
        : `approved (approval ${request.id}); the call was made`,
    });
    return answered({ jsonrpc: '2.0', id, result: task });
  }
  if (read === undefined || read === 'release' || read.status === 'completed') {
    // Made by another gateway process, or its result no longer kept: the call went.
    if (method === 'tasks/result') {
      throw taskInvalid(
        taskId,
        'the call was made, but its result is not kept here (only by the gateway process that made it, for an hour)',
      );
    }
    const task = taskOf(taskId, timesOf(request), {
      status: 'completed',
      statusMessage: `approval ${request.id} was used; the call was made`,
    });
    return answered({ jsonrpc: '2.0', id, result: task });
  }
  if (method === 'tasks/get') {
    return answered({ jsonrpc: '2.0', id, result: taskOf(taskId, timesOf(request), read) });
  }
  if (read.status === 'working') {
    // The spec lets tasks/result wait; the gateway never holds a request open for a person.
    throw taskInvalid(
      taskId,
      'it is still working (waiting for approval); poll tasks/get until it is completed',
    );
  }
  throw taskFailureOf(request);
}

function failedTask(request: ApprovalRequest, error: unknown): Record<string, unknown> {
  return taskOf(taskIdOf(request.id), timesOf(request), {
    status: 'failed',
    statusMessage: error instanceof WardenError ? error.message : 'the call was not made',
  });
}

/** The reply to a task's call, turned into the answer the client asked for. */
function taskAnswer(id: JsonRpcId, binding: TaskBinding, result: JsonRpcResponse): JsonRpcResponse {
  const failed = 'error' in result;
  const status: TaskStatus = failed ? 'failed' : 'completed';
  const task = taskOf(binding.taskId, binding, {
    status,
    statusMessage: failed ? result.error.message : 'the call was made',
  });
  switch (binding.answerAs) {
    case 'created':
      return { jsonrpc: '2.0', id, result: { task } };
    case 'get':
      return { jsonrpc: '2.0', id, result: task };
    case 'result':
      return taskResultOf(id, binding.taskId, result);
  }
}

function approvalBinding(
  approval: Pick<ApprovalRequest, 'id' | 'createdAt' | 'expiresAt'>,
  context: ClientMessageContext,
  answerAs: TaskBinding['answerAs'],
): TaskBinding {
  return {
    taskId: taskIdOf(approval.id),
    owner: ownerOf(context.identity, context.upstreamName),
    ...timesOf(approval),
    answerAs,
  };
}

/** An approval task is kept as long as its approval can be decided. */
function timesOf(
  approval: Pick<ApprovalRequest, 'createdAt' | 'expiresAt'> & { decidedAt?: number | undefined },
) {
  return {
    createdAt: approval.createdAt,
    ttl: approval.expiresAt - approval.createdAt,
    updatedAt: approval.decidedAt,
  };
}

function answered(answer: JsonRpcResponse): AnsweredHere {
  return { answer, answered: () => undefined, failed: () => undefined };
}
