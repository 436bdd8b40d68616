/**
 * An upstream MCP server reached over Streamable HTTP. Messages are relayed, not re-implemented:
 * each client exchange becomes one upstream exchange, and SSE events pass through with their ids,
 * so resumption (Last-Event-ID) and polling work end to end.
 */
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import type { HttpUpstreamConfig } from '../../config/config.js';
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcMessage } from '../../domain/jsonrpc.js';
import { isRequest } from '../../domain/jsonrpc.js';
import { firstValue } from '../../http/http-headers.js';
import { parseUpstreamMessage } from '../jsonrpc-parse.js';
import { parseSseStream } from '../sse.js';
import { createCredentialSource, type CredentialSource } from './credential.js';
import type { SubjectTokenSigner } from './token-exchange-subject.js';
import type {
  ForwardContext,
  UpstreamConnector,
  UpstreamEvent,
  UpstreamReply,
  UpstreamSession,
} from './types.js';

const ACCEPT_BOTH = 'application/json, text/event-stream';

export interface HttpUpstreamOptions {
  /** Signs token exchanges' subject tokens (the built-in issuer's keys), where it runs. */
  readonly signer?: SubjectTokenSigner;
}

export function createHttpUpstream(
  config: HttpUpstreamConfig,
  options: HttpUpstreamOptions = {},
): UpstreamConnector {
  const url = new URL(config.url);
  const pool = new Pool(url.origin, {
    connections: 128,
    keepAliveTimeout: 30_000,
    headersTimeout: config.timeoutMs,
    bodyTimeout: config.timeoutMs,
  });
  const credential = config.credential
    ? createCredentialSource(config.credential, options)
    : undefined;
  const path = `${url.pathname}${url.search}`;
  return {
    name: config.name,
    kind: 'http',
    openSession: () => new HttpUpstreamSession(pool, path, config, credential),
    close: () => pool.close(),
  };
}

class HttpUpstreamSession implements UpstreamSession {
  onEnded: (() => void) | undefined;
  private upstreamSessionId: string | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly path: string,
    private readonly config: HttpUpstreamConfig,
    private readonly credential: CredentialSource | undefined,
  ) {}

  async send(message: JsonRpcMessage, context: ForwardContext): Promise<UpstreamReply> {
    const { response, deadline } = await this.exchange('POST', context, JSON.stringify(message));
    const sessionId = response.headers['mcp-session-id'];
    if (typeof sessionId === 'string' && isRequest(message) && message.method === 'initialize') {
      this.upstreamSessionId = sessionId;
    }
    if (isRequest(message) && response.statusCode >= 500) {
      // A request the upstream failed gets a JSON-RPC error (and is audited as one), not a relay.
      await response.body.dump().catch(() => undefined);
      deadline.clear();
      throw new WardenError('WARDEN_UPSTREAM_FAILED', undefined, {
        details: { upstreamStatus: response.statusCode },
      });
    }
    return this.readReply(response, deadline, context, isRequest(message), false);
  }

  async openServerStream(context: ForwardContext): Promise<UpstreamReply> {
    const { response, deadline } = await this.exchange('GET', context, undefined);
    return this.readReply(response, deadline, context, true, true);
  }

  async terminate(context: ForwardContext): Promise<void> {
    if (this.upstreamSessionId === undefined) return;
    try {
      const { response, deadline } = await this.exchange('DELETE', context, undefined);
      await response.body.dump().finally(() => deadline.clear());
    } catch {
      // The client's session ends either way; an upstream that cannot be told will expire it.
    }
  }

  private async exchange(
    method: 'POST' | 'GET' | 'DELETE',
    context: ForwardContext,
    body: string | undefined,
  ): Promise<{ response: Dispatcher.ResponseData; deadline: ProgressDeadline }> {
    // Before the deadline starts: a credential that cannot be had means nothing is sent.
    const headers = await this.buildHeaders(method, context);
    const deadline = new ProgressDeadline(this.config.timeoutMs, context.signal);
    try {
      const response = await this.pool.request({
        method,
        path: this.path,
        headers,
        body: body ?? null,
        signal: deadline.signal,
        // A server stream may be quiet for long stretches; requests must keep making progress.
        bodyTimeout: method === 'GET' ? 0 : this.config.timeoutMs,
      });
      deadline.touch();
      return { response, deadline };
    } catch (error) {
      deadline.clear();
      throw deadline.toError(error);
    }
  }

  private async buildHeaders(
    method: string,
    context: ForwardContext,
  ): Promise<Record<string, string>> {
    const headers: Record<string, string> = { ...this.config.headers, ...context.mcpHeaders };
    if (method === 'POST') {
      headers['content-type'] = 'application/json';
      headers['accept'] = ACCEPT_BOTH;
    } else if (method === 'GET') {
      headers['accept'] = 'text/event-stream';
    }
    if (context.protocolVersion !== undefined)
      headers['mcp-protocol-version'] = context.protocolVersion;
    if (this.upstreamSessionId !== undefined) headers['mcp-session-id'] = this.upstreamSessionId;
    if (context.lastEventId !== undefined) headers['last-event-id'] = context.lastEventId;
    if (context.traceparent !== undefined) headers['traceparent'] = context.traceparent;
    if (context.tracestate !== undefined) headers['tracestate'] = context.tracestate;
    if (this.credential) {
      const { name, value } = await this.credential.header(context.caller);
      headers[name] = value;
    }
    return headers;
  }

  /**
   * Reads the upstream's answer. `quietStream` is true for the server's own stream (GET), which
   * may be quiet for long stretches; a request's stream must keep making progress.
   */
  private async readReply(
    response: Dispatcher.ResponseData,
    deadline: ProgressDeadline,
    context: ForwardContext,
    expectsAnswer: boolean,
    quietStream: boolean,
  ): Promise<UpstreamReply> {
    const status = response.statusCode;
    const contentType = firstValue(response.headers['content-type']);
    const streams =
      status >= 200 &&
      status < 300 &&
      status !== 202 &&
      expectsAnswer &&
      isEventStream(contentType);
    if (streams) {
      if (quietStream) deadline.clear();
      const progress = quietStream ? undefined : deadline;
      return { kind: 'stream', events: relayEvents(response.body, context, progress) };
    }
    try {
      return await this.readWholeReply(response, deadline, contentType, expectsAnswer);
    } finally {
      deadline.clear();
    }
  }

  private async readWholeReply(
    response: Dispatcher.ResponseData,
    deadline: ProgressDeadline,
    contentType: string | undefined,
    expectsAnswer: boolean,
  ): Promise<UpstreamReply> {
    if (response.statusCode === 404 && this.upstreamSessionId !== undefined) {
      // The upstream forgot the session: the client must start over, as the spec prescribes.
      await response.body.dump();
      this.onEnded?.();
      throw new WardenError('WARDEN_SESSION_NOT_FOUND');
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      return {
        kind: 'status',
        status: response.statusCode,
        body: await readText(response, deadline),
        contentType,
      };
    }
    if (response.statusCode === 202 || !expectsAnswer) {
      await response.body.dump();
      return { kind: 'accepted' };
    }
    if (contentType?.startsWith('application/json')) {
      const raw = await readText(response, deadline);
      return { kind: 'json', message: parseUpstreamMessage(raw), raw };
    }
    await response.body.dump();
    throw new WardenError(
      'WARDEN_UPSTREAM_PROTOCOL_ERROR',
      'The upstream answered with an unexpected content type.',
    );
  }
}

