/**
 * One token endpoint URL for every grant: the form is read once to learn its grant_type, then
 * replayed to the handler that runs it (oidc-provider for authorization_code and refresh_token,
 * the built-in endpoint for the rest, which also answers malformed requests as it always has).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../../domain/errors.js';
import { sendJson } from '../../http/json-reply.js';
import { readBody } from '../../http/read-body.js';
import { replayRequest } from '../../http/replay-request.js';

type Handler<E> = (
  request: IncomingMessage,
  response: ServerResponse,
  exchange: E,
) => Promise<void>;

const FORM_MEDIA_TYPE = 'application/x-www-form-urlencoded';
// The built-in endpoint's own limit: a token request is a handful of short parameters.
const MAX_BODY_BYTES = 16 * 1024;

export function createTokenDispatch<E>(options: {
  readonly builtin: Handler<E>;
  readonly login: Handler<E>;
  readonly loginGrantTypes: ReadonlySet<string>;
}): Handler<E> {
  return async (request, response, exchange) => {
    const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    // Whatever is not a form POST is the built-in endpoint's to refuse, as before.
    if (request.method !== 'POST' || mediaType !== FORM_MEDIA_TYPE)
      return options.builtin(request, response, exchange);
    let body: string;
    try {
      body = await readBody(request, MAX_BODY_BYTES);
    } catch (error) {
      if (!(error instanceof WardenError && error.code === 'WARDEN_BODY_TOO_LARGE')) throw error;
      sendJson(
        response,
        413,
        { error: 'invalid_request', error_description: 'the request body is too large' },
        { connection: 'close', 'cache-control': 'no-store' },
      );
      return;
    }
    const grantTypes = new URLSearchParams(body).getAll('grant_type');
    const handler =
      grantTypes.length === 1 && options.loginGrantTypes.has(grantTypes[0] ?? '')
        ? options.login
        : options.builtin;
    await handler(replayRequest(request, body), response, exchange);
  };
}
