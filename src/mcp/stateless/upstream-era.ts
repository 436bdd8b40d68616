/**
 * Which protocol era an upstream speaks. A 2026-07-28 upstream gets modern requests relayed as
 * they are; an older one is served through the legacy bridge. HTTP upstreams are asked once
 * with server/discover; stdio upstreams are bridged (they are started per session anyway).
 */
import { STATELESS_REVISION } from '../../domain/protocol.js';
import { WardenError } from '../../domain/errors.js';
import type { JsonRpcRequest } from '../../domain/jsonrpc.js';
import { readAnswer } from '../upstream/reply-answer.js';
import type { ForwardContext, UpstreamConnector, UpstreamReply } from '../upstream/types.js';
import { CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, PROTOCOL_VERSION_KEY } from './envelope.js';

export type UpstreamEra = 'modern' | 'legacy';

/** Remembers each upstream's era; a failed probe (network error) is not remembered. */
export function createEraDetector(): (
  connector: UpstreamConnector,
  context: ForwardContext,
) => Promise<UpstreamEra> {
  const known = new Map<string, Promise<UpstreamEra>>();
  return (connector, context) => {
    if (connector.kind === 'stdio') return Promise.resolve('legacy');
    let era = known.get(connector.name);
    if (!era) {
      era = probeEra(connector, context);
      known.set(connector.name, era);
      era.catch(() => known.delete(connector.name));
    }
    return era;
  };
}

async function probeEra(
  connector: UpstreamConnector,
  context: ForwardContext,
): Promise<UpstreamEra> {
  const probe: JsonRpcRequest = {
    jsonrpc: '2.0',
    id: 'warden-discover-probe',
    method: 'server/discover',
    params: {
      _meta: {
        [PROTOCOL_VERSION_KEY]: STATELESS_REVISION,
        [CLIENT_CAPABILITIES_KEY]: {},
        [CLIENT_INFO_KEY]: { name: 'warden', version: '0.1.0' },
      },
    },
  };
  const session = connector.openSession();
  let reply: UpstreamReply;
  try {
    reply = await session.send(probe, {
      ...context,
      protocolVersion: STATELESS_REVISION,
      mcpHeaders: { 'mcp-method': 'server/discover' },
    });
  } catch (error) {
    // Some older servers answer an unknown method with HTTP 500: that is an answer, not an outage.
    if (error instanceof WardenError && error.code === 'WARDEN_UPSTREAM_FAILED') return 'legacy';
    throw error;
  }
  return (await supportsModern(reply)) ? 'modern' : 'legacy';
}

async function supportsModern(reply: UpstreamReply): Promise<boolean> {
  const message = await readAnswer(reply);
  if (!message || !('result' in message)) return false;
  const versions = message.result['supportedVersions'];
  return Array.isArray(versions) && versions.includes(STATELESS_REVISION);
}
