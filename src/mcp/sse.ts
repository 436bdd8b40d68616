/** Server-Sent Events: an incremental parser for upstream streams and a formatter for clients. */

export interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data: string;
  readonly retry?: number;
}

/**
 * Parses an SSE byte stream into events as they complete. Comment lines are dropped;
 * an event with only an id (a "priming" event) is kept, since clients resume from it.
 */
export async function* parseSseStream(
  chunks: AsyncIterable<Buffer | string>,
): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let fields: EventFields = { data: [], seen: false };
  // A CR that ends a chunk may be the first half of a CRLF whose LF is still in flight.
  let skipLeadingLf = false;
  function* takeLines(): Generator<SseEvent> {
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
      if (newline === buffer.length - 1 && buffer[newline] === '\r') skipLeadingLf = true;
      const line = buffer.slice(0, newline);
      const width = buffer.startsWith('\r\n', newline) ? 2 : 1;
      buffer = buffer.slice(newline + width);
      if (line === '') {
        if (fields.seen) yield toEvent(fields);
        fields = { data: [], seen: false };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const name = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      fields.seen = true;
      if (name === 'data') fields.data.push(value);
      else if (name === 'id') fields.id = value;
      else if (name === 'event') fields.event = value;
      else if (name === 'retry' && /^\d+$/.test(value)) fields.retry = Number(value);
    }
  }
  for await (const chunk of chunks) {
    let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (skipLeadingLf && text !== '') {
      if (text.startsWith('\n')) text = text.slice(1);
      skipLeadingLf = false;
    }
    buffer += text;
    yield* takeLines();
  }
  buffer += decoder.decode();
  yield* takeLines();
  if (fields.seen) yield toEvent(fields);
}

interface EventFields {
  id?: string;
  event?: string;
  data: string[];
  retry?: number;
  seen: boolean;
}

function toEvent(fields: EventFields): SseEvent {
  return {
    data: fields.data.join('\n'),
    ...(fields.id !== undefined && { id: fields.id }),
    ...(fields.event !== undefined && { event: fields.event }),
    ...(fields.retry !== undefined && { retry: fields.retry }),
  };
}

/** Formats one event for the wire. Multi-line data is split as the SSE grammar requires. */
export function formatSseEvent(event: SseEvent): string {
  let out = '';
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.retry !== undefined) out += `retry: ${event.retry}\n`;
  for (const line of event.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}
