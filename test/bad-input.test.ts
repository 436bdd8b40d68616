// Hostile input from an authenticated client: numbers, nesting, strings and paths that would
// make the policy judge one value while the upstream receives another, or make the gateway fail.
// Each is refused at parse with its own 4xx code, never forwarded, and leaves a record findable by
// the reference the client got; what is accepted reaches the upstream exactly as the policy saw it.
// Also the edges of the exchange itself: an oversized upload, a body or headers that never finish.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateHashKey } from '../src/audit/hash-key.js';
import { createArgumentRedactor } from '../src/audit/redaction.js';
import type { ErrorCode } from '../src/domain/errors.js';
import { parseClientMessage } from '../src/mcp/jsonrpc-parse.js';
import {
  freshSource,
  referenceOf,
  sendFrom,
  startAuditedGateway,
  type AuditedGateway,
  type AuditReader,
} from './support/audit-reader.js';
import { TEST_AGENT, type TestGateway } from './support/gateway.js';
import {
  assertWardenError,
  MCP_POST_HEADERS,
  openRawConnection,
  openSession,
  postMcp,
  startStalledPost,
  type RawReply,
} from './support/raw-http.js';
import {
  startScriptedUpstream,
  type ReceivedRequest,
  type ScriptedUpstream,
} from './support/scripted-upstream.js';

/** Small on purpose: the limit is configurable, and the tests read better at this size. */
const MAX_DEPTH = 16;
const REQUEST_TIMEOUT_MS = 1000;

let upstream: ScriptedUpstream;
let audited: AuditedGateway;
let gateway: TestGateway;
let audit: AuditReader;
let endpoint: string;
let auth: Record<string, string>;
let sessionId: string;

before(async () => {
  upstream = await startScriptedUpstream();
  audited = await startAuditedGateway('bad-input', {
    log: { level: 'silent' },
    limits: {
      max_json_depth: MAX_DEPTH,
      request_timeout: `${REQUEST_TIMEOUT_MS}ms`,
      headers_timeout: `${REQUEST_TIMEOUT_MS}ms`,
    },
    upstreams: { fixture: { url: upstream.url } },
  });
  ({ gateway, audit } = audited);
  endpoint = gateway.endpoint('fixture');
  auth = await gateway.authHeaders();
  sessionId = await openSession(endpoint, auth);
});

after(async () => {
  await audited?.close();
  await upstream?.close();
});

