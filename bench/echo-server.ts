// The benchmark's upstream: an SDK 1.x McpServer with one `echo` tool, as small as an MCP
// server gets, so the numbers measure the hop in front of it rather than the tool.
//   node --import tsx bench/echo-server.ts stdio          newline-delimited JSON-RPC on stdio
//   node --import tsx bench/echo-server.ts http [port]    Streamable HTTP with sessions at /mcp;
//                                                         prints its URL on stdout once listening
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const MCP_PATH = '/mcp';
const MAX_BODY_BYTES = 1024 * 1024;

/** A fresh server with the `echo` tool; one per session, as SDK 1.x servers are written. */
function createEchoServer(): McpServer {
  const server = new McpServer({ name: 'warden-bench-echo', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Returns its text unchanged.', inputSchema: { text: z.string() } },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

async function serveStdio(): Promise<void> {
  const server = createEchoServer();
  // Exit when the client closes our stdin, so a stopped gateway never leaves orphans.
  process.stdin.once('end', () => void server.close().finally(() => process.exit(0)));
  await server.connect(new StdioServerTransport());
}

async function serveHttp(port: number): Promise<void> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.url ?? '/').split('?')[0] !== MCP_PATH) {
      res.writeHead(404).end();
      return;
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (transport === undefined) {
      if (typeof sessionId === 'string' || !isInitializeRequest(body)) {
        res.writeHead(typeof sessionId === 'string' ? 404 : 400).end();
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, created),
        onsessionclosed: (id) => void sessions.delete(id),
      });
      created.onclose = () => {
        if (created.sessionId !== undefined) sessions.delete(created.sessionId);
      };
      await createEchoServer().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  }

  const httpServer = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  httpServer.listen(port, '127.0.0.1');
  await once(httpServer, 'listening');
  const { port: bound } = httpServer.address() as AddressInfo;
  process.stdout.write(`http://127.0.0.1:${bound}${MCP_PATH}\n`);
  process.once('SIGTERM', () => {
    httpServer.close();
    httpServer.closeAllConnections();
    process.exit(0);
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

const [mode, portArgument] = process.argv.slice(2);
if (mode === 'stdio') {
  await serveStdio();
} else if (mode === 'http') {
  await serveHttp(Number(portArgument ?? 0));
} else {
  process.stderr.write('usage: echo-server.ts stdio | http [port]\n');
  process.exit(2);
}
