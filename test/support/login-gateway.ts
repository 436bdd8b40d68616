/**
 * A gateway with people logging in, for the login tests: one built-in user (alice), a login
 * agent whose roles cap hers, an upstream with two tools, the audit log in a file to read back;
 * and a browser-driven authorization (PKCE S256) that yields a code, as an app would get one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import type { AuditRecord } from '../../src/domain/audit-record.js';
import { hashPassword } from '../../src/identity/login/builtin-users.js';
import { createAuditedSetup, openAuditReader, type AuditReader } from './audit-reader.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import {
  launchChromium,
  logInWithPassword,
  startRedirectCatcher,
  waitForCallback,
  type RedirectCatcher,
} from './login-browser.js';
import { findFreePort } from './processes.js';
import { startScriptedUpstream, type ScriptedUpstream } from './scripted-upstream.js';

export const ALICE_PASSWORD = 'correct horse battery staple';

export interface LoginGateway {
  readonly gateway: TestGateway;
  readonly browser: Browser;
  readonly catcher: RedirectCatcher;
  readonly audit: AuditReader;
  readonly resource: string;
  /** Registers a public client (RFC 7591) redirecting to the catcher; its client_id. */
  register(): Promise<string>;
  /** A fresh PKCE pair (S256). */
  pkce(): { verifier: string; challenge: string };
  /** The authorization URL for a client with these extra parameters. */
  authorizeUrl(clientId: string, params: Record<string, string>): string;
  /** Logs alice in through Chromium and allows; the callback's parameters. */
  authorizeInBrowser(url: string): Promise<URLSearchParams>;
  /**
   * Waits (bounded) until a record of `event` satisfies `found`: records are written a moment
   * after the answer, and earlier tests left records of the same event.
   */
  waitForRecord(event: string, found: (record: AuditRecord) => boolean): Promise<boolean>;
  /** A token request (form) at /oauth/token. */
  token(form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startLoginGateway(name: string): Promise<LoginGateway> {
  const setup = createAuditedSetup(name);
  const port = await findFreePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  const upstream: ScriptedUpstream = await startScriptedUpstream();
  upstream.tools = ['echo', 'wipe'];
  const gateway = await startTestGateway({
    ...setup.config,
    log: { level: 'silent' },
    listen: { host: '127.0.0.1', port },
    auth: {
      resource,
      issuers: [{ builtin: {} }],
      login: {
        agent: 'desktop-apps',
        users: { alice: { password_hash: await hashPassword(ALICE_PASSWORD), roles: ['clerk'] } },
      },
    },
    agents: { 'desktop-apps': { roles: ['clerk'] } },
    roles: { clerk: { grants: [{ tool: 'fixture.echo' }] } },
    upstreams: { fixture: { url: upstream.url } },
  });
  const browser = await launchChromium();
  const catcher = await startRedirectCatcher();
  const audit = await openAuditReader(setup.storeUrl);
  return {
    gateway,
    browser,
    catcher,
    audit,
    resource,
    async register() {
      const response = await fetch(`${gateway.url}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: 'Attacked App',
          redirect_uris: [catcher.url],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      });
      const body = (await response.json()) as { client_id?: string };
      if (response.status !== 201 || !body.client_id)
        throw new Error(`registration failed: ${response.status}`);
      return body.client_id;
    },
    pkce() {
      const verifier = randomBytes(32).toString('base64url');
      return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
    },
    authorizeUrl(clientId, params) {
      const url = new URL(`${gateway.url}/oauth/authorize`);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: catcher.url,
        resource: `${resource}/fixture`,
        state: randomBytes(8).toString('hex'),
        ...params,
      }).toString();
      return url.href;
    },
    async authorizeInBrowser(url) {
      const before = catcher.received.length;
      const context = await browser.newContext();
      const page = await context.newPage();
      try {
        await page.goto(url);
        await logInWithPassword(page, 'alice', ALICE_PASSWORD);
        await page.click('#allow');
        return await waitForCallback(catcher, before + 1);
      } finally {
        await context.close();
      }
    },
    async waitForRecord(event, found) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        if ((await audit.withEvent(event)).some(found)) return true;
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async token(form) {
      const response = await fetch(`${gateway.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    async close() {
      await browser.close();
      await catcher.close();
      await gateway.close();
      await audit.close();
      await upstream.close();
      setup.cleanUp();
    },
  };
}
