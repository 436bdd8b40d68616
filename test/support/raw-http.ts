/**
 * A raw HTTP client for edge tests: every header (Host included) and the body framing are the
 * test's to choose, so a test can send exactly what an attacker or a broken client would.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import {
  ERROR_CATALOGUE,
  httpStatusOf,
  WardenError,
  type ErrorCode,
} from '../../src/domain/errors.js';

export interface RawRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent with Content-Length, unless `chunked` asks for chunked transfer encoding. */
  readonly body?: string | Buffer;
  readonly chunked?: boolean;
  /** The loopback address to send from (127.0.0.2, …), to play another source. */
  readonly localAddress?: string;
}

export interface RawReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

export interface WireMessage {
  readonly jsonrpc?: string;
  readonly id?: string | number | null;
  readonly method?: string;
  readonly params?: Record<string, unknown>;
  readonly result?: Record<string, unknown>;
  readonly error?: { code: number; message: string; data?: { code?: string; reference?: string } };
}

/** The headers a sessionful MCP client sends with every POST. */
export const MCP_POST_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

/** Sends one request on a fresh connection and reads the whole reply. */
export function sendRaw(url: string, options: RawRequest = {}): Promise<RawReply> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body !== undefined && !options.chunked)
      headers['content-length'] = Buffer.byteLength(options.body);
    const request = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        headers,
        agent: false,
        ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    request.on('error', reject);
    if (options.chunked) request.setHeader('transfer-encoding', 'chunked');
    if (options.body !== undefined) request.write(options.body);
    request.end();
  });
}

export interface RawConnection {
  readonly socket: Socket;
  /** What the gateway has sent back so far. */
  received(): string;
  /** Resolves true when the gateway closes the connection within `ms`, false otherwise. */
  closedWithin(ms: number): Promise<boolean>;
}

/**
 * A bare TCP connection to a URL's host, for what no HTTP client sends: a body that stops
 * arriving, headers that never end. The caller writes the request text and destroys the socket.
 */
export async function openRawConnection(url: string): Promise<RawConnection> {
  const target = new URL(url);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  const closed = new Promise<true>((resolve) => socket.once('close', () => resolve(true)));
  return {
    socket,
    received: () => received,
    async closedWithin(ms) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
      try {
        return await Promise.race([closed, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Sends a POST's head announcing a 1000-byte body, and the first byte of it, then stalls. */
export async function startStalledPost(
  url: string,
  headers: Readonly<Record<string, string>>,
): Promise<RawConnection> {
  const target = new URL(url);
  const connection = await openRawConnection(url);
  const lines = Object.entries({ ...MCP_POST_HEADERS, ...headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  connection.socket.write(
    `POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\n${lines}` +
      `Content-Length: 1000\r\n\r\n{`,
  );
  return connection;
}

/** POSTs one JSON-RPC message (or any raw text) the way an MCP client does. */
export function postMcp(
  url: string,
  body: unknown,
  options: { sessionId?: string; headers?: Readonly<Record<string, string>> } = {},
): Promise<RawReply> {
  return sendRaw(url, {
    method: 'POST',
    headers: {
      ...MCP_POST_HEADERS,
      ...(options.sessionId !== undefined && { 'mcp-session-id': options.sessionId }),
      ...options.headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/**
 * A 2026-07-28 request: no session, the envelope in `_meta`, and the Mcp-* headers mirroring the
 * body. Mcp-Name mirrors `params.name` unless `mcpName` is given (`null` sends none).
 */
export function modernRequest(
  id: string | number,
  method: string,
  params: Record<string, unknown>,
  options: { readonly clientName?: string; readonly mcpName?: string | null } = {},
): { body: unknown; headers: Record<string, string> } {
  const name = options.mcpName === undefined ? params['name'] : options.mcpName;
  return {
    body: {
      jsonrpc: '2.0',
      id,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': {},
          'io.modelcontextprotocol/clientInfo': {
            name: options.clientName ?? 'test',
            version: '1',
          },
        },
      },
    },
    headers: {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...(typeof name === 'string' && { 'mcp-name': name }),
    },
  };
}

/** The JSON-RPC messages in a reply: the JSON body, or every `data:` payload of an SSE body. */
export function messagesOf(reply: RawReply): WireMessage[] {
  if (reply.text.trim() === '') return [];
  if (!String(reply.headers['content-type']).startsWith('text/event-stream'))
    return [JSON.parse(reply.text) as WireMessage];
  return reply.text
    .split(/\r?\n\r?\n/)
    .map((event) =>
      event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n'),
    )
    .filter((data) => data.trim() !== '')
    .map((data) => JSON.parse(data) as WireMessage);
}

/** The answer to request `id` in a reply. */
export function answerIn(reply: RawReply, id: string | number): WireMessage {
  const answer = messagesOf(reply).find((message) => message.id === id && !message.method);
  assert.ok(answer, `no answer to request ${id} in: ${reply.status} ${reply.text}`);
  return answer;
}

/** Whether request `id` was answered with a result (not refused: refusals are answered in band). */
export function answeredWithResult(reply: RawReply, id: string | number): boolean {
  if (reply.status !== 200) return false;
  const answer = messagesOf(reply).find((message) => message.id === id && !message.method);
  return answer !== undefined && answer.error === undefined;
}

export function initializeRequest(id: string | number = 'init', protocolVersion = '2025-06-18') {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: {
      protocolVersion,
      capabilities: {},
      clientInfo: { name: 'warden-edge-test', version: '0.0.0' },
    },
  };
}

/** Runs the initialize handshake and returns the session id Warden issued. */
export async function openSession(
  url: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<string> {
  const reply = await postMcp(url, initializeRequest(), { headers });
  assert.equal(reply.status, 200, `initialize failed: ${reply.status} ${reply.text}`);
  assert.ok(answerIn(reply, 'init').result, `initialize was refused: ${reply.text}`);
  const sessionId = reply.headers['mcp-session-id'];
  assert.equal(typeof sessionId, 'string', 'initialize returned no Mcp-Session-Id');
  const initialized = await postMcp(
    url,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { sessionId: sessionId as string, headers },
  );
  assert.equal(initialized.status, 202, `notifications/initialized: ${initialized.text}`);
  return sessionId as string;
}

/** Asserts that a reply is the given Warden error: its HTTP status, JSON-RPC code and data. */
export function assertWardenError(
  reply: RawReply,
  code: ErrorCode,
  id: string | number | null = null,
): WireMessage {
  const spec = ERROR_CATALOGUE[code];
  // A refusal decided about a request (id not null) is answered in band, with HTTP 200.
  const status = httpStatusOf(new WardenError(code), id);
  assert.equal(reply.status, status, `expected ${code}, got ${reply.status} ${reply.text}`);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const body = JSON.parse(reply.text) as WireMessage;
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, id);
  assert.equal(body.error?.code, spec.rpcCode);
  assert.equal(body.error?.data?.code, code);
  assert.equal(typeof body.error?.data?.reference, 'string');
  return body;
}

/** Asserts that a JSON-RPC answer (delivered in-band, e.g. on an SSE stream) is a Warden error. */
export function assertInBandError(answer: WireMessage, code: ErrorCode): void {
  assert.equal(answer.error?.code, ERROR_CATALOGUE[code].rpcCode, JSON.stringify(answer));
  assert.equal(answer.error?.data?.code, code);
}
