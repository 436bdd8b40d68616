// Fetching a document a stranger names (an OAuth client metadata document), from the attacker's
// side: URLs and host names that lead to loopback, the private network or the cloud metadata
// service, DNS answers that mix a public address with a private one, redirects, endless bodies
// and servers that never answer. One real HTTPS server on 127.0.0.1 stands in for every target;
// the refusals must never reach it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Dispatcher } from 'undici';
import {
  createSafeDispatcher,
  nonPublicAddressKind,
  safeFetch,
  SafeFetchError,
  type ResolvedAddress,
  type SafeFetchResponse,
} from '../src/http/safe-fetch.js';
import { writeDevCertificates } from '../src/identity/dev-certificates.js';

const TIMEOUT_MS = 5_000;
/** Short, for the tests that wait for a timeout: they assert the outcome, never the delay. */
const SHORT_TIMEOUT_MS = 300;

let dir: string;
let ca: string;
let server: Server;
let port: number;
const hits: { path: string; host: string | undefined }[] = [];
const sockets = new Set<Socket>();

function handle(request: IncomingMessage, response: ServerResponse): void {
  hits.push({ path: request.url ?? '', host: request.headers.host });
  switch (request.url) {
    case '/client.json':
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ client_id: 'https://app.example/client.json' }));
      return;
    case '/redirect':
      response.writeHead(302, { location: '/target' });
      response.end();
      return;
    case '/announced-huge':
      response.writeHead(200, { 'content-length': String(10_000_000) });
      response.write('x'.repeat(1024));
      return; // never ends; the client must give up
    case '/endless': {
      // No content-length: only counting while streaming can stop this.
      response.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(4096);
      const pump = (): void => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', pump);
      };
      pump();
      return;
    }
    case '/no-headers':
      return; // never answers
    case '/dribble': {
      response.writeHead(200);
      const timer = setInterval(() => response.write(' '), 20);
      response.on('close', () => clearInterval(timer));
      return;
    }
    default:
      response.writeHead(404);
      response.end();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-safe-fetch-'));
  const files = await writeDevCertificates(dir, {
    hosts: ['localhost', '127.0.0.1', 'client.example'],
    agents: [],
  });
  ca = readFileSync(files.caCert, 'utf8');
  server = createServer(
    { cert: readFileSync(files.serverCert), key: readFileSync(files.serverKey) },
    handle,
  );
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

/** A resolver that answers from a table, as an attacker's DNS server would. */
function lookupFrom(
  table: Record<string, readonly string[]>,
): (hostname: string) => Promise<readonly ResolvedAddress[]> {
  return (hostname) => {
    const addresses = table[hostname];
    if (!addresses) return Promise.reject(new Error(`ENOTFOUND ${hostname}`));
    return Promise.resolve(
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

async function withDispatcher<T>(
  options: Parameters<typeof createSafeDispatcher>[0],
  use: (dispatcher: Dispatcher) => Promise<T>,
): Promise<T> {
  const dispatcher = createSafeDispatcher(options);
  try {
    return await use(dispatcher);
  } finally {
    await dispatcher.destroy();
  }
}

/** Node's own fetch with this dispatcher, as oidc-provider's `fetch` hook calls it. */
function through(dispatcher: Dispatcher): RequestInit {
  return { dispatcher } as unknown as RequestInit;
}

async function refusal(promise: Promise<unknown>): Promise<SafeFetchError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SafeFetchError, `expected a SafeFetchError, got ${String(error)}`);
    return error;
  }
  assert.fail('the fetch was not refused');
}

interface Fetch {
  readonly allowPrivateAddresses?: boolean;
  /** Trust the test CA (default true). */
  readonly trustCa?: boolean;
  readonly lookup?: (hostname: string) => Promise<readonly ResolvedAddress[]>;
  readonly maxBytes?: number;
  /** The whole-request bound of safeFetch. */
  readonly timeoutMs?: number;
  /** The dispatcher's connect and headers bound. */
  readonly dispatcherTimeoutMs?: number;
}

/** safeFetch through a fresh dispatcher (destroyed after), private addresses allowed by default. */
function fetchWith(url: string, options: Fetch = {}): Promise<SafeFetchResponse> {
  return withDispatcher(
    {
      allowPrivateAddresses: options.allowPrivateAddresses ?? true,
      timeoutMs: options.dispatcherTimeoutMs ?? TIMEOUT_MS,
      ...(options.trustCa === false ? {} : { ca }),
      ...(options.lookup && { lookup: options.lookup }),
    },
    (dispatcher) =>
      safeFetch(url, {
        dispatcher,
        maxBytes: options.maxBytes ?? 5120,
        timeoutMs: options.timeoutMs ?? TIMEOUT_MS,
      }),
  );
}

