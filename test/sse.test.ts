// Server-Sent Events as Warden reads them from upstreams and writes them to clients. The parser
// must give the same events however the network splits the bytes, or a relayed message could be
// cut in two, merged with the next, or lose the id a client resumes from.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatSseEvent, parseSseStream, type SseEvent } from '../src/mcp/sse.js';

async function parse(chunks: Iterable<Buffer | string>): Promise<SseEvent[]> {
  async function* source() {
    yield* chunks;
  }
  const events: SseEvent[] = [];
  for await (const event of parseSseStream(source())) events.push(event);
  return events;
}

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts bytes at random places, including inside CRLF pairs and multi-byte characters. */
function splitRandomly(bytes: Buffer, next: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = 1 + Math.floor(next() * Math.min(12, bytes.length - at));
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

const MESSAGE = '{"jsonrpc":"2.0","id":1,"result":{"text":"naïve – 日本 ✓"}}';

test('reads events separated by LF, CRLF or CR alike', async () => {
  const expected = [
    { event: 'message', id: '1', data: MESSAGE },
    { event: 'message', id: '2', data: 'second' },
  ];
  for (const eol of ['\n', '\r\n', '\r']) {
    const text = [
      `event: message${eol}id: 1${eol}data: ${MESSAGE}${eol}${eol}`,
      `event: message${eol}id: 2${eol}data: second${eol}${eol}`,
    ].join('');
    assert.deepEqual(await parse([text]), expected, JSON.stringify(eol));
  }
});

test('joins multi-line data with LF and keeps the space after the colon optional', async () => {
  const events = await parse(['data: first\ndata:second\ndata:  indented\ndata\n\n']);
  assert.deepEqual(events, [{ data: 'first\nsecond\n indented\n' }]);
});

test('drops comments, including keep-alives between events', async () => {
  const events = await parse([': keep-alive\n\n', ':\ndata: a\n: inside\n\n', ': bye\n\n']);
  assert.deepEqual(events, [{ data: 'a' }]);
});

test('keeps a priming event that carries only an id and a retry hint', async () => {
  const events = await parse(['id: 7_0\nretry: 1000\n\n', 'id: 7_1\ndata: x\n\n']);
  assert.deepEqual(events, [
    { id: '7_0', retry: 1000, data: '' },
    { id: '7_1', data: 'x' },
  ]);
});

test('ignores a retry that is not a whole number of milliseconds', async () => {
  const events = await parse(['retry: soon\ndata: a\n\n', 'retry: -5\ndata: b\n\n']);
  assert.deepEqual(events, [{ data: 'a' }, { data: 'b' }]);
});

test('a CRLF split across two chunks is one line ending, not two', async () => {
  const events = await parse(['data: a\r', '\ndata: b\r\n', '\r', '\n']);
  assert.deepEqual(events, [{ data: 'a\nb' }]);
});

test('an event ended by a CR at the end of a chunk is delivered without waiting for more', async () => {
  let release: () => void = () => undefined;
  const more = new Promise<void>((resolve) => (release = resolve));
  async function* source() {
    yield 'data: a\r\r';
    await more;
    yield '\ndata: b\r\n\r\n';
  }
  const events = parseSseStream(source());
  const first = await Promise.race([events.next(), sleep(1000).then(() => 'held back')]);
  assert.deepEqual(first, { value: { data: 'a' }, done: false });
  release();
  assert.deepEqual((await events.next()).value, { data: 'b' });
  assert.equal((await events.next()).done, true);
});

test('formats events the parser reads back unchanged', async () => {
  const events: SseEvent[] = [
    { event: 'message', id: '3_12', data: MESSAGE },
    { id: '3_0', retry: 500, data: '' },
    { data: 'line one\nline two\n\nafter a blank line' },
    { event: 'message', data: ' leading space' },
  ];
  const wire = events.map(formatSseEvent).join('');
  assert.deepEqual(await parse([wire]), events);
});

test('formats data with CR or CRLF line breaks as separate data lines', async () => {
  const wire = formatSseEvent({ data: 'a\r\nb\rc' });
  assert.equal(wire, 'data: a\ndata: b\ndata: c\n\n');
  assert.deepEqual(await parse([wire]), [{ data: 'a\nb\nc' }]);
});

test('gives the same events however the stream is split into chunks', async () => {
  const events: SseEvent[] = [
    { id: '1_0', retry: 1000, data: '' },
    { event: 'message', id: '1_1', data: MESSAGE },
    { event: 'message', id: '1_2', data: 'multi\nline\ndata' },
    { data: '' },
    { event: 'message', id: '1_3', data: '{"jsonrpc":"2.0","method":"notifications/progress"}' },
  ];
  const formatted = events.map(formatSseEvent).join(': keep-alive\n\n');
  for (const eol of ['\n', '\r\n', '\r']) {
    const bytes = Buffer.from(formatted.replace(/\n/g, eol), 'utf8');
    for (let seed = 1; seed <= 200; seed += 1) {
      const chunks = splitRandomly(bytes, random(seed * 31 + eol.length));
      assert.deepEqual(
        await parse(chunks),
        events,
        `seed ${seed}, eol ${JSON.stringify(eol)}, chunks ${chunks.length}`,
      );
    }
  }
});
