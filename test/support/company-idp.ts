/**
 * A company's OpenID Provider for tests: a real oidc-provider on 127.0.0.1, port 0, with one
 * confidential client Warden logs people in through (authorization code, PKCE, client_secret_basic)
 * and a few people whose claims include their `groups`. Its login and consent pages are stand-ins
 * that answer each interaction as the test chose (`answerNextLoginAs`): as a person, or with an
 * error such as access_denied. `followLogin` plays the browser, following redirects with cookies.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { silenceOidcProviderNotices } from './oidc-provider.js';

export interface CompanyIdpOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  /** People by account id: the claims the provider releases for them (besides `sub`). */
  readonly people: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** How the provider's login page answers the next login. */
export type LoginAnswer =
  { readonly as: string } | { readonly error: string; readonly description?: string };

export interface CompanyIdp {
  readonly issuer: string;
  answerNextLoginAs(answer: LoginAnswer): void;
  close(): Promise<void>;
}

interface Interaction {
  readonly uid: string;
  readonly prompt: { readonly name: string; readonly details: Record<string, unknown> };
  readonly params: Record<string, unknown>;
  readonly session?: { readonly accountId?: string };
  readonly grantId?: string;
}

interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: readonly string[]): void;
  save(): Promise<string>;
}

/** The slice of oidc-provider's API used here (the package ships no type declarations). */
interface OidcProvider {
  callback(): (request: IncomingMessage, response: ServerResponse) => void;
  interactionDetails(request: IncomingMessage, response: ServerResponse): Promise<Interaction>;
  interactionFinished(
    request: IncomingMessage,
    response: ServerResponse,
    result: Record<string, unknown>,
    options: { mergeWithLastSubmission: boolean },
  ): Promise<void>;
  readonly Grant: new (init: { accountId: string; clientId: string }) => Grant;
}

export async function startCompanyIdp(options: CompanyIdpOptions): Promise<CompanyIdp> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // @ts-expect-error -- oidc-provider ships no type declarations; OidcProvider types what is used.
  const { Provider } = (await import('oidc-provider')) as {
    Provider: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
  };
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'company-rs256', alg: 'RS256' };

  const restoreConsole = silenceOidcProviderNotices();
  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    cookies: { keys: ['company-idp-cookie-key-for-tests-only'] },
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        redirect_uris: [...options.redirectUris],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
      employee: ['employee_id'],
    },
    findAccount: (_ctx: unknown, id: string) => {
      const claims = options.people[id];
      return claims && { accountId: id, claims: () => ({ ...claims, sub: id }) };
    },
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    features: { devInteractions: { enabled: false } },
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      Grant: 600,
      IdToken: 300,
      Interaction: 600,
      Session: 600,
    },
  });

  let nextAnswer: LoginAnswer | undefined;
  const providerCallback = provider.callback();

  async function answerInteraction(request: IncomingMessage, response: ServerResponse) {
    const interaction = await provider.interactionDetails(request, response);
    const answer = nextAnswer;
    assert.ok(answer, 'the test did not say how the provider answers this login');
    if ('error' in answer) {
      await provider.interactionFinished(
        request,
        response,
        {
          error: answer.error,
          ...(answer.description && { error_description: answer.description }),
        },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (interaction.prompt.name === 'login') {
      await provider.interactionFinished(
        request,
        response,
        { login: { accountId: answer.as } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    // Consent: the person grants what the client asked for.
    const grant = new provider.Grant({
      accountId: interaction.session?.accountId ?? answer.as,
      clientId: String(interaction.params['client_id']),
    });
    const { missingOIDCScope, missingOIDCClaims } = interaction.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
    };
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    await provider.interactionFinished(
      request,
      response,
      { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true },
    );
  }

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (!request.url?.startsWith('/interaction/')) return providerCallback(request, response);
    answerInteraction(request, response).catch((error: unknown) => {
      response.statusCode = 500;
      response.end(String(error));
    });
  });

  return {
    issuer,
    answerNextLoginAs(answer) {
      nextAnswer = answer;
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
      restoreConsole();
    },
  };
}

/**
 * Plays the browser from `start` (the authorization URL) through the provider's redirects, with
 * its cookies, until it is sent to a URL beginning with `callbackUrl`; returns that URL.
 */
export async function followLogin(start: string, callbackUrl: string): Promise<URL> {
  const cookies = new Map<string, string>();
  let url = start;
  for (let hop = 0; hop < 12; hop += 1) {
    if (url.startsWith(callbackUrl)) return new URL(url);
    const response = await fetch(url, {
      redirect: 'manual',
      headers: { cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') },
      signal: AbortSignal.timeout(5_000),
    });
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair = ''] = setCookie.split(';');
      const separator = pair.indexOf('=');
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(setCookie)) cookies.delete(name);
      else cookies.set(name, value);
    }
    const body = await response.text();
    const location = response.headers.get('location');
    assert.ok(
      location,
      `the provider stopped at ${url} with ${response.status}: ${body.slice(0, 300)}`,
    );
    url = new URL(location, url).href;
  }
  throw new Error(`the login did not reach ${callbackUrl} within 12 redirects`);
}
