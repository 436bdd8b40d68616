/**
 * With an OpenTelemetry SDK registered by the host, every call through Warden becomes a span in
 * the client's trace, carrying who called which tool and how it ended.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { startScriptedUpstream, type ScriptedUpstream } from './support/scripted-upstream.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';

const exporter = new InMemorySpanExporter();
let upstream: ScriptedUpstream;
let gateway: TestGateway;

before(async () => {
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  upstream = await startScriptedUpstream();
  gateway = await startTestGateway({
    log: { level: 'silent' },
    upstreams: { fixture: { url: upstream.url } },
  });
});

after(async () => {
  await gateway?.close();
  await upstream?.close();
  trace.disable();
});

test('a tool call is a span of the client trace, with the caller and the tool', async () => {
  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');
  const headers = {
    ...(await gateway.authHeaders({ user: 'ada@example.com' })),
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    traceparent: `00-${traceId}-${parentSpanId}-01`,
  };
  const init = await fetch(gateway.endpoint('fixture'), {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 't', version: '1' },
      },
    }),
  });
  const session = init.headers.get('mcp-session-id') ?? '';
  await init.text();
  const call = await fetch(gateway.endpoint('fixture'), {
    method: 'POST',
    headers: { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'hi' } },
    }),
  });
  assert.equal(call.status, 200);
  await call.text();
  const span = exporter
    .getFinishedSpans()
    .find((candidate) => candidate.name === 'tools/call echo');
  assert.ok(
    span,
    `spans: ${exporter
      .getFinishedSpans()
      .map((s) => s.name)
      .join(', ')}`,
  );
  assert.equal(span.spanContext().traceId, traceId, 'the span joins the client trace');
  assert.equal(span.parentSpanContext?.spanId, parentSpanId);
  assert.equal(span.attributes['warden.agent'], 'test-agent');
  assert.equal(span.attributes['warden.user'], 'ada@example.com');
  assert.equal(span.attributes['mcp.tool'], 'echo');
  assert.equal(span.attributes['warden.decision'], 'allow');
  assert.equal(span.status.code, 0, 'unset: the call succeeded');
});
