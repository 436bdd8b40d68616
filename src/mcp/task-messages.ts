/**
 * The wire shapes of MCP tasks (revision 2025-11-25): a task-augmented request's `params.task`,
 * the Task object `tasks/get` answers, the result `tasks/result` answers (naming its task), and
 * the `tasks` capability an `initialize` result declares. 2026-07-28 moved tasks to an extension
 * (`io.modelcontextprotocol/tasks`), which these shapes are not.
 */
import { WardenError } from '../domain/errors.js';
import { isRecord } from '../domain/json-object.js';
import type { JsonRpcId, JsonRpcRequest, JsonRpcResponse } from '../domain/jsonrpc.js';

/** The `_meta` key naming the task a message belongs to. */
export const RELATED_TASK_META_KEY = 'io.modelcontextprotocol/related-task';
/** How often a client is asked to poll (the Task's `pollInterval`). */
export const TASK_POLL_INTERVAL_MS = 1000;

export type TaskStatus = 'working' | 'completed' | 'failed' | 'cancelled';

/** The revisions whose clients speak these tasks. */
const TASK_REVISIONS: ReadonlySet<string> = new Set(['2025-11-25']);

export function speaksTasks(protocolVersion: unknown): boolean {
  return typeof protocolVersion === 'string' && TASK_REVISIONS.has(protocolVersion);
}

/**
 * `params.task` of a task-augmented request (`{ ttl? }`); undefined when it asks for no task. A
 * `task` that is not an object is refused: it is never half-read.
 */
export function readTaskParams(message: JsonRpcRequest): { readonly ttl?: number } | undefined {
  const task = message.params?.['task'];
  if (task === undefined) return undefined;
  if (!isRecord(task)) {
    throw new WardenError('WARDEN_TASK_INVALID', 'params.task must be an object ({ ttl }).', {
      details: { reason: 'params.task is not an object' },
    });
  }
  const ttl = task['ttl'];
  return typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0 ? { ttl } : {};
}

/** The Task object. `ttl`: how long the task is kept from its creation. */
export function taskOf(
  taskId: string,
  times: {
    readonly createdAt: number;
    readonly ttl: number;
    readonly updatedAt?: number | undefined;
  },
  state: { readonly status: TaskStatus; readonly statusMessage: string },
): Record<string, unknown> {
  return {
    taskId,
    status: state.status,
    statusMessage: state.statusMessage,
    createdAt: new Date(times.createdAt).toISOString(),
    lastUpdatedAt: new Date(times.updatedAt ?? times.createdAt).toISOString(),
    ttl: Math.max(times.ttl, 0),
    pollInterval: TASK_POLL_INTERVAL_MS,
  };
}

/** `tasks/result`: the request's own result (or error), naming its task. */
export function taskResultOf(
  id: JsonRpcId,
  taskId: string,
  response: JsonRpcResponse,
): JsonRpcResponse {
  if ('error' in response) return { ...response, id };
  const meta = isRecord(response.result['_meta']) ? response.result['_meta'] : {};
  return {
    jsonrpc: '2.0',
    id,
    result: { ...response.result, _meta: { ...meta, [RELATED_TASK_META_KEY]: { taskId } } },
  };
}

/** The request without what made it a task: the upstream never sees the gateway's task. */
export function withoutTaskParams(message: JsonRpcRequest): JsonRpcRequest {
  const params = { ...message.params };
  delete params['task'];
  const meta = isRecord(params['_meta']) ? { ...params['_meta'] } : undefined;
  if (meta !== undefined) {
    delete meta[RELATED_TASK_META_KEY];
    params['_meta'] = meta;
  }
  return { ...message, params };
}

/**
 * An `initialize` result that declares task-augmented `tools/call` and `tasks/cancel`, merged
 * with the `tasks` capability the server declared itself; unchanged for a revision without tasks.
 */
export function withTasksCapability(response: JsonRpcResponse): JsonRpcResponse {
  if (!('result' in response)) return response;
  const { result } = response;
  if (!speaksTasks(result['protocolVersion'])) return response;
  const capabilities = isRecord(result['capabilities']) ? result['capabilities'] : {};
  const tasks = isRecord(capabilities['tasks']) ? capabilities['tasks'] : {};
  const requests = isRecord(tasks['requests']) ? tasks['requests'] : {};
  const tools = isRecord(requests['tools']) ? requests['tools'] : {};
  return {
    ...response,
    result: {
      ...result,
      capabilities: {
        ...capabilities,
        tasks: {
          ...tasks,
          cancel: isRecord(tasks['cancel']) ? tasks['cancel'] : {},
          requests: { ...requests, tools: { ...tools, call: {} } },
        },
      },
    },
  };
}
