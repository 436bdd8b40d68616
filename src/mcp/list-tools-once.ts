/**
 * Lists an upstream's tools on a session of Warden's own, with no client behind it: initialize,
 * tools/list (every page), then end the session. For checks made before any client connects
 * (`warden policy validate --live`).
 */
import { randomUUID } from 'node:crypto';
import { SESSIONFUL_REVISIONS } from '../domain/protocol.js';
import { WardenError } from '../domain/errors.js';
import type { JsonRpcRequest } from '../domain/jsonrpc.js';
import { listUpstreamTools } from './list-upstream-tools.js';
import { readAnswer } from './upstream/reply-answer.js';
import { backgroundContext, type UpstreamConnector } from './upstream/types.js';

/** The newest sessionful revision: what a plain MCP server most likely speaks. */
const REVISION = SESSIONFUL_REVISIONS[SESSIONFUL_REVISIONS.length - 1];

/** The raw Tool objects the upstream lists. */
export async function listToolsOnce(connector: UpstreamConnector): Promise<unknown[]> {
  const session = connector.openSession();
  const requestId = `warden-list-tools-${randomUUID()}`;
  const context = backgroundContext(requestId);
  try {
    const initialize: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: `${requestId}-initialize`,
      method: 'initialize',
      params: {
        protocolVersion: REVISION,
        capabilities: {},
        clientInfo: { name: 'warden-policy-validate', version: '1' },
      },
    };
    const answer = await readAnswer(await session.send(initialize, context), initialize.id);
    if (answer === undefined || !('result' in answer)) {
      throw new WardenError(
        'WARDEN_UPSTREAM_PROTOCOL_ERROR',
        answer === undefined
          ? 'no answer to initialize'
          : `the upstream refused to initialize: ${answer.error.message}`,
      );
    }
    const negotiated = answer.result['protocolVersion'];
    const sessionContext = backgroundContext(
      requestId,
      typeof negotiated === 'string' ? negotiated : REVISION,
    );
    await session.send({ jsonrpc: '2.0', method: 'notifications/initialized' }, sessionContext);
    return await listUpstreamTools(session, sessionContext);
  } finally {
    await session.terminate(context).catch(() => undefined);
  }
}
