/**
 * A scripted client session against server-everything that exercises every kind of MCP
 * message: requests, notifications (progress), and server-to-client
 * requests (sampling, elicitation, roots). It returns a transcript that must be identical
 * whether the client talks to the server directly or through Warden.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

export interface EverythingTranscript {
  readonly serverName: string | undefined;
  readonly tools: string[];
  readonly echo: unknown;
  readonly sum: unknown;
  readonly image: unknown;
  readonly structured: unknown;
  readonly resourcePages: string[][];
  readonly resourceRead: unknown;
  readonly templates: string[];
  readonly prompts: string[];
  readonly prompt: unknown;
  readonly progress: Array<{ progress: number; total: number | undefined }>;
  readonly longRunning: unknown;
  readonly sampling: unknown;
  readonly samplingRequests: unknown[];
  readonly elicitation: unknown;
  readonly roots: unknown;
  readonly toolError: unknown;
  readonly setLevel: unknown;
}

export async function runEverythingSession(
  url: string,
  headers: Record<string, string> = {},
): Promise<EverythingTranscript> {
  const client = new Client(
    { name: 'transparency-test', version: '1.0.0' },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
  );
  const samplingRequests: unknown[] = [];
  client.setRequestHandler(CreateMessageRequestSchema, (request) => {
    samplingRequests.push(request.params.messages);
    return {
      role: 'assistant',
      model: 'test-model',
      content: { type: 'text', text: 'sampled reply' },
    };
  });
  client.setRequestHandler(ElicitRequestSchema, () => ({ action: 'decline' }));
  client.setRequestHandler(ListRootsRequestSchema, () => ({
    roots: [{ uri: 'file:///tmp/warden-root', name: 'test root' }],
  }));
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }),
  );
  try {
    const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
    const resourcePages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listResources(cursor === undefined ? {} : { cursor });
      resourcePages.push(page.resources.map((resource) => resource.uri));
      cursor = page.nextCursor;
    } while (cursor !== undefined && resourcePages.length < 20);
    const firstUri = resourcePages[0]?.[0];
    const progress: Array<{ progress: number; total: number | undefined }> = [];
    const transcript: EverythingTranscript = {
      serverName: client.getServerVersion()?.name,
      tools,
      echo: await client.callTool({
        name: 'echo',
        arguments: { message: 'hello through the gateway' },
      }),
      sum: await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }),
      image: await client.callTool({ name: 'get-tiny-image', arguments: {} }),
      structured: await client.callTool({
        name: 'get-structured-content',
        arguments: { location: 'New York' },
      }),
      resourcePages,
      resourceRead:
        firstUri === undefined ? undefined : await client.readResource({ uri: firstUri }),
      templates: (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate),
      prompts: (await client.listPrompts()).prompts.map((prompt) => prompt.name).sort(),
      prompt: await client.getPrompt({ name: 'simple-prompt', arguments: {} }),
      longRunning: await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        undefined,
        { onprogress: (p) => progress.push({ progress: p.progress, total: p.total }) },
      ),
      progress,
      sampling: await client.callTool({
        name: 'trigger-sampling-request',
        arguments: { prompt: 'say hi', maxTokens: 20 },
      }),
      samplingRequests,
      elicitation: await client.callTool({ name: 'trigger-elicitation-request', arguments: {} }),
      roots: await client.callTool({ name: 'get-roots-list', arguments: {} }),
      toolError: await client
        .callTool({ name: 'no-such-tool', arguments: {} })
        // An MCP error: its data.code names a gateway's refusal (answered in band since HTTP 200).
        .catch(
          (error: Error & { data?: { code?: unknown } }) =>
            `${error.message} ${String(error.data?.code ?? '')}`,
        ),
      setLevel: await client.setLoggingLevel('info'),
    };
    return transcript;
  } finally {
    await client.close();
  }
}
