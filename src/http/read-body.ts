/**
 * Reading request bodies up to a limit; a larger body is refused without buffering it all.
 *
 * A refused request's body may still be arriving. Closing the connection at once would reset it
 * (TCP RST, as the kernel does for a socket closed with unread data), and a client still sending
 * sees EPIPE or ECONNRESET instead of the answer it was sent. So the rest is first read and
 * dropped, within a bound (DRAIN_LIMITS), before the refusal is answered; past the bound the
 * connection is closed after the answer, whatever the client loses.
 */
import type { IncomingMessage } from 'node:http';
import { WardenError } from '../domain/errors.js';

/** How much of a refused body is read and dropped, at most, so the client can read the refusal. */
export const DRAIN_LIMITS = Object.freeze({ bytes: 32 * 1024 * 1024, ms: 2000 });

/** One drain per request, shared by whoever asks (the reader that refused it, the error writer). */
const drains = new WeakMap<IncomingMessage, Promise<boolean>>();

export async function readBody(request: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await drainBody(request);
    throw new WardenError('WARDEN_BODY_TOO_LARGE');
  }
  const body = await collect(request, maxBytes);
  if (body === undefined) {
    await drainBody(request);
    throw new WardenError('WARDEN_BODY_TOO_LARGE');
  }
  return body;
}

/**
 * Reads a JSON body up to a limit: undefined when it is empty, WARDEN_PARSE_ERROR when it is not
 * JSON. What the value must look like is the caller's to check.
 */
export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await readBody(request, maxBytes);
  if (body.trim() === '') return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new WardenError('WARDEN_PARSE_ERROR');
  }
}

/**
 * Reads and drops what is left of a request's body, for at most DRAIN_LIMITS. Resolves true when
 * the body was received to its end (the connection may then be kept), false when the bound was
 * reached or the client went away. Idempotent: a second call waits for the first.
 */
export function drainBody(request: IncomingMessage): Promise<boolean> {
  let drain = drains.get(request);
  if (drain === undefined) {
    drain = request.complete ? Promise.resolve(true) : discard(request);
    drains.set(request, drain);
  }
  return drain;
}

/**
 * The body as text, or undefined as soon as it exceeds maxBytes. Read with listeners rather than
 * an async iterator: leaving an iterator early destroys the request, and with it the socket the
 * refusal must still be written to.
 */
function collect(request: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        settle();
        request.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      settle();
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (error: Error): void => {
      settle();
      reject(error);
    };
    // Closed before its end: the client went away mid-body.
    const onClose = (): void => {
      settle();
      reject(new Error('the client closed the connection before the body ended'));
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}

function discard(request: IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    let drained = 0;
    const finish = (complete: boolean): void => {
      clearTimeout(timer);
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('close', onClose);
      request.off('error', onClose);
      if (!complete) request.pause();
      resolve(complete);
    };
    const onData = (chunk: Buffer): void => {
      drained += chunk.length;
      if (drained > DRAIN_LIMITS.bytes) finish(false);
    };
    const onEnd = (): void => finish(true);
    const onClose = (): void => finish(request.complete);
    const timer = setTimeout(() => finish(false), DRAIN_LIMITS.ms);
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('close', onClose);
    request.on('error', onClose);
    request.resume();
  });
}
