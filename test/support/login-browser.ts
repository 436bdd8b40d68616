/**
 * What the login tests share: an MCP app as the SDK builds one (an OAuthClientProvider kept in
 * memory, its redirect URI a loopback server that records what comes back), and real Chromium
 * to play the person at Warden's login and consent pages.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** The app's redirect URI: a loopback server that answers every callback and records its query. */
export interface RedirectCatcher {
  readonly url: string;
  /** Each callback's query parameters, oldest first. */
  readonly received: URLSearchParams[];
  close(): Promise<void>;
}

export async function startRedirectCatcher(): Promise<RedirectCatcher> {
  const received: URLSearchParams[] = [];
  const server: Server = createServer((request, response) => {
    received.push(new URL(request.url ?? '/', 'http://127.0.0.1').searchParams);
    response.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/callback`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** An OAuthClientProvider as an MCP app keeps one, in memory; it records where it was sent. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  authorizationUrl: URL | undefined;
  information: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  readonly clientMetadataUrl?: string;

  constructor(
    private readonly redirect: string,
    options: { clientMetadataUrl?: string; clientName?: string } = {},
  ) {
    if (options.clientMetadataUrl !== undefined) this.clientMetadataUrl = options.clientMetadataUrl;
    this.name = options.clientName ?? 'Test MCP App';
  }

  private readonly name: string;

  get redirectUrl(): string {
    return this.redirect;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.name,
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.information;
  }

  saveClientInformation(information: OAuthClientInformationMixed): void {
    this.information = information;
  }

  tokens(): OAuthTokens | undefined {
    return this.saved;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }

  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }
}

/**
 * Logs in at Warden's login page as a built-in user (the page must be showing it), and waits
 * for the page that follows to show `next` (the consent page's Allow button by default).
 */
export async function logInWithPassword(
  page: Page,
  user: string,
  password: string,
  next = '#allow',
): Promise<void> {
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForSelector(next);
}

/** Waits (bounded) until the redirect catcher has `count` callbacks. */
export async function waitForCallback(
  catcher: RedirectCatcher,
  count = 1,
  timeoutMs = 15_000,
): Promise<URLSearchParams> {
  const deadline = Date.now() + timeoutMs;
  while (catcher.received.length < count && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 25));
  const last = catcher.received[count - 1];
  if (!last) throw new Error(`no callback #${count} within ${timeoutMs} ms`);
  return last;
}
