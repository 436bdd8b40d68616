/**
 * A minimal Streamable HTTP MCP upstream on plain node:http, for edge tests. It records every
 * request it receives (headers included), answers initialize / tools/list / tools/call as JSON,
 * and lets a test take over any exchange to misbehave: stall, fail, forget the session.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WireMessage } from './raw-http.js';

export interface ReceivedRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly message: WireMessage | undefined;
}

/** Takes over one exchange; return true when it has answered (or deliberately never will). */
export type Intercept = (
  message: WireMessage | undefined,
  request: IncomingMessage,
  response: ServerResponse,
) => boolean;

export interface ScriptedUpstream {
  /** The MCP endpoint, e.g. http://127.0.0.1:41234/mcp. */
  readonly url: string;
  /** Every request received, oldest first. */
  readonly received: ReceivedRequest[];
  /** Session ids this upstream issued and still remembers. */
  readonly sessions: Set<string>;
  /** The tools it lists (the gateway refuses calls to tools an upstream does not list). */
  tools: string[];
  intercept: Intercept | undefined;
  close(): Promise<void>;
}

export async function startScriptedUpstream(): Promise<ScriptedUpstream> {
  const received: ReceivedRequest[] = [];
  const sessions = new Set<string>();
  const upstream: ScriptedUpstream = {
    url: '',
    received,
    sessions,
    tools: ['echo'],
    intercept: undefined,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const message = text === '' ? undefined : (JSON.parse(text) as WireMessage);
      received.push({ method: request.method ?? '', headers: request.headers, message });
      if (upstream.intercept?.(message, request, response)) return;
      answer(message, request, response, sessions, upstream.tools);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(upstream, { url: `http://127.0.0.1:${port}/mcp` });
}

function answer(
  message: WireMessage | undefined,
  request: IncomingMessage,
  response: ServerResponse,
  sessions: Set<string>,
  tools: readonly string[],
): void {
  const sessionId = request.headers['mcp-session-id'];
  if (request.method === 'POST' && message?.method === 'initialize') {
    const issued = `upstream-${randomUUID()}`;
    sessions.add(issued);
    const requested = message.params?.['protocolVersion'];
    sendJson(
      response,
      200,
      {
        jsonrpc: '2.0',
        id: message.id,
        result: {
          protocolVersion: typeof requested === 'string' ? requested : '2025-06-18',
          capabilities: { tools: {} },
          serverInfo: { name: 'scripted-upstream', version: '0.0.0' },
        },
      },
      { 'mcp-session-id': issued },
    );
    return;
  }
  if (typeof sessionId !== 'string' || !sessions.has(sessionId)) {
    sendJson(response, 404, {
      jsonrpc: '2.0',
      id: null,
      error: { code: -32001, message: 'Session not found' },
    });
    return;
  }
  if (request.method === 'DELETE') {
    sessions.delete(sessionId);
    response.writeHead(200).end();
    return;
  }
  if (request.method !== 'POST' || message === undefined) {
    response.writeHead(405, { allow: 'POST, DELETE' }).end();
    return;
  }
  if (message.id === undefined || message.method === undefined) {
    response.writeHead(202).end();
    return;
  }
  sendJson(response, 200, { jsonrpc: '2.0', id: message.id, ...resultFor(message, tools) });
}

function resultFor(
  message: WireMessage,
  tools: readonly string[],
): Pick<WireMessage, 'result' | 'error'> {
  switch (message.method) {
    case 'tools/list':
      return {
        result: {
          tools: tools.map((name) => ({ name, inputSchema: { type: 'object', properties: {} } })),
        },
      };
    case 'tools/call':
      return { result: { content: [{ type: 'text', text: 'echoed' }] } };
    case 'ping':
      return { result: {} };
    default:
      return { error: { code: -32601, message: 'Method not found' } };
  }
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response
    .writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    })
    .end(text);
}
