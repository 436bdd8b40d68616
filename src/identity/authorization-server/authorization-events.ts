/** What the authorization server did, for the audit log (`token.issued`, `auth.failed`). */

/** Where a refusal happened. */
export type LoginStep = 'authorize' | 'login' | 'consent' | 'token' | 'registration' | 'callback';

export type AuthorizationServerEvent =
  | {
      readonly kind: 'token.issued';
      readonly source: string;
      readonly requestId: string | undefined;
      /** The person (the token's `sub`). */
      readonly user: string;
      /** The app (`client_id`). */
      readonly app: string;
      /** The registered agent the app acts as (`warden_agent`). */
      readonly agent: string;
      readonly roles: readonly string[];
      readonly grantType: string;
      readonly tokenId: string;
      readonly expiresAt: number;
      readonly scopes: readonly string[];
      readonly audience: string;
    }
  | {
      readonly kind: 'auth.failed';
      readonly source: string;
      readonly requestId: string | undefined;
      readonly step: LoginStep;
      /** The OAuth error the client or browser was answered with. */
      readonly error: string;
      /** Why, in a few words, for the operator; never sent to the client. */
      readonly reason: string;
      readonly app: string | undefined;
      readonly user: string | undefined;
    }
  | {
      /** A grant and every token issued under it (the refresh token family) were revoked. */
      readonly kind: 'grant.revoked';
      readonly source: string;
      readonly requestId: string | undefined;
      readonly grantId: string;
      /** A refresh token or a code used twice at the token endpoint, or the app revoking one. */
      readonly reason: 'refresh_token_reused' | 'code_replayed' | 'revoked_by_client';
      readonly app: string | undefined;
      readonly user: string | undefined;
    };

export type AuthorizationEventSink = (event: AuthorizationServerEvent) => void;
