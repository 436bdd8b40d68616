/**
 * Outbound fetches of documents that untrusted parties name (OAuth Client ID Metadata Documents):
 * a URL chosen by a stranger must not make Warden reach its own loopback, the private network or
 * the cloud metadata service (server-side request forgery).
 *
 * `createSafeDispatcher` is an undici Agent whose connect step resolves the host itself, refuses
 * the whole host when any of its addresses is not a public unicast address, and connects to the
 * address it checked (so a second, different DNS answer cannot slip in: DNS rebinding). TLS still
 * verifies the certificate against the host name. `safeFetch` is a GET on top of it: no
 * redirects followed, the body capped while it streams, the whole request timed out.
 *
 * Other fetch callers (oidc-provider's `fetch` hook, or any `fetch(url, { dispatcher })`) can use
 * the dispatcher alone: the address rules, the connect and headers timeouts and `maxBytes` hold
 * there too; following redirects is then the caller's choice (each hop goes through the checks).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, isIPv6 } from 'node:net';
import { Agent, buildConnector } from 'undici';
import type { Dispatcher } from 'undici';
import { LocalError } from '../domain/errors.js';

/** Stable codes of every SafeFetchError; callers branch on these, never on messages. */
export const SAFE_FETCH_ERROR_CODES = [
  /** The URL does not parse, or carries credentials (`https://user:pass@host/`). */
  'INVALID_URL',
  /** Not https (http is allowed only with allowPrivateAddresses, for labs and tests). */
  'SCHEME_NOT_ALLOWED',
  /** The host is, or resolves to, a loopback, private, link-local or other non-public address. */
  'ADDRESS_NOT_ALLOWED',
  /** The host name did not resolve. */
  'LOOKUP_FAILED',
  /** No complete answer within the time allowed. */
  'TIMEOUT',
  /** The body is larger than allowed (announced or streamed); it was cut off. */
  'RESPONSE_TOO_LARGE',
  /** The connection or the exchange failed otherwise (refused, reset, TLS verification). */
  'FETCH_FAILED',
] as const;

export type SafeFetchErrorCode = (typeof SAFE_FETCH_ERROR_CODES)[number];

export class SafeFetchError extends LocalError {
  declare readonly code: SafeFetchErrorCode;

  constructor(code: SafeFetchErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SafeFetchError';
  }
}

// ---------------------------------------------------------------------------------------------
// Which addresses are public

/** IPv4 ranges that are not public unicast (RFC 6890 special-purpose registry, and multicast). */
const NON_PUBLIC_IPV4: readonly (readonly [string, number, string])[] = [
  ['0.0.0.0', 8, 'unspecified ("this network")'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'shared address space (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (incl. cloud metadata)'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay anycast'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved (incl. broadcast)'],
];

/**
 * IPv6 is public only inside global unicast (2000::/3) and outside these ranges; everything else
 * (::, ::1, fc00::/7, fe80::/10, ff00::/8, …) is refused, except the forms that carry an IPv4
 * address, which are judged by that address.
 */
const NON_PUBLIC_IPV6: readonly (readonly [string, number, string])[] = [
  ['2001::', 23, 'IETF protocol assignments (incl. Teredo)'],
  ['2001:db8::', 32, 'documentation'],
  ['3fff::', 20, 'documentation'],
];

const v4Ranges = NON_PUBLIC_IPV4.map(([network, prefix, kind]) => ({
  kind,
  list: subnet(network, prefix, 'ipv4'),
}));
const v6Ranges = NON_PUBLIC_IPV6.map(([network, prefix, kind]) => ({
  kind,
  list: subnet(network, prefix, 'ipv6'),
}));
const globalUnicastV6 = subnet('2000::', 3, 'ipv6');

function subnet(network: string, prefix: number, type: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  list.addSubnet(network, prefix, type);
  return list;
}

/**
 * Why an IP address is not a public unicast address (e.g. "loopback"), or undefined when it is
 * one. Anything that is not a well-formed IP address is refused too.
 */
export function nonPublicAddressKind(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return v4Ranges.find((range) => range.list.check(address, 'ipv4'))?.kind;
  const groups = family === 6 ? ipv6Groups(address) : undefined;
  if (!groups) return 'not an IP address';
  const embedded = embeddedIPv4(groups);
  if (embedded) {
    const kind = nonPublicAddressKind(embedded.address);
    return kind === undefined ? undefined : `${embedded.form} of ${kind}`;
  }
  const plain = groups.map((group) => group.toString(16)).join(':');
  if (!globalUnicastV6.check(plain, 'ipv6')) return describeNonGlobalIPv6(groups);
  return v6Ranges.find((range) => range.list.check(plain, 'ipv6'))?.kind;
}

