/**
 * A real authorization server (oidc-provider) on 127.0.0.1, port 0, that accepts RFC 8693 token
 * exchange from one confidential client (Warden): it verifies the subject token against the keys
 * of the issuers it trusts (Warden's JWKS), and issues an RFC 9068 JWT access token for the one
 * audience it serves, whose `sub` is the subject token's. Every exchange it answers is recorded.
 */
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface TokenExchangeServerOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The one audience it issues tokens for (the upstream). */
  readonly audience: string;
  /** The scopes it may grant for that audience. */
  readonly scopes: readonly string[];
  /** Lifetime of issued tokens, in seconds. */
  readonly accessTokenTtlSeconds: number;
}

/** One exchange the server was asked for, whatever it answered. */
export interface ExchangeSeen {
  readonly clientId: string;
  readonly params: Readonly<Record<string, string | undefined>>;
  /** The verified subject token's claims; undefined when it did not verify. */
  readonly subject: JWTPayload | undefined;
}

export interface TokenExchangeServer {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  readonly exchanges: ExchangeSeen[];
  /** Subject token issuers it trusts, with their keys: set by the test once Warden runs. */
  readonly trustedIssuers: Map<string, JWTVerifyGetKey>;
  /** Subjects it refuses to issue tokens for (`invalid_grant`). */
  readonly refusedSubjects: Set<string>;
  close(): Promise<void>;
}

/** The slice of oidc-provider's API used here (the package ships no type declarations). */
interface OidcProvider {
  callback(): (request: IncomingMessage, response: ServerResponse) => void;
  registerGrantType(
    name: string,
    handler: (ctx: GrantContext) => Promise<void>,
    params: readonly string[],
  ): void;
  readonly AccessToken: new (fields: Record<string, unknown>) => {
    resourceServer: unknown;
    readonly expiration: number;
    save(): Promise<string>;
  };
  readonly ResourceServer: new (identifier: string, data: Record<string, unknown>) => unknown;
}

interface GrantContext {
  readonly oidc: {
    readonly params: Record<string, string | undefined>;
    readonly client: { readonly clientId: string };
  };
  body: unknown;
}

interface OidcModule {
  readonly Provider: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
  readonly errors: {
    readonly InvalidGrant: new (description?: string) => Error;
    readonly InvalidTarget: new (description?: string) => Error;
    readonly InvalidRequest: new (description?: string) => Error;
  };
}

export async function startTokenExchangeServer(
  options: TokenExchangeServerOptions,
): Promise<TokenExchangeServer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tokenEndpoint = `${issuer}/token`;

  // @ts-expect-error -- oidc-provider ships no type declarations; OidcModule types what is used.
  const { Provider, errors } = (await import('oidc-provider')) as OidcModule;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = {
    ...(await exportJWK(privateKey)),
    kid: 'as-rs256',
    alg: 'RS256',
    use: 'sig',
  };
  const actors = new WeakMap<object, { act: Record<string, unknown> }>();
  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey] },
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        grant_types: [TOKEN_EXCHANGE_GRANT],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    features: { devInteractions: { enabled: false } },
    ttl: { AccessToken: options.accessTokenTtlSeconds },
    // oidc-provider computes a token's extra claims as it saves it: the `act` set aside for it.
    extraTokenClaims: (_ctx: unknown, token: object) => actors.get(token),
  });

  const exchanges: ExchangeSeen[] = [];
  const trustedIssuers = new Map<string, JWTVerifyGetKey>();
  const refusedSubjects = new Set<string>();

  async function verifySubject(token: string | undefined): Promise<JWTPayload | undefined> {
    if (typeof token !== 'string') return undefined;
    for (const [trusted, keys] of trustedIssuers) {
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: trusted,
          audience: tokenEndpoint,
          typ: 'JWT',
          requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        });
        return payload;
      } catch {
        // Not this issuer's, or not valid: try the next.
      }
    }
    return undefined;
  }

  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx) => {
      const { params, client } = ctx.oidc;
      const subject = await verifySubject(params['subject_token']);
      exchanges.push({ clientId: client.clientId, params: { ...params }, subject });
      if (params['subject_token_type'] !== JWT_TOKEN_TYPE)
        throw new errors.InvalidRequest('unsupported subject_token_type');
      if (subject?.sub === undefined) throw new errors.InvalidGrant('subject token not verified');
      if (refusedSubjects.has(subject.sub))
        throw new errors.InvalidGrant('subject may not use this audience');
      if (params['audience'] !== options.audience) throw new errors.InvalidTarget();
      const requested = (params['scope'] ?? '').split(' ').filter(Boolean);
      const scope = requested.filter((one) => options.scopes.includes(one)).join(' ');
      const token = new provider.AccessToken({
        accountId: subject.sub,
        client,
        grantId: randomUUID(),
        gty: 'token-exchange',
        scope: scope || undefined,
      });
      // RFC 8693 §4.1: the current actor (Warden, the authenticated client) on top.
      const subjectAct = subject['act'];
      actors.set(token, {
        act: { sub: client.clientId, ...(subjectAct !== undefined && { act: subjectAct }) },
      });
      token.resourceServer = new provider.ResourceServer(options.audience, {
        audience: options.audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: options.accessTokenTtlSeconds,
        scope: options.scopes.join(' '),
      });
      const accessToken = await token.save();
      ctx.body = {
        access_token: accessToken,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: token.expiration,
        ...(scope !== '' && { scope }),
      };
    },
    [
      'subject_token',
      'subject_token_type',
      'actor_token',
      'actor_token_type',
      'requested_token_type',
      'audience',
      'resource',
      'scope',
    ],
  );
  server.on('request', provider.callback());

  return {
    issuer,
    tokenEndpoint,
    jwksUri: `${issuer}/jwks`,
    exchanges,
    trustedIssuers,
    refusedSubjects,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
