/** Who is calling: the result of authentication, carried by every request through the pipeline. */

/** How the caller proved who it is. */
export type Credential =
  | {
      readonly kind: 'jwt';
      readonly issuer: string;
      /** The token id (jti), when the issuer set one; revocation by id needs it. */
      readonly tokenId: string | undefined;
      readonly issuedAt: number | undefined;
      readonly expiresAt: number;
      readonly scopes: readonly string[];
      /** SHA-256 thumbprint of the certificate the token is bound to (RFC 8705), if any. */
      readonly boundCertificate: string | undefined;
    }
  | {
      readonly kind: 'mtls';
      /** The certificate identity that matched the agent registry (SPIFFE URI SAN or subject). */
      readonly subject: string;
      readonly fingerprint: string;
      readonly expiresAt: number;
    };

export interface Identity {
  /** The human on whose behalf the agent acts (token `sub`), when there is one. */
  readonly user: string | undefined;
  /** The delegation chain from the token's `act` claim, outermost actor first. */
  readonly delegation: readonly string[];
  /** The registered agent (client id, `azp`, or the client certificate's identity). */
  readonly agent: string;
  /** The agent's roles from the registry, narrowed (never widened) by the token. */
  readonly roles: readonly string[];
  readonly environment: string;
  readonly tenant: string | undefined;
  /** The model the client says selected the call; recorded as declared, never trusted. */
  readonly declaredModel: string | undefined;
  readonly credential: Credential;
}
