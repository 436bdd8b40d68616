/** Answers an HTTP request with a JSON body, as every JSON route of Warden does. */
import type { ServerResponse } from 'node:http';

/**
 * Writes `value` as the whole JSON response, with its length; `headers` add to (or override)
 * the defaults. A response to HEAD gets the same headers and Node drops the body.
 */
export function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  headers: Readonly<Record<string, string | number>> = {},
): void {
  const body = JSON.stringify(value);
  response
    .writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    })
    .end(body);
}
