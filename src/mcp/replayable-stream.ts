/**
 * SSE streams that Warden itself originates (for stdio upstreams), with event ids so a client
 * that lost its connection can resume with Last-Event-ID and miss nothing, as the Streamable
 * HTTP transport allows. Each stream keeps its events until the session evicts it.
 */
import { AsyncQueue } from './async-queue.js';
import type { UpstreamEvent } from './upstream/types.js';

/** Events kept per stream, at most; a stream this long is a server stream, and old events go. */
const MAX_EVENTS_PER_STREAM = 1000;

export class ReplayableStream {
  private readonly events: Array<{ seq: number; event: UpstreamEvent }> = [];
  private consumer: AsyncQueue<UpstreamEvent> | undefined;
  private nextSeq = 1;
  private ended = false;

  constructor(
    readonly streamId: number,
    /** Sent first on every (re)connection: the SSE retry hint, when the client's revision supports it. */
    private readonly primingRetryMs: number | undefined,
  ) {}

  get isEnded(): boolean {
    return this.ended;
  }

  push(event: UpstreamEvent): void {
    if (this.ended) return;
    const seq = this.nextSeq++;
    const withId = { ...event, id: `${this.streamId}_${seq}` };
    this.events.push({ seq, event: withId });
    if (this.events.length > MAX_EVENTS_PER_STREAM) this.events.shift();
    this.consumer?.push(withId);
  }

  end(): void {
    this.ended = true;
    this.consumer?.end();
  }

  /** Connects a client, replaying every event after `afterSeq`; replaces any earlier client. */
  attach(afterSeq = 0): AsyncQueue<UpstreamEvent> {
    this.consumer?.end();
    const consumer = new AsyncQueue<UpstreamEvent>();
    this.consumer = consumer;
    if (this.primingRetryMs !== undefined) {
      consumer.push({ id: `${this.streamId}_0`, retry: this.primingRetryMs });
    }
    for (const { seq, event } of this.events) if (seq > afterSeq) consumer.push(event);
    if (this.ended) consumer.end();
    return consumer;
  }
}

/** Parses an event id written by ReplayableStream into its stream and position. */
export function parseEventId(eventId: string): { streamId: number; seq: number } | undefined {
  const match = /^(\d+)_(\d+)$/.exec(eventId);
  if (!match) return undefined;
  return { streamId: Number(match[1]), seq: Number(match[2]) };
}
