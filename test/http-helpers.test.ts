/**
 * The HTTP helpers mcp/, admin/ and identity/ share (src/http): a JSON reply carries its type and
 * length (and no body for HEAD); a JSON body is read within its limit, an empty one is absent,
 * and a malformed or oversized one is refused with its own code. Against a real server on port 0.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WardenError } from '../src/domain/errors.js';
import { sendJson } from '../src/http/json-reply.js';
import { readJsonBody } from '../src/http/read-body.js';

const MAX_BYTES = 64;
let url: string;
const server = createServer((request: IncomingMessage, response: ServerResponse) => {
  readJsonBody(request, MAX_BYTES).then(
    (value) => sendJson(response, 200, { got: value ?? null }, { 'cache-control': 'no-store' }),
    (error: unknown) =>
      sendJson(response, error instanceof WardenError ? error.status : 500, {
        code: error instanceof WardenError ? error.code : 'unexpected',
      }),
  );
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
});

test('a JSON reply carries its content type, length and extra headers', async () => {
  const response = await fetch(url, { method: 'POST', body: '{"a":"é"}' });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/json');
  assert.equal(response.headers.get('cache-control'), 'no-store');
  const text = await response.text();
  assert.equal(Number(response.headers.get('content-length')), Buffer.byteLength(text));
  assert.deepEqual(JSON.parse(text), { got: { a: 'é' } });
});

test('an answer to HEAD has the headers and no body', async () => {
  const response = await fetch(url, { method: 'HEAD' });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'application/json');
  assert.equal(await response.text(), '');
});

test('an empty body is absent; a malformed one is WARDEN_PARSE_ERROR', async () => {
  const empty = await fetch(url, { method: 'POST', body: '  ' });
  assert.deepEqual(await empty.json(), { got: null });
  const malformed = await fetch(url, { method: 'POST', body: '{"a":' });
  assert.equal(malformed.status, 400);
  assert.deepEqual(await malformed.json(), { code: 'WARDEN_PARSE_ERROR' });
});

test('refuses a body over the limit (413) without reading it all into memory', async () => {
  const response = await fetch(url, {
    method: 'POST',
    body: JSON.stringify({ padding: 'x'.repeat(MAX_BYTES) }),
  });
  assert.equal(response.status, 413);
  assert.deepEqual(await response.json(), { code: 'WARDEN_BODY_TOO_LARGE' });
});
