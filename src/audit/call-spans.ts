/**
 * OpenTelemetry spans per call, through `@opentelemetry/api` only: without a tracer provider
 * registered by the host they cost nothing; with one (e.g. the OTel SDK exporting to a
 * collector), each call becomes a span in the client's trace, named by method and tool.
 */
import {
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  context,
  trace,
  type Span,
} from '@opentelemetry/api';
import type { JsonRpcResponse } from '../domain/jsonrpc.js';
import { WardenError } from '../domain/errors.js';
import type { CallFacts } from './call-entry.js';
import { describeTarget } from './call-entry.js';
import type { CallOutcome, Decision } from './call-recorder.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Starts the call's span, child of the client's traceparent; returns how to end it. */
export function startCallSpan(facts: CallFacts, decision: Decision): CallOutcome {
  const tracer = trace.getTracer('mcp-warden');
  const { tool } = describeTarget(facts.call);
  const { method } = facts.call.message;
  const span: Span = tracer.startSpan(
    tool === undefined ? method : `${method} ${tool}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'rpc.system': 'jsonrpc',
        'rpc.method': method,
        'mcp.upstream': facts.upstream,
        ...(tool !== undefined && { 'mcp.tool': tool }),
        'warden.request_id': facts.requestId,
        'warden.agent': facts.identity.agent,
        ...(facts.identity.user !== undefined && { 'warden.user': facts.identity.user }),
        'warden.decision': decision.effect,
      },
    },
    parentContext(facts.traceparent),
  );
  let ended = false;
  return {
    answered(response: JsonRpcResponse) {
      if (ended) return;
      ended = true;
      if ('error' in response) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: `JSON-RPC ${response.error.code}` });
      }
      span.end();
    },
    failed(error: unknown) {
      if (ended) return;
      ended = true;
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof WardenError ? error.code : 'WARDEN_INTERNAL',
      });
      span.end();
    },
  };
}

function parentContext(traceparent: string | undefined) {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  if (!match) return context.active();
  return trace.setSpanContext(context.active(), {
    traceId: match[1] ?? '',
    spanId: match[2] ?? '',
    traceFlags: Number.parseInt(match[3] ?? '0', 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}
