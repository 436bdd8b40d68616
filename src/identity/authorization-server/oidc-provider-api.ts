/**
 * The slice of oidc-provider's API Warden uses. The package ships no type declarations; these
 * name only what the authorization server calls, so a change in the library shows up here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface OidcClient {
  readonly clientId: string;
  readonly clientName?: string;
  readonly clientIdMetadataDocument?: boolean;
  grantTypeAllowed(grantType: string): boolean;
}

export interface OidcResourceServer {
  readonly audience?: string;
}

/** An access token oidc-provider issued (opaque; Warden hands out its own JWT instead). */
export interface OidcAccessToken {
  readonly accountId?: string;
  readonly clientId: string;
  readonly grantId?: string;
  readonly scope?: string;
  readonly resourceServer?: OidcResourceServer;
  destroy(): Promise<void>;
}

export interface OidcGrant {
  readonly jti: string;
  addOIDCScope(scope: string): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

export interface OidcInteraction {
  readonly uid: string;
  readonly returnTo: string;
  readonly grantId?: string;
  readonly session?: { readonly accountId?: string };
  readonly params: Readonly<Record<string, unknown>> & { readonly client_id?: string };
  readonly prompt: {
    readonly name: 'login' | 'consent' | string;
    readonly details: {
      readonly missingOIDCScope?: readonly string[];
      readonly missingResourceScopes?: Readonly<Record<string, readonly string[]>>;
    };
  };
}

/** Koa's context, as far as Warden's middleware and hooks read it. */
export interface OidcContext {
  readonly req: IncomingMessage;
  status: number;
  body: unknown;
  readonly path: string;
  readonly method: string;
  querystring: string;
  readonly ip: string;
  readonly oidc?: {
    readonly route?: string;
    readonly client?: OidcClient;
    readonly entities: {
      readonly AccessToken?: OidcAccessToken;
      readonly RefreshToken?: { readonly clientId?: string; readonly accountId?: string };
      readonly AuthorizationCode?: { readonly clientId?: string; readonly accountId?: string };
    };
    readonly params?: Readonly<Record<string, unknown>>;
  };
  type: string;
  set(name: string, value: string): void;
}

export interface OidcErrorOut {
  readonly error: string;
  readonly error_description?: string;
}

export interface OidcProvider {
  readonly issuer: string;
  readonly Client: { find(id: string): Promise<OidcClient | undefined> };
  readonly Grant: {
    new (properties: { accountId: string; clientId: string }): OidcGrant;
    find(id: string): Promise<OidcGrant | undefined>;
  };
  callback(): (request: IncomingMessage, response: ServerResponse) => void;
  use(middleware: (ctx: OidcContext, next: () => Promise<void>) => Promise<void>): void;
  /** The listener's second argument is the event's subject: an error, or a grant id. */
  on(event: string, listener: (ctx: OidcContext, subject: unknown) => void): void;
  interactionDetails(request: IncomingMessage, response: ServerResponse): Promise<OidcInteraction>;
  /** Records the result; returns oidc-provider's URL to resume the authorization at. */
  interactionResult(
    request: IncomingMessage,
    response: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<string>;
  interactionFinished(
    request: IncomingMessage,
    response: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
}

export interface OidcModule {
  readonly Provider: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
  readonly errors: {
    readonly InvalidTarget: new (description?: string) => Error;
    readonly InvalidClientMetadata: new (description?: string) => Error;
  };
}

/** oidc-provider, loaded only when people log in (it is large and most gateways never need it). */
export async function loadOidcProvider(): Promise<OidcModule> {
  // It warns at import that Node.js 20 is not an LTS it supports; Warden supports Node.js 20 and
  // its tests run the provider there, so that one line would only alarm the operator. Any other
  // warning passes.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (
      typeof args[0] === 'string' &&
      args[0].includes('oidc-provider WARNING: Unsupported runtime')
    )
      return;
    warn(...args);
  };
  try {
    // @ts-expect-error -- oidc-provider ships no type declarations; OidcModule types what is used.
    return (await import('oidc-provider')) as OidcModule;
  } finally {
    console.warn = warn;
  }
}