/** A tools/call whose arguments (and anything else) are written as raw JSON text. */
function callText(argumentsText: string, id: string | number = 'call'): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"tools/call","params":{"name":"echo","arguments":${argumentsText}}}`;
}

function forwardedCalls(): ReceivedRequest[] {
  return upstream.received.filter((request) => request.message?.method === 'tools/call');
}

/** Sends text as a call in the session; returns the reply and whether it reached the upstream. */
async function send(text: string): Promise<{ reply: RawReply; forwarded: ReceivedRequest[] }> {
  const before = forwardedCalls().length;
  const reply = await postMcp(endpoint, text, { sessionId, headers: auth });
  return { reply, forwarded: forwardedCalls().slice(before) };
}

/** Asserts a parse-time refusal: its code, nothing forwarded, and its record under the reference. */
async function assertRefusedAndRecorded(
  text: string,
  code: ErrorCode,
): Promise<Record<string, unknown> | undefined> {
  const { reply, forwarded } = await send(text);
  const body = assertWardenError(reply, code);
  assert.deepEqual(forwarded, [], `nothing reaches the upstream: ${text.slice(0, 80)}`);
  const reference = referenceOf(reply);
  const [record, ...more] = await audit.recordsOf(reference);
  assert.equal(record?.event, 'request.refused', `a record for ${text.slice(0, 80)}`);
  assert.deepEqual(more, [], 'one record, not two');
  assert.equal(record.errorCode, code);
  assert.equal(record.agent, TEST_AGENT, 'the refused caller is named');
  assert.equal(record.upstream, 'fixture');
  assert.equal(record.details?.['status'], 400);
  return body.error?.data as Record<string, unknown> | undefined;
}

/** Asserts the call went through and returns the arguments the upstream received. */
async function forwardedArguments(text: string): Promise<unknown> {
  const { reply, forwarded } = await send(text);
  assert.equal(reply.status, 200, `${text.slice(0, 80)} → ${reply.text}`);
  assert.equal(forwarded.length, 1);
  return forwarded[0]?.message?.params?.['arguments'];
}

describe('numbers', () => {
  test('refuses a number no 64-bit float holds (1e999, -1e999, …), wherever it is', async () => {
    const cases = [
      callText('{"amount":1e999}'),
      callText('{"amount":-1e999}'),
      callText('{"amount":1E400}'),
      callText('{"list":[1,2,-1e309]}'),
      callText('{"deep":{"deeper":{"amount":1e99999999999999999999}}}'),
      `{"jsonrpc":"2.0","id":1e999,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
      `{"jsonrpc":"2.0","id":"m","method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"progressToken":1e999}}}`,
      // The whole text is judged, a value a repeated key overrides included.
      callText('{"amount":1e999,"amount":1}'),
    ];
    for (const text of cases) {
      const data = await assertRefusedAndRecorded(text, 'WARDEN_NUMBER_OUT_OF_RANGE');
      assert.equal(data?.['reason'], 'overflow', text);
      assert.equal(typeof data?.['offset'], 'number');
    }
  });

  test('refuses a number the gateway would change in transit: beyond 2^53, too precise, too small', async () => {
    const cases: [string, string][] = [
      ['9007199254740993', 'precision'],
      ['-9007199254740993', 'precision'],
      ['12345678901234567890', 'precision'],
      ['1.00000000000000000001', 'precision'],
      ['0.1000000000000000000001', 'precision'],
      ['3.14159265358979323846', 'precision'],
      ['1e-400', 'underflow'],
      ['-2.5e-330', 'underflow'],
    ];
    for (const [number, reason] of cases) {
      const data = await assertRefusedAndRecorded(
        callText(`{"amount":${number}}`),
        'WARDEN_NUMBER_OUT_OF_RANGE',
      );
      assert.equal(data?.['reason'], reason, number);
    }
  });

  test('forwards numbers that survive the round trip with their value unchanged', async () => {
    const exact = [
      '9007199254740992',
      '1234567890123456',
      '1e21',
      '1E+21',
      '0.1',
      '0.30000000000000004',
      '1.0',
      '100e-2',
      '-0',
      '5e-324',
      '1.7976931348623157e308',
      '0.000001',
    ];
    for (const number of exact) {
      const received = await forwardedArguments(callText(`{"amount":${number}}`));
      // As JSON: -0 is sent as 0, the same number (-0 === 0, and the policy compares numbers).
      assert.equal(JSON.stringify(received), JSON.stringify({ amount: Number(number) }), number);
    }
  });
});

describe('nesting', () => {
  /** Arguments nested so that the whole message is `depth` deep (message 1, params 2, arguments 3). */
  function nestedTo(depth: number): string {
    const levels = depth - 3;
    return callText(`${'{"a":'.repeat(levels)}{}${'}'.repeat(levels)}`);
  }

  test('accepts nesting up to limits.max_json_depth and refuses one level more', async () => {
    await forwardedArguments(nestedTo(MAX_DEPTH));
    const data = await assertRefusedAndRecorded(nestedTo(MAX_DEPTH + 1), 'WARDEN_NESTING_TOO_DEEP');
    assert.equal(data?.['maxDepth'], MAX_DEPTH);
  });

  test('refuses 20,000 levels of arrays, objects or both with a 400, not a 500', async () => {
    const cases = [
      callText(`${'['.repeat(20_000)}${']'.repeat(20_000)}`),
      callText(`${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`),
      callText(`{"x":${'[{"y":'.repeat(10_000)}0${'}]'.repeat(10_000)}}`),
      // Never closed: refused for its depth before it is parsed at all.
      callText('['.repeat(50_000)),
    ];
    for (const text of cases) await assertRefusedAndRecorded(text, 'WARDEN_NESTING_TOO_DEEP');
  });

  test('brackets inside strings are text, not nesting', async () => {
    const text = `${'[{'.repeat(5000)}`;
    const received = await forwardedArguments(callText(JSON.stringify({ text })));
    assert.deepEqual(received, { text });
  });

  test('the default limit is 64, and a hostile depth costs no stack', () => {
    const message = (depth: number) =>
      `{"jsonrpc":"2.0","id":1,"method":"ping","params":${'{"a":'.repeat(depth - 2)}{}${'}'.repeat(depth - 2)}}`;
    assert.doesNotThrow(() => parseClientMessage(message(64)));
    assert.throws(() => parseClientMessage(message(65)), { code: 'WARDEN_NESTING_TOO_DEEP' });
    assert.throws(() => parseClientMessage(`[${'['.repeat(1_000_000)}`), {
      code: 'WARDEN_NESTING_TOO_DEEP',
    });
  });
});