async function* relayEvents(
  body: Dispatcher.ResponseData['body'],
  context: ForwardContext,
  deadline: ProgressDeadline | undefined,
): AsyncGenerator<UpstreamEvent> {
  try {
    for await (const event of parseSseStream(touchEachChunk(body, deadline))) {
      const base = {
        ...(event.id !== undefined && { id: event.id }),
        ...(event.retry !== undefined && { retry: event.retry }),
      };
      if (event.data.trim() === '') {
        yield base;
        continue;
      }
      yield { ...base, message: parseUpstreamMessage(event.data), raw: event.data };
    }
  } catch (error) {
    // A client that went away needs no answer; one the gateway cut (shutdown) is told why.
    if (context.signal.aborted && !(context.signal.reason instanceof WardenError)) return;
    throw deadline ? deadline.toError(error) : toUpstreamError(error);
  } finally {
    deadline?.clear();
    body.destroy();
  }
}

/** Passes a body through, counting every chunk as progress against the deadline. */
async function* touchEachChunk(
  body: Dispatcher.ResponseData['body'],
  deadline: ProgressDeadline | undefined,
): AsyncGenerator<Buffer> {
  for await (const chunk of body as AsyncIterable<Buffer>) {
    deadline?.touch();
    yield chunk;
  }
}

async function readText(
  response: Dispatcher.ResponseData,
  deadline: ProgressDeadline,
): Promise<string> {
  try {
    return await response.body.text();
  } catch (error) {
    throw deadline.toError(error);
  }
}

function isEventStream(contentType: string | undefined): boolean {
  return contentType?.startsWith('text/event-stream') ?? false;
}

/**
 * Aborts an upstream exchange that makes no progress for the upstream's timeout. Undici's own
 * headers and body timeouts tick about once a second, which would stretch a 300 ms timeout past
 * a second; they stay configured only as a backstop.
 */
class ProgressDeadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private expired = false;
  constructor(timeoutMs: number, client: AbortSignal) {
    if (client.aborted) this.controller.abort(client.reason);
    else
      client.addEventListener('abort', () => this.controller.abort(client.reason), { once: true });
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(new WardenError('WARDEN_UPSTREAM_TIMEOUT'));
    }, timeoutMs);
    this.timer.unref();
  }

  /** Aborted when the client goes away or the upstream stalls. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Progress was made: the timeout starts again. */
  touch(): void {
    this.timer.refresh();
  }

  /**
   * Stops the timeout. The client's abort still reaches the upstream request: a server stream
   * has no timeout, and ending it when the client leaves is how it is closed.
   */
  clear(): void {
    clearTimeout(this.timer);
  }

  /** The WardenError for a failed exchange: a timeout if this deadline ended it. */
  toError(error: unknown): WardenError {
    return this.expired ? new WardenError('WARDEN_UPSTREAM_TIMEOUT') : toUpstreamError(error);
  }
}

function toUpstreamError(error: unknown): WardenError {
  if (error instanceof WardenError) return error;
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError
  ) {
    return new WardenError('WARDEN_UPSTREAM_TIMEOUT', undefined, { cause: error });
  }
  return new WardenError('WARDEN_UPSTREAM_UNAVAILABLE', undefined, { cause: error });
}