const local = (path: string): string => `https://localhost:${port}${path}`;

describe('refused without allowPrivateAddresses', () => {
  const targets = [
    ['loopback', () => `https://127.0.0.1:${port}/client.json`],
    ['IPv6 loopback', () => `https://[::1]:${port}/client.json`],
    ['RFC 1918 10/8', () => `https://10.0.0.7:${port}/client.json`],
    ['RFC 1918 192.168/16', () => `https://192.168.1.1:${port}/client.json`],
    ['RFC 1918 172.16/12', () => `https://172.31.255.255:${port}/client.json`],
    ['cloud metadata', () => `https://169.254.169.254/latest/meta-data/`],
    ['CGNAT', () => `https://100.64.0.1/`],
    ['unspecified', () => `https://0.0.0.0:${port}/client.json`],
    ['broadcast', () => `https://255.255.255.255/`],
    ['multicast', () => `https://224.0.0.1/`],
    ['IPv4-mapped loopback', () => `https://[::ffff:127.0.0.1]:${port}/client.json`],
    ['IPv4-mapped metadata', () => `https://[::ffff:a9fe:a9fe]/`],
    ['NAT64 loopback', () => `https://[64:ff9b::7f00:1]:${port}/client.json`],
    ['6to4 private', () => `https://[2002:c0a8:0101::1]/`],
    ['unique local IPv6', () => `https://[fd12:3456::1]/`],
    ['link-local IPv6', () => `https://[fe80::1]/`],
    ['decimal IPv4', () => `https://2130706433:${port}/client.json`],
    ['hex IPv4', () => `https://0x7f.1:${port}/client.json`],
    ['octal IPv4', () => `https://0177.0.0.1:${port}/client.json`],
    ['short IPv4', () => `https://127.1:${port}/client.json`],
    ['a host name resolving to loopback', () => `https://localhost:${port}/client.json`],
  ] as const;

  for (const [name, url] of targets) {
    test(`refuses a document URL pointing at ${name}`, async () => {
      const before = hits.length;
      const error = await refusal(fetchWith(url(), { allowPrivateAddresses: false }));
      assert.equal(error.code, 'ADDRESS_NOT_ALLOWED', error.message);
      assert.equal(hits.length, before, 'the server was reached');
    });
  }

  test('refuses a host whose DNS answer mixes a public address with a private one', async () => {
    const lookup = lookupFrom({ 'rebind.example': ['93.184.216.34', '127.0.0.1'] });
    const error = await refusal(
      fetchWith(`https://rebind.example:${port}/client.json`, {
        allowPrivateAddresses: false,
        lookup,
      }),
    );
    assert.equal(error.code, 'ADDRESS_NOT_ALLOWED');
    assert.match(error.message, /127\.0\.0\.1/);
  });

  test('the dispatcher alone refuses loopback, as undici request and fetch use it', async () => {
    const before = hits.length;
    await withDispatcher({ allowPrivateAddresses: false, timeoutMs: TIMEOUT_MS, ca }, async (d) => {
      const direct = await refusal(
        d.request({ origin: `https://localhost:${port}`, path: '/client.json', method: 'GET' }),
      );
      assert.equal(direct.code, 'ADDRESS_NOT_ALLOWED');
      for (const origin of [`https://127.0.0.1:${port}`, `https://[::ffff:7f00:1]:${port}`]) {
        const literal = await refusal(d.request({ origin, path: '/client.json', method: 'GET' }));
        assert.equal(literal.code, 'ADDRESS_NOT_ALLOWED', origin);
      }
      // Node's own fetch with this dispatcher, as oidc-provider's fetch hook would call it.
      const viaFetch = await fetch(`https://localhost:${port}/client.json`, through(d)).then(
        () => undefined,
        (error: unknown) => (error as { cause?: unknown }).cause,
      );
      assert.ok(viaFetch instanceof SafeFetchError, String(viaFetch));
      assert.equal(viaFetch.code, 'ADDRESS_NOT_ALLOWED');
    });
    assert.equal(hits.length, before, 'the server was reached');
  });

  test('refuses http:, other schemes and URLs with credentials', async () => {
    for (const [url, code] of [
      ['http://app.example/client.json', 'SCHEME_NOT_ALLOWED'],
      ['file:///etc/passwd', 'SCHEME_NOT_ALLOWED'],
      ['https://user:pw@app.example/client.json', 'INVALID_URL'],
      ['not a url', 'INVALID_URL'],
    ] as const) {
      const error = await refusal(fetchWith(url, { allowPrivateAddresses: false }));
      assert.equal(error.code, code, url);
    }
  });
});