describe('strings', () => {
  test('refuses a lone UTF-16 surrogate in any string or key', async () => {
    const cases = [
      callText('{"text":"\\ud800"}'),
      callText('{"text":"\\uDFFF"}'),
      callText('{"text":"a\\ud800b"}'),
      callText('{"text":"\\ud800\\ud800"}'),
      // A low half before a high half is two lone halves, not a pair.
      callText('{"text":"\\udc00\\ud800"}'),
      callText('{"\\ud800":"key"}'),
      callText('{"list":["ok",{"deep":"\\udbff"}]}'),
      callText('{"text":"\\ud800","text":"overridden, still refused"}'),
      `{"jsonrpc":"2.0","id":"\\ud800","method":"tools/call","params":{"name":"echo","arguments":{}}}`,
    ];
    for (const text of cases) await assertRefusedAndRecorded(text, 'WARDEN_INVALID_UNICODE');
  });

  test('half a pair is lone however it is written: raw, escaped, or the two mixed', () => {
    // Over the wire a raw half cannot be sent (UTF-8 has no form for it); a caller handing the
    // parser a JavaScript string can.
    const parse = (text: string) => () =>
      parseClientMessage(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"t":"${text}"}}`);
    for (const lone of ['\ud800', '\udc00x', '\\ud800\udc00\udc00', 'a\ud800\\n']) {
      assert.throws(parse(lone), { code: 'WARDEN_INVALID_UNICODE' }, JSON.stringify(lone));
    }
    for (const pair of ['\ud83d\ude00', '\\ud83d\ude00', '\ud83d\\ude00', '\\ud83d\\ude00']) {
      assert.doesNotThrow(parse(pair), JSON.stringify(pair));
    }
  });

  test('forwards well-formed text unchanged: escaped pairs, emoji, NBSP, RTL marks', async () => {
    const cases: [string, string][] = [
      ['"\\ud83d\\ude00"', '😀'],
      ['"😀"', '😀'],
      ['"a\\u00a0b"', 'a\u00a0b'],
      ['"\\u202eevil"', '\u202eevil'],
      ['"\\u0000"', '\u0000'],
    ];
    for (const [literal, value] of cases) {
      assert.deepEqual(await forwardedArguments(callText(`{"text":${literal}}`)), { text: value });
    }
  });

  test('a key repeated in an object reaches the upstream once, with the value the policy judged', async () => {
    const { reply, forwarded } = await send(
      callText('{"amount":1,"text":"decoy","amount":2,"text":"real"}'),
    );
    assert.equal(reply.status, 200, reply.text);
    const received = forwarded[0]?.message?.params?.['arguments'];
    assert.deepEqual(received, { amount: 2, text: 'real' });
    const reference = String(reply.headers['x-request-id']);
    const [decision] = await audit.recordsOf(reference);
    assert.equal(decision?.event, 'call.allowed');
    assert.deepEqual(decision.arguments, { amount: 2, text: 'real' });
    const hashKey = loadOrCreateHashKey(audited.hashKeyFile);
    assert.equal(
      decision.argumentsHash,
      createArgumentRedactor({ hashKey }).hashArguments(received),
      'the policy judged, and the log hashed, exactly what the upstream received',
    );
  });
});

describe('the exchange itself', () => {
  test('answers a malformed percent-encoding in the path with 400, before authentication', async () => {
    for (const path of [
      '/mcp/%',
      '/mcp/%zz',
      '/mcp/fix%ture',
      '/mcp/%E0%A4%A',
      '/.well-known/oauth-protected-resource/mcp/%',
      '/admin/approvals/%',
      '/%',
    ]) {
      for (const headers of [{}, auth]) {
        const reply = await sendFrom(freshSource(), `${gateway.url}${path}`, { headers });
        assertWardenError(reply, 'WARDEN_INVALID_PATH');
        const [record] = await audit.recordsOf(referenceOf(reply));
        assert.equal(record?.event, 'request.refused', path);
        assert.equal(record.errorCode, 'WARDEN_INVALID_PATH');
        assert.equal(record.details?.['path'], path);
      }
    }
  });

  test('a fetch client sending 20 MB reads the 413 (or the 401 without a token), not EPIPE', async () => {
    const body = Buffer.alloc(20 * 1024 * 1024, 0x20);
    for (const [headers, status] of [
      [auth, 413],
      [{}, 401],
    ] as const) {
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const response = await fetch(endpoint, {
          method: 'POST',
          headers: { ...MCP_POST_HEADERS, ...headers },
          body,
        });
        assert.equal(response.status, status);
        const answer = (await response.json()) as { error: { data: { reference: string } } };
        assert.equal(typeof answer.error.data.reference, 'string');
      }
    }
  });

  test('a client that writes its whole 20 MB body before reading reads the 413 (or 401), not EPIPE', async () => {
    // Answering early and closing would leave the rest unread, and a socket closed with unread
    // data is reset: this client's writes would fail before it ever read the answer.
    for (const [headers, status] of [
      [{ ...auth, 'mcp-session-id': sessionId }, 413],
      [{}, 401],
    ] as const) {
      const target = new URL(endpoint);
      const upload = await openRawConnection(endpoint);
      const head = Object.entries({ ...MCP_POST_HEADERS, ...headers })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      upload.socket.write(
        `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\n${head}` +
          `Content-Length: ${20 * 1024 * 1024}\r\n\r\n`,
      );
      const failed = await new Promise<Error | null | undefined>((resolve) =>
        upload.socket.write(Buffer.alloc(20 * 1024 * 1024, 0x20), resolve),
      );
      assert.ok(!failed, `the whole body was taken, not cut off: ${String(failed)}`);
      // The body was read to its end, so the connection may stay open: wait for the answer.
      const deadline = Date.now() + 10_000;
      while (!upload.received().includes('"reference":"') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      upload.socket.destroy();
      assert.match(upload.received(), new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.match(upload.received(), /"reference":"/);
    }
  });

  test('a body that stops arriving is refused with 408 after limits.request_timeout, and recorded', async () => {
    const stalled = await startStalledPost(endpoint, { ...auth, 'mcp-session-id': sessionId });
    const closed = await stalled.closedWithin(REQUEST_TIMEOUT_MS * 10);
    stalled.socket.destroy();
    assert.ok(closed, 'the slow body was cut off');
    const received = stalled.received();
    assert.match(received, /^HTTP\/1\.1 408 /);
    assert.match(received, /\r\nconnection: close\r\n/i);
    const reference = /"reference":"([^"]+)"/.exec(received)?.[1];
    assert.ok(reference, received);
    assert.match(received, /WARDEN_REQUEST_TIMEOUT/);
    const [record] = await audit.recordsOf(reference);
    assert.equal(record?.event, 'request.refused');
    assert.equal(record.errorCode, 'WARDEN_REQUEST_TIMEOUT');
    assert.equal(record.agent, TEST_AGENT);
  });

  test('headers that never finish are cut off after limits.headers_timeout', async () => {
    const url = new URL(endpoint);
    const slow = await openRawConnection(endpoint);
    slow.socket.write(`POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nX-Slow: `);
    // Trickled a byte at a time: each arrives in time, the whole never does.
    const writer = setInterval(() => slow.socket.destroyed || slow.socket.write('a'), 100);
    const closed = await slow.closedWithin(REQUEST_TIMEOUT_MS * 10);
    clearInterval(writer);
    slow.socket.destroy();
    assert.ok(closed, 'the slow headers were cut off');
    assert.match(slow.received(), /^HTTP\/1\.1 408 /);
  });

  test('an SSE stream and a slow answer outlive limits.request_timeout: only the arrival is timed', async () => {
    upstream.intercept = (message, request, response) => {
      if (request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.write(': open\n\n');
        return true;
      }
      if (message?.method === 'tools/call') {
        setTimeout(() => {
          response
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [] } }));
        }, REQUEST_TIMEOUT_MS * 2.5);
        return true;
      }
      return false;
    };
    try {
      const controller = new AbortController();
      const stream = await fetch(endpoint, {
        headers: { ...auth, accept: 'text/event-stream', 'mcp-session-id': sessionId },
        signal: controller.signal,
      });
      assert.equal(stream.status, 200);
      const reader = stream.body?.getReader();
      let ended = false;
      const reading = (async () => {
        while (reader && !(await reader.read()).done);
        ended = true;
      })().catch(() => undefined);
      const slow = await postMcp(endpoint, callText('{}'), { sessionId, headers: auth });
      assert.equal(slow.status, 200, slow.text);
      assert.equal(ended, false, 'the server stream is still open');
      controller.abort();
      await reading;
    } finally {
      upstream.intercept = undefined;
    }
  });
});
