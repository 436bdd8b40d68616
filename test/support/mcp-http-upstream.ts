/**
 * A real MCP server (SDK `McpServer` or low-level `Server`) served statelessly over Streamable
 * HTTP on 127.0.0.1, port 0: every POST gets a fresh server from the factory, so a test can
 * change what the next one lists (a rug pull) by changing what the factory builds. Every
 * JSON-RPC message received is recorded, so a test can prove a refused call never arrived.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export interface ReceivedMessage {
  readonly method?: string;
  readonly params?: Record<string, unknown>;
}

export interface McpHttpUpstream {
  /** The MCP endpoint, e.g. http://127.0.0.1:41234/mcp. */
  readonly url: string;
  /** Every JSON-RPC message received, oldest first. */
  readonly received: ReceivedMessage[];
  /** The tools/call requests received for one tool. */
  callsTo(tool: string): ReceivedMessage[];
  close(): Promise<void>;
}

export async function startMcpHttpUpstream(
  createMcpServer: () => McpServer | Server,
): Promise<McpHttpUpstream> {
  const received: ReceivedMessage[] = [];
  const server = createServer((request, response) => {
    void (async () => {
      const body = await readJson(request);
      if (body !== null && typeof body === 'object') received.push(body as ReceivedMessage);
      const mcp = createMcpServer();
      // No sessionIdGenerator: stateless, so each POST stands alone.
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
      response.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(request, response, body);
    })().catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    received,
    callsTo: (tool) =>
      received.filter(
        (message) => message.method === 'tools/call' && message.params?.['name'] === tool,
      ),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}