function describeNonGlobalIPv6(groups: readonly number[]): string {
  const first = groups[0] ?? 0;
  if (groups.every((group) => group === 0)) return 'unspecified';
  if (groups.slice(0, 7).every((group) => group === 0) && groups[7] === 1) return 'loopback';
  if ((first & 0xfe00) === 0xfc00) return 'unique local (fc00::/7)';
  if ((first & 0xffc0) === 0xfe80) return 'link-local (fe80::/10)';
  if ((first & 0xff00) === 0xff00) return 'multicast';
  return 'not global unicast';
}

/**
 * The IPv4 address inside the IPv6 forms that reach one: IPv4-mapped (::ffff:0:0/96), the
 * deprecated IPv4-compatible (::/96), NAT64 (64:ff9b::/96, RFC 6052) and 6to4 (2002::/16).
 */
function embeddedIPv4(
  groups: readonly number[],
): { readonly address: string; readonly form: string } | undefined {
  const g = (index: number): number => groups[index] ?? 0;
  const zeros = (from: number, to: number): boolean => groups.slice(from, to).every((x) => x === 0);
  const quad = (high: number, low: number): string =>
    [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  if (zeros(0, 5) && g(5) === 0xffff) return { address: quad(g(6), g(7)), form: 'IPv4-mapped' };
  // :: and ::1 are IPv6's own unspecified and loopback addresses, not IPv4-compatible ones.
  if (zeros(0, 6) && (g(6) !== 0 || g(7) > 1))
    return { address: quad(g(6), g(7)), form: 'IPv4-compatible' };
  if (g(0) === 0x64 && g(1) === 0xff9b && zeros(2, 6))
    return { address: quad(g(6), g(7)), form: 'NAT64' };
  if (g(0) === 0x2002) return { address: quad(g(1), g(2)), form: '6to4' };
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or undefined if malformed. */
function ipv6Groups(address: string): number[] | undefined {
  const text = (address.split('%')[0] ?? '').toLowerCase();
  if (!isIPv6(text)) return undefined;
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const doubleColon = text.indexOf('::');
  if (doubleColon === -1) return parse(text);
  const head = parse(text.slice(0, doubleColon));
  const tail = parse(text.slice(doubleColon + 2));
  return [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

export interface SafeDispatcherOptions {
  /** Reach loopback, private and link-local addresses too (labs and tests; never production). */
  readonly allowPrivateAddresses: boolean;
  /** Bound on resolving plus connecting (TCP and TLS), and on waiting for the response headers. */
  readonly timeoutMs: number;
  /** Cap on a response body through this dispatcher; a larger one fails the request. */
  readonly maxBytes?: number;
  /** Extra trusted CA certificate(s) in PEM, replacing the default roots (tests, private PKI). */
  readonly ca?: string | Buffer;
  /** Resolves a host name to all its addresses; defaults to the system resolver (dns.lookup). */
  readonly lookup?: (hostname: string) => Promise<readonly ResolvedAddress[]>;
}

interface SafePolicy {
  readonly allowPrivateAddresses: boolean;
}

/** What each dispatcher made here allows, for safeFetch to read back. */
const policies = new WeakMap<Dispatcher, SafePolicy>();

/**
 * An undici dispatcher that only connects to public addresses (unless allowPrivateAddresses),
 * checking every address a host resolves to and connecting to the one it checked.
 */
export function createSafeDispatcher(options: SafeDispatcherOptions): Dispatcher {
  const policy: SafePolicy = Object.freeze({
    allowPrivateAddresses: options.allowPrivateAddresses,
  });
  const resolve = options.lookup ?? systemLookup;
  const base = buildConnector({
    timeout: options.timeoutMs,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });
  const connect: buildConnector.connector = (connectOptions, callback) => {
    resolveCheckedAddresses(connectOptions.hostname, policy, resolve, options.timeoutMs).then(
      (addresses) => connectToFirst(base, connectOptions, addresses, callback),
      (error: unknown) => callback(error as Error, null),
    );
  };
  const agent = new Agent({
    connect,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    ...(options.maxBytes === undefined ? {} : { maxResponseSize: options.maxBytes }),
  });
  policies.set(agent, policy);
  return agent;
}

async function systemLookup(hostname: string): Promise<readonly ResolvedAddress[]> {
  return dnsLookup(hostname, { all: true, verbatim: true });
}

/** The addresses to connect to: all the host's addresses, once every one passed the check. */
async function resolveCheckedAddresses(
  hostname: string,
  policy: SafePolicy,
  resolve: (hostname: string) => Promise<readonly ResolvedAddress[]>,
  timeoutMs: number,
): Promise<readonly string[]> {
  const literal = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(literal) !== 0) return [checkAddress(literal, hostname, policy)];
  let addresses: readonly ResolvedAddress[];
  try {
    addresses = await withTimeout(resolve(hostname), timeoutMs, hostname);
  } catch (error) {
    if (error instanceof SafeFetchError) throw error;
    throw new SafeFetchError('LOOKUP_FAILED', `${hostname} did not resolve`, { cause: error });
  }
  if (addresses.length === 0)
    throw new SafeFetchError('LOOKUP_FAILED', `${hostname} resolved to no address`);
  // One bad address refuses the host: an attacker's DNS may answer differently each time.
  return addresses.map(({ address }) => checkAddress(address, hostname, policy));
}

/**
 * Connects to the checked addresses in turn until one answers (`localhost` may be ::1 and
 * 127.0.0.1, with the server on only one). The host, and so the TLS server name checked against
 * the certificate, stays the URL's.
 */
function connectToFirst(
  base: buildConnector.connector,
  connectOptions: buildConnector.Options,
  addresses: readonly string[],
  callback: buildConnector.Callback,
): void {
  const [address, ...rest] = addresses;
  if (address === undefined) return;
  base({ ...connectOptions, hostname: address }, (...result) => {
    if (result[0] !== null && rest.length > 0) connectToFirst(base, connectOptions, rest, callback);
    else callback(...result);
  });
}

function checkAddress(address: string, hostname: string, policy: SafePolicy): string {
  if (policy.allowPrivateAddresses) return address;
  const kind = nonPublicAddressKind(address);
  if (kind === undefined) return address;
  const named = address === hostname ? address : `${hostname} (${address})`;
  throw new SafeFetchError('ADDRESS_NOT_ALLOWED', `${named} is not a public address: ${kind}`);
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, hostname: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SafeFetchError('TIMEOUT', `resolving ${hostname} took too long`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// The fetch

export interface SafeFetchOptions {
  /** Made by createSafeDispatcher; any other dispatcher is held to https only. */
  readonly dispatcher: Dispatcher;
  readonly maxBytes: number;
  /** Bound on the whole request: connecting, headers and the body. */
  readonly timeoutMs: number;
  /** The Accept header; defaults to application/json. */
  readonly accept?: string;
}

export interface SafeFetchResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/**
 * GETs a URL through a safe dispatcher. https only, unless the dispatcher allows private
 * addresses (then http too, for local labs and tests). Redirects are not followed: a 3xx is
 * returned as it is, and the caller (which needs a 200) refuses it. Credentials in the URL are
 * refused rather than sent.
 */
export async function safeFetch(
  url: string,
  options: SafeFetchOptions,
): Promise<SafeFetchResponse> {
  const target = parseTarget(url, policies.get(options.dispatcher));
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await options.dispatcher.request({
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      method: 'GET',
      headers: { accept: options.accept ?? 'application/json', 'user-agent': 'warden' },
      signal,
    });
    const headers = toHeaders(response.headers);
    const body = await readCapped(response.body, headers, options.maxBytes, url);
    return { status: response.statusCode, headers, body };
  } catch (error) {
    throw toSafeFetchError(error, url, signal);
  }
}

function parseTarget(url: string, policy: SafePolicy | undefined): URL {
  let target: URL;
  try {
    target = new URL(url);
  } catch (error) {
    throw new SafeFetchError('INVALID_URL', 'the URL does not parse', { cause: error });
  }
  if (target.username !== '' || target.password !== '')
    throw new SafeFetchError('INVALID_URL', 'the URL carries credentials');
  const allowHttp = policy?.allowPrivateAddresses === true;
  if (target.protocol !== 'https:' && !(allowHttp && target.protocol === 'http:'))
    throw new SafeFetchError('SCHEME_NOT_ALLOWED', `${target.protocol} URLs are not fetched`);
  // An IP literal is refused here already (the dispatcher would refuse it too), so a bad URL
  // fails the same way whatever dispatcher the caller passed.
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  if (policy?.allowPrivateAddresses !== true && isIP(host) !== 0) {
    const kind = nonPublicAddressKind(host);
    if (kind !== undefined)
      throw new SafeFetchError('ADDRESS_NOT_ALLOWED', `${host} is not a public address: ${kind}`);
  }
  return target;
}

async function readCapped(
  body: Dispatcher.ResponseData['body'],
  headers: Headers,
  maxBytes: number,
  url: string,
): Promise<Buffer> {
  const tooLarge = (): SafeFetchError =>
    new SafeFetchError('RESPONSE_TOO_LARGE', `${url} answered with more than ${maxBytes} bytes`);
  const announced = Number(headers.get('content-length') ?? NaN);
  if (announced > maxBytes) {
    body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > maxBytes) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function toHeaders(raw: Dispatcher.ResponseData['headers']): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return headers;
}

const UNDICI_TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

function toSafeFetchError(error: unknown, url: string, signal: AbortSignal): SafeFetchError {
  if (error instanceof SafeFetchError) return error;
  const code = (error as { code?: unknown }).code;
  if (signal.aborted || (typeof code === 'string' && UNDICI_TIMEOUTS.has(code)))
    return new SafeFetchError('TIMEOUT', `${url} did not answer in time`, { cause: error });
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE')
    return new SafeFetchError('RESPONSE_TOO_LARGE', `${url} answered with too many bytes`, {
      cause: error,
    });
  return new SafeFetchError('FETCH_FAILED', `fetching ${url} failed`, { cause: error });
}
