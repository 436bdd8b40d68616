/**
 * An HTTPS client for mTLS tests: each request on a fresh connection (no pooled socket, no
 * resumed session), presenting the client certificate the test chooses, or none.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { decodeJwt } from 'jose';
import type { DevCertificateFiles } from '../../src/identity/dev-certificates.js';
import { startAuditedGateway, type AuditedGateway } from './audit-reader.js';
import { TESTER_ROLE } from './gateway.js';
import type { RawReply } from './raw-http.js';
import { MCP_POST_HEADERS, initializeRequest } from './raw-http.js';

/** A client certificate and its key, as PEM text. */
export interface ClientKeyPair {
  readonly cert: string;
  readonly key: string;
}

/**
 * An audited HTTPS gateway with the dev CA as its client CA in `optional` mode (so self-signed
 * certificates reach the application), the built-in issuer, `auth.mtls`, every agent a tester,
 * and one upstream `fixture`.
 */
export function startMtlsGateway(
  name: string,
  pki: DevCertificateFiles,
  agents: Readonly<Record<string, Record<string, unknown>>>,
  upstreamUrl: string,
): Promise<AuditedGateway> {
  return startAuditedGateway(name, {
    log: { level: 'silent' },
    listen: {
      host: '127.0.0.1',
      port: 0,
      tls: {
        cert: pki.serverCert,
        key: pki.serverKey,
        client_ca: pki.caCert,
        client_certificates: 'optional',
      },
    },
    auth: { resource: 'https://warden.test/mcp', issuers: [{ builtin: {} }], mtls: true },
    agents: Object.fromEntries(
      Object.entries({ 'test-agent': {}, ...agents }).map(([id, agent]) => [
        id,
        { roles: ['tester'], ...agent },
      ]),
    ),
    roles: { tester: TESTER_ROLE },
    upstreams: { fixture: { url: upstreamUrl } },
  });
}

export function readKeyPair(files: { readonly cert: string; readonly key: string }): ClientKeyPair {
  return { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') };
}

/** The RFC 8705 `x5t#S256` of a PEM certificate. */
export function thumbprintOf(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
}

/** The `cnf["x5t#S256"]` of an access token, if it is bound. */
export function boundThumbprintOf(token: string): string | undefined {
  const cnf = decodeJwt(token)['cnf'] as { 'x5t#S256'?: string } | undefined;
  return cnf?.['x5t#S256'];
}

export function sendTls(
  url: string,
  options: {
    readonly ca: string;
    readonly client?: ClientKeyPair | undefined;
    readonly method?: string;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: string;
    /** The loopback address to send from (127.0.0.2, …): refusals are aggregated per source. */
    readonly localAddress?: string | undefined;
  },
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca: options.ca,
        agent: false,
        ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
        ...(options.client && { cert: options.client.cert, key: options.client.key }),
        headers: {
          ...options.headers,
          ...(options.body !== undefined && {
            'content-length': String(Buffer.byteLength(options.body)),
          }),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text }),
        );
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A client_credentials token request to the built-in token endpoint. */
export function requestToken(
  gatewayUrl: string,
  ca: string,
  client: ClientKeyPair | undefined,
  form: Readonly<Record<string, string>>,
  localAddress?: string,
): Promise<RawReply> {
  return sendTls(`${gatewayUrl}/oauth/token`, {
    ca,
    client,
    localAddress,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...form }).toString(),
  });
}

/** POSTs one JSON-RPC message to an MCP endpoint over TLS. */
export function postMcpTls(
  url: string,
  ca: string,
  body: unknown,
  options: {
    readonly client?: ClientKeyPair | undefined;
    readonly token?: string | undefined;
    readonly sessionId?: string | undefined;
  } = {},
): Promise<RawReply> {
  return sendTls(url, {
    ca,
    client: options.client,
    method: 'POST',
    headers: {
      ...MCP_POST_HEADERS,
      ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
      ...(options.sessionId !== undefined && { 'mcp-session-id': options.sessionId }),
    },
    body: JSON.stringify(body),
  });
}

/** Opens a session as the given caller and calls one tool; returns the call's request id. */
export async function callToolTls(
  url: string,
  ca: string,
  tool: string,
  caller: { readonly client?: ClientKeyPair | undefined; readonly token?: string | undefined },
): Promise<{ readonly requestId: string; readonly reply: RawReply }> {
  const init = await postMcpTls(url, ca, initializeRequest(), caller);
  if (init.status !== 200) throw new Error(`initialize failed: ${init.status} ${init.text}`);
  const sessionId = String(init.headers['mcp-session-id']);
  const notified = await postMcpTls(
    url,
    ca,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { ...caller, sessionId },
  );
  if (notified.status !== 202) throw new Error(`initialized: ${notified.status} ${notified.text}`);
  const reply = await postMcpTls(
    url,
    ca,
    { jsonrpc: '2.0', id: 'call', method: 'tools/call', params: { name: tool, arguments: {} } },
    { ...caller, sessionId },
  );
  return { requestId: String(reply.headers['x-request-id']), reply };
}