test('classifies special-purpose addresses and leaves public ones alone', () => {
  for (const address of [
    '127.0.0.1',
    '::1',
    '::',
    '10.1.2.3',
    '169.254.169.254',
    '::ffff:10.0.0.1',
    '::ffff:7f00:1',
    '64:ff9b::a9fe:a9fe',
    '64:ff9b:1::1',
    '2001:db8::1',
    '2001::1',
    'fe80::1%eth0',
    'ff02::1',
    '198.18.0.1',
    'not-an-address',
  ])
    assert.notEqual(nonPublicAddressKind(address), undefined, address);
  for (const address of ['93.184.216.34', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'])
    assert.equal(nonPublicAddressKind(address), undefined, address);
});

describe('with allowPrivateAddresses (labs and tests)', () => {
  test('fetches a document from a local HTTPS server with its own CA', async () => {
    const response = await fetchWith(local('/client.json'));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(response.body.toString('utf8')), {
      client_id: 'https://app.example/client.json',
    });
  });

  test('allows http: too', async () => {
    const plain = createHttpServer(handle);
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const { port: plainPort } = plain.address() as AddressInfo;
      const response = await fetchWith(`http://127.0.0.1:${plainPort}/client.json`);
      assert.equal(response.status, 200);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });

  test('connects to the address it checked, keeping the host name for Host and TLS', async () => {
    let lookups = 0;
    const table = lookupFrom({ 'client.example': ['127.0.0.1'] });
    const lookup = (hostname: string): Promise<readonly ResolvedAddress[]> => {
      lookups += 1;
      return table(hostname);
    };
    const response = await fetchWith(`https://client.example:${port}/client.json`, { lookup });
    assert.equal(response.status, 200);
    assert.equal(lookups, 1, 'resolved once, by the dispatcher');
    assert.equal(hits.at(-1)?.host, `client.example:${port}`);
  });

  test('still verifies the certificate against the host name', async () => {
    const lookup = lookupFrom({ 'other.example': ['127.0.0.1'] });
    const error = await refusal(fetchWith(`https://other.example:${port}/client.json`, { lookup }));
    assert.equal(error.code, 'FETCH_FAILED');
    assert.match(String((error.cause as Error).message), /other\.example|altnames/i);
  });

  test('refuses a server whose certificate is not from a trusted CA', async () => {
    const error = await refusal(fetchWith(local('/client.json'), { trustCa: false }));
    assert.equal(error.code, 'FETCH_FAILED');
  });

  test('does not follow redirects', async () => {
    const before = hits.length;
    const response = await fetchWith(local('/redirect'));
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), '/target');
    assert.deepEqual(
      hits.slice(before).map((hit) => hit.path),
      ['/redirect'],
    );
  });

  test('cuts off a body that streams past maxBytes', async () => {
    const error = await refusal(fetchWith(local('/endless'), { maxBytes: 64 * 1024 }));
    assert.equal(error.code, 'RESPONSE_TOO_LARGE');
  });

  test('refuses a body whose announced length is past maxBytes', async () => {
    const error = await refusal(fetchWith(local('/announced-huge')));
    assert.equal(error.code, 'RESPONSE_TOO_LARGE');
  });

  test("the dispatcher's maxBytes caps bodies read through fetch too", async () => {
    await withDispatcher(
      { allowPrivateAddresses: true, timeoutMs: TIMEOUT_MS, ca, maxBytes: 64 * 1024 },
      async (dispatcher) => {
        const small = await fetch(local('/client.json'), through(dispatcher));
        assert.equal(small.status, 200);
        await small.arrayBuffer();
        const outcome = await fetch(local('/endless'), through(dispatcher))
          .then((response) => response.arrayBuffer())
          .then(
            (body) => `read ${body.byteLength} bytes`,
            (error: unknown) => error,
          );
        assert.ok(outcome instanceof Error, String(outcome));
        assert.equal((outcome.cause as { code?: unknown }).code, 'UND_ERR_RES_EXCEEDED_MAX_SIZE');
      },
    );
  });

  test('times out a server that never sends headers', async () => {
    const error = await refusal(
      fetchWith(local('/no-headers'), {
        timeoutMs: SHORT_TIMEOUT_MS,
        dispatcherTimeoutMs: SHORT_TIMEOUT_MS,
      }),
    );
    assert.equal(error.code, 'TIMEOUT');
  });

  test('times out a server that dribbles its body under the size cap', async () => {
    // The dispatcher allows long gaps, so only the whole-request bound can end this.
    const error = await refusal(
      fetchWith(local('/dribble'), { maxBytes: 1_000_000, timeoutMs: SHORT_TIMEOUT_MS }),
    );
    assert.equal(error.code, 'TIMEOUT');
  });
});
