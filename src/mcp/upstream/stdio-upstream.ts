/**
 * An upstream MCP server run as a child process speaking newline-delimited JSON-RPC on stdio.
 *
 * Each client session gets its own child. A stdio server is written for one client: sharing a
 * process would let one user's session state (roots, subscriptions, log level) leak into
 * another's, and would make server-to-client requests (sampling, elicitation) impossible to route.
 * A child that dies is restarted with exponential backoff and re-initialised with the session's
 * own initialize request, so the client's session survives.
 *
 * A child is started when the session is first used, not when it is opened: a request refused
 * before it is forwarded never starts one. Children are counted against `max_sessions`
 * (child-slots.ts); when the upstream is full, the session idle longest past the reclaim threshold
 * gives up its child and its holder is told through `onEnded`. A holder that keeps the session
 * (the 2026-07-28 bridge's pool) gets a fresh child on next use, with the handshake replayed; the
 * client endpoint ends it instead, and its client is told the session is gone (404).
 */
import {
  StdioClientTransport,
  getDefaultEnvironment,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { StdioUpstreamConfig } from '../../config/config.js';
import { toErrorResponse, WardenError } from '../../domain/errors.js';
import type {
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
} from '../../domain/jsonrpc.js';
import { isNotification, isRequest, isResponse } from '../../domain/jsonrpc.js';
import { parseEventId, ReplayableStream } from '../replayable-stream.js';
import { ChildSlots, type SlotHolder } from './child-slots.js';
import type { ForwardContext, UpstreamConnector, UpstreamReply, UpstreamSession } from './types.js';

/** Messages kept for a server stream that is not open yet (bounded, oldest dropped). */
const MAX_BACKLOG = 256;
/** How long a child may take to exit on its own once its stdin is closed, before SIGTERM. */
const EOF_GRACE_MS = 1000;
/** How long a child may take to die after SIGTERM before it is killed. */
const STOP_GRACE_MS = 2000;
/** Finished streams kept per session for clients that resume with Last-Event-ID. */
const MAX_KEPT_STREAMS = 64;
/** The reconnection delay suggested to clients in priming events. */
const RETRY_HINT_MS = 1000;
/** The first revision whose clients expect priming events (SEP-1699). */
const PRIMING_REVISION = '2025-11-25';

export interface StdioLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

export interface StdioUpstreamOptions {
  /** When every child slot is taken, a session idle this long gives its child up to a newcomer. */
  readonly reclaimIdleAfterMs: number;
  readonly now?: () => number;
}

export function createStdioUpstream(
  config: StdioUpstreamConfig,
  logger: StdioLogger,
  options: StdioUpstreamOptions,
): UpstreamConnector {
  const now = options.now ?? Date.now;
  const slots: ChildSlots<StdioUpstreamSession> = new ChildSlots({
    limit: config.maxSessions,
    reclaimIdleAfterMs: options.reclaimIdleAfterMs,
    now,
    onReclaim: (_victim, idleMs) =>
      logger.warn(
        { upstream: config.name, idleMs, limit: config.maxSessions },
        'stdio upstream full: an idle session gave up its child to a newcomer',
      ),
  });
  return {
    name: config.name,
    kind: 'stdio',
    openSession: () => new StdioUpstreamSession(config, logger, slots, now),
    close: () => slots.close(),
  };
}

interface PendingRequest {
  readonly id: JsonRpcId;
  /** The exchange's reference id, quoted in any error Warden answers the request with. */
  readonly requestId: string;
  readonly events: ReplayableStream;
  readonly progressToken: string | number | undefined;
  timer: NodeJS.Timeout | undefined;
}

class StdioUpstreamSession implements UpstreamSession, SlotHolder {
  onEnded: (() => void) | undefined;
  /** The child that answers, once started. */
  private transport: StdioClientTransport | undefined;
  /** The child being started or running; the exit of any other child is stale news. */
  private child: StdioClientTransport | undefined;
  /** Settles when the current child has exited and its pipes are closed. */
  private exited: Promise<void> = Promise.resolve();
  /** Settles when a child is up; undefined while the session has none and is starting none. */
  private ready: Promise<void> | undefined;
  /** Bumped when the child is reclaimed or the session stops: a restart timer set before is void. */
  private generation = 0;
  /** Client sends and stream opens under way; with pending requests, what keeps a session busy. */
  private calls = 0;
  private lastUsedAt: number;
  private readonly pending = new Map<string, PendingRequest>();
  private readonly progressRoutes = new Map<string, PendingRequest>();
  private serverStream: ReplayableStream | undefined;
  private readonly streams = new Map<number, ReplayableStream>();
  private nextStreamId = 1;
  private readonly backlog: JsonRpcMessage[] = [];
  private initializeRequest: JsonRpcRequest | undefined;
  private negotiatedVersion: string | undefined;
  private initialized = false;
  private stopped = false;
  private restarts = 0;
  /** Crashes in a row, without a healthy run between them: the backoff exponent. */
  private crashStreak = 0;
  private spawnedAt = 0;
  private replayCounter = 0;

  constructor(
    private readonly config: StdioUpstreamConfig,
    private readonly logger: StdioLogger,
    private readonly slots: ChildSlots<StdioUpstreamSession>,
    private readonly now: () => number,
  ) {
    this.lastUsedAt = now();
  }

  async send(message: JsonRpcMessage, context: ForwardContext): Promise<UpstreamReply> {
    return this.use(async () => {
      await this.awaitReady();
      if (isRequest(message)) return this.sendRequest(message, context.requestId);
      if (isNotification(message) && message.method === 'notifications/initialized')
        this.initialized = true;
      await this.write(message);
      return { kind: 'accepted' };
    });
  }

  async openServerStream(context: ForwardContext): Promise<UpstreamReply> {
    return this.use(() => this.attachServerStream(context));
  }

  idleSince(): number | undefined {
    return this.calls === 0 && this.pending.size === 0 ? this.lastUsedAt : undefined;
  }

  /**
   * Stops the child to free its slot for another session; the holder is told through onEnded.
   * The session itself stays usable: its next use starts a new child and replays the handshake.
   */
  reclaim(): Promise<void> {
    this.generation += 1;
    const transport = this.child;
    this.child = undefined;
    this.transport = undefined;
    this.ready = undefined;
    this.failPending('WARDEN_UPSTREAM_UNAVAILABLE');
    this.serverStream?.end();
    this.serverStream = undefined;
    this.onEnded?.();
    return transport ? stopChild(transport, this.exited) : Promise.resolve();
  }

  /** A client's use of the session: busy while it runs, and the session's last use when done. */
  private async use<T>(run: () => Promise<T>): Promise<T> {
    this.calls += 1;
    try {
      return await run();
    } finally {
      this.calls -= 1;
      this.lastUsedAt = this.now();
    }
  }

  private async attachServerStream(context: ForwardContext): Promise<UpstreamReply> {
    await this.awaitReady();
    const resumeFrom =
      context.lastEventId === undefined ? undefined : parseEventId(context.lastEventId);
    const resumed = resumeFrom && this.streams.get(resumeFrom.streamId);
    if (resumeFrom && resumed) return { kind: 'stream', events: resumed.attach(resumeFrom.seq) };
    // One server stream per session, as the spec allows; a new GET replaces a stale one.
    this.serverStream?.end();
    const stream = this.openStream(this.negotiatedVersion);
    this.serverStream = stream;
    for (const message of this.backlog.splice(0)) stream.push({ message });
    return { kind: 'stream', events: stream.attach() };
  }

  async terminate(_context: ForwardContext): Promise<void> {
    await this.stop();
  }

  /** Stops the child for good: the session is over. Resolves once the child has exited. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.generation += 1;
    this.failPending('WARDEN_UPSTREAM_UNAVAILABLE');
    this.serverStream?.end();
    this.slots.release(this);
    const transport = this.child;
    this.child = undefined;
    this.transport = undefined;
    if (transport) await stopChild(transport, this.exited);
  }

  /**
   * A client that disconnects keeps its request running: the spec says disconnection is not
   * cancellation, and the client may resume the stream with Last-Event-ID.
   */
  private async sendRequest(request: JsonRpcRequest, requestId: string): Promise<UpstreamReply> {
    let version = this.negotiatedVersion;
    if (request.method === 'initialize') {
      this.initializeRequest = request;
      const requested = request.params?.['protocolVersion'];
      version = typeof requested === 'string' ? requested : undefined;
    }
    const events = this.openStream(version);
    const progressToken = readProgressToken(request);
    const entry: PendingRequest = {
      id: request.id,
      requestId,
      events,
      progressToken,
      timer: undefined,
    };
    this.pending.set(idKey(request.id), entry);
    if (progressToken !== undefined) this.progressRoutes.set(idKey(progressToken), entry);
    this.armTimeout(request.id, entry);
    const consumer = events.attach();
    try {
      await this.write(request);
    } catch (error) {
      this.settle(request.id, entry);
      throw error;
    }
    return { kind: 'stream', events: consumer };
  }

  private openStream(version: string | undefined): ReplayableStream {
    const primes = version !== undefined && version >= PRIMING_REVISION;
    const stream = new ReplayableStream(this.nextStreamId++, primes ? RETRY_HINT_MS : undefined);
    this.streams.set(stream.streamId, stream);
    if (this.streams.size > MAX_KEPT_STREAMS) {
      for (const [id, kept] of this.streams) {
        if (kept.isEnded) {
          this.streams.delete(id);
          break;
        }
      }
    }
    return stream;
  }

  /** The request timed out: tell the server to stop working on it, as a client would. */
  private abandon(id: JsonRpcId): void {
    const entry = this.pending.get(idKey(id));
    if (!entry) return;
    this.settle(id, entry);
    void this.write({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: id, reason: 'timed out at the gateway' },
    }).catch(() => undefined);
  }

  /** The timeout restarts whenever the server shows progress on the request. */
  private armTimeout(id: JsonRpcId, entry: PendingRequest): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      const failure = new WardenError('WARDEN_UPSTREAM_TIMEOUT');
      entry.events.push({ message: toErrorResponse(failure, entry.requestId, id), failure });
      this.abandon(id);
    }, this.config.timeoutMs);
    entry.timer.unref();
  }

  private settle(id: JsonRpcId, entry: PendingRequest): void {
    if (entry.timer) clearTimeout(entry.timer);
    // A long call ends as a use: the session is idle from its answer on, not from its start.
    this.lastUsedAt = this.now();
    this.pending.delete(idKey(id));
    if (entry.progressToken !== undefined) this.progressRoutes.delete(idKey(entry.progressToken));
    entry.events.end();
  }

  private route(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      if (
        message.id !== null &&
        typeof message.id === 'string' &&
        message.id.startsWith('warden-replay-')
      )
        return;
      const entry = message.id === null ? undefined : this.pending.get(idKey(message.id));
      if (!entry || message.id === null) return; // the request already timed out
      if (
        this.initializeRequest &&
        message.id === this.initializeRequest.id &&
        'result' in message
      ) {
        const version = message.result['protocolVersion'];
        if (typeof version === 'string') this.negotiatedVersion = version;
      }
      entry.events.push({ message });
      this.settle(message.id, entry);
      return;
    }
    const target = this.targetFor(message);
    if (target) {
      target.events.push({ message });
      this.armTimeout(target.id, target);
      return;
    }
    if (this.serverStream && !this.serverStream.isEnded) {
      this.serverStream.push({ message });
      return;
    }
    // No server stream yet: keep the message for the client's first GET.
    this.backlog.push(message);
    if (this.backlog.length > MAX_BACKLOG) this.backlog.shift();
  }

  /**
   * Where a server notification or request goes: progress to the request that asked for it;
   * anything else to the newest request still open, whose stream the client is reading.
   */
  private targetFor(message: JsonRpcNotification | JsonRpcRequest): PendingRequest | undefined {
    if (message.method === 'notifications/progress') {
      const token = message.params?.['progressToken'];
      if (typeof token === 'string' || typeof token === 'number')
        return this.progressRoutes.get(idKey(token));
    }
    let newest: PendingRequest | undefined;
    for (const entry of this.pending.values()) newest = entry;
    return newest;
  }

  private failPending(code: 'WARDEN_UPSTREAM_UNAVAILABLE'): void {
    for (const entry of [...this.pending.values()]) {
      const failure = new WardenError(code);
      entry.events.push({
        message: toErrorResponse(failure, entry.requestId, entry.id),
        failure,
      });
      this.settle(entry.id, entry);
    }
  }

  /**
   * Writes to the child's stdin. The SDK's send waits for 'drain' when the pipe is full, and a
   * child that dies mid-write never drains: the write is also ended by the child's exit, and by
   * the upstream timeout, so no call can hang on a dead pipe.
   */
  private async write(message: JsonRpcMessage): Promise<void> {
    const transport = this.transport;
    if (!transport) throw new WardenError('WARDEN_UPSTREAM_UNAVAILABLE');
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('stdin write timed out')), this.config.timeoutMs);
      timer.unref();
    });
    const exited = this.exited.then(() => {
      throw new Error('the child exited during the write');
    });
    try {
      await Promise.race([transport.send(message as JSONRPCMessage), exited, stalled]);
    } catch (error) {
      throw new WardenError('WARDEN_UPSTREAM_UNAVAILABLE', undefined, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  private async awaitReady(): Promise<void> {
    if (this.stopped) throw new WardenError('WARDEN_SESSION_NOT_FOUND');
    this.ready ??= this.start();
    await this.ready;
    if (!this.transport) throw new WardenError('WARDEN_UPSTREAM_UNAVAILABLE');
  }

  /** Takes a child slot (WARDEN_TOO_MANY_SESSIONS when none is free), then starts the child. */
  private start(): Promise<void> {
    const starting = (async () => {
      await this.slots.claim(this);
      if (this.stopped) return;
      await this.spawn();
      // A session whose child was reclaimed had a handshake: its new child needs it too.
      await this.replayHandshake();
    })();
    // Refused a slot, the session asks again on its next use.
    starting.catch(() => {
      if (this.ready === starting) this.ready = undefined;
    });
    return starting;
  }

  private async spawn(): Promise<void> {
    this.spawnedAt = Date.now();
    const transport = new StdioClientTransport({
      command: this.config.command,
      args: [...this.config.args],
      // The child gets a minimal environment: Warden's own secrets are not the tool's business.
      env: { ...getDefaultEnvironment(), ...this.config.env },
      ...(this.config.cwd !== undefined && { cwd: this.config.cwd }),
      stderr: 'pipe',
    });
    let markExited: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    transport.onmessage = (message) => this.route(message as JsonRpcMessage);
    transport.onerror = (error) =>
      this.logger.debug({ upstream: this.config.name, err: error.message }, 'stdio upstream error');
    transport.onclose = () => {
      markExited();
      this.handleExit(transport);
    };
    this.child = transport;
    this.exited = exited;
    try {
      await transport.start();
    } catch (error) {
      this.logger.warn(
        { upstream: this.config.name, err: (error as Error).message },
        'stdio upstream failed to start',
      );
      this.handleExit(transport);
      return;
    }
    if (this.stopped || this.child !== transport) {
      // The session ended (or gave up its slot) while the child was starting: it must not outlive it.
      await stopChild(transport, exited);
      return;
    }
    transport.stderr?.on('data', (chunk: Buffer) =>
      this.logger.debug(
        { upstream: this.config.name, stderr: chunk.toString('utf8').trimEnd() },
        'stdio upstream stderr',
      ),
    );
    this.transport = transport;
  }

  private handleExit(transport: StdioClientTransport): void {
    if (this.child !== transport) return;
    this.child = undefined;
    this.transport = undefined;
    if (this.stopped) return;
    this.failPending('WARDEN_UPSTREAM_UNAVAILABLE');
    // A child that ran longer than the longest backoff was healthy: its crash starts a new streak,
    // so a long session that saw a few crashes is not stuck at the maximum delay for good.
    if (Date.now() - this.spawnedAt >= this.config.restartBackoffMaxMs) this.crashStreak = 0;
    const delay = Math.min(
      this.config.restartBackoffMs * 2 ** this.crashStreak,
      this.config.restartBackoffMaxMs,
    );
    this.crashStreak += 1;
    this.restarts += 1;
    this.logger.warn(
      { upstream: this.config.name, restartInMs: delay, restarts: this.restarts },
      'stdio upstream exited; restarting',
    );
    const generation = this.generation;
    this.ready = new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (generation !== this.generation) return resolve();
        void this.restart().then(resolve, resolve);
      }, delay);
      timer.unref();
    });
  }

  /** Starts a fresh child in the slot the session holds, and replays its handshake. */
  private async restart(): Promise<void> {
    if (this.stopped) return;
    await this.spawn();
    await this.replayHandshake();
  }

  /** Re-initialises a new child with the session's own initialize, so the client need not notice. */
  private async replayHandshake(): Promise<void> {
    if (!this.transport || !this.initializeRequest) return;
    const replay: JsonRpcRequest = {
      ...this.initializeRequest,
      id: `warden-replay-${++this.replayCounter}`,
    };
    await this.write(replay).catch(() => undefined);
    if (this.initialized) {
      await this.write({ jsonrpc: '2.0', method: 'notifications/initialized' }).catch(
        () => undefined,
      );
    }
  }
}

function readProgressToken(request: JsonRpcRequest): string | number | undefined {
  const meta = request.params?.['_meta'];
  if (meta === null || typeof meta !== 'object') return undefined;
  const token = (meta as Record<string, unknown>)['progressToken'];
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

/** Map keys that keep 1 and "1" apart, as JSON-RPC does. */
function idKey(id: JsonRpcId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

/**
 * Closes the child's stdin, then escalates to SIGTERM and SIGKILL until it has exited: a child busy
 * with a long call ignores end of input, and must not outlive its session or the gateway.
 */
async function stopChild(transport: StdioClientTransport, exited: Promise<void>): Promise<void> {
  const pid = transport.pid;
  void transport.close().catch(() => undefined);
  if (pid === null) return;
  for (const [signal, graceMs] of [
    ['SIGTERM', EOF_GRACE_MS],
    ['SIGKILL', STOP_GRACE_MS],
  ] as const) {
    if (await settlesWithin(exited, graceMs)) return;
    try {
      process.kill(pid, signal);
    } catch {
      return; // already gone
    }
  }
  await settlesWithin(exited, STOP_GRACE_MS);
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
