/**
 * A request whose body was already read, made readable again: the same method, URL, headers and
 * socket, with the body replayed. Lets a router read a form to choose a handler and still give
 * the handler a request it reads as it would any other.
 */
import { IncomingMessage } from 'node:http';

export function replayRequest(original: IncomingMessage, body: string): IncomingMessage {
  const replay = new IncomingMessage(original.socket);
  replay.method = original.method;
  replay.url = original.url;
  replay.headers = original.headers;
  replay.rawHeaders = original.rawHeaders;
  replay.httpVersion = original.httpVersion;
  replay.httpVersionMajor = original.httpVersionMajor;
  replay.httpVersionMinor = original.httpVersionMinor;
  // Complete, as the original was: an IncomingMessage destroyed while incomplete destroys its
  // socket, and the response still has to go out on it.
  replay.complete = true;
  replay.push(Buffer.from(body, 'utf8'));
  replay.push(null);
  return replay;
}
