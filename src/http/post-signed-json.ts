/**
 * One POST of a JSON body to a webhook, signed when a key is given, as approval and alert
 * webhooks both send it:
 *   x-warden-timestamp: <unix seconds>
 *   x-warden-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">
 * The timestamp is inside the signed text so a receiver can refuse replays of old deliveries.
 */
import { createHmac } from 'node:crypto';
import { request as httpRequest, type Dispatcher } from 'undici';
import { canonicalJson } from '../domain/canonical-json.js';

export interface SignedJsonPost {
  readonly url: string;
  readonly message: unknown;
  /** The HMAC key; the body goes unsigned without one. */
  readonly secret: Buffer | undefined;
  readonly timeoutMs: number;
  readonly userAgent: string;
  readonly now: () => number;
  readonly dispatcher?: Dispatcher | undefined;
}

/** Posts and returns the HTTP status (the body is read and dropped); rejects if unreachable. */
export async function postSignedJson(post: SignedJsonPost): Promise<number> {
  const body = canonicalJson(post.message);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': post.userAgent,
  };
  if (post.secret !== undefined) {
    const timestamp = String(Math.floor(post.now() / 1000));
    headers['x-warden-timestamp'] = timestamp;
    headers['x-warden-signature'] = signWebhookBody(post.secret, timestamp, body);
  }
  const response = await httpRequest(post.url, {
    method: 'POST',
    headers,
    body,
    headersTimeout: post.timeoutMs,
    bodyTimeout: post.timeoutMs,
    signal: AbortSignal.timeout(post.timeoutMs),
    ...(post.dispatcher !== undefined && { dispatcher: post.dispatcher }),
  });
  await response.body.dump();
  return response.statusCode;
}

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, as sent in x-warden-signature. */
export function signWebhookBody(secret: Buffer, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}
