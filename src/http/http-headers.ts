/** Reading request headers that Node may give as one string or, when repeated, as a list. */
import type { IncomingMessage } from 'node:http';

/** The first value of a header as Node parsed it. */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function readHeader(request: IncomingMessage, name: string): string | undefined {
  return firstValue(request.headers[name]);
}
