/**
 * The forensic audit log's record: one per event, hash-chained per stream (one stream per
 * gateway replica), with signed checkpoints over the chain's head.
 */

import type { Decision } from './decision.js';

export const AUDIT_EVENTS = [
  'auth.failed',
  /** A request refused before any call was decided (malformed, too large, unknown session, …). */
  'request.refused',
  'call.denied',
  'call.allowed',
  'approval.requested',
  'approval.granted',
  'approval.refused',
  'approval.expired',
  'approval.invalidated',
  'call.result',
  'call.error',
  'token.issued',
  'token.revoked',
  'key.rotated',
  'grant.changed',
  'breakglass.used',
  'tool.definition_changed',
  'tool.approved',
  'policy.loaded',
  /** A policy bundle stored by `warden policy push` (every replica following the store applies it). */
  'policy.pushed',
  /** A policy bundle refused: by `warden policy push`, or by a replica that could not apply it. */
  'policy.rejected',
  /**
   * Grants name tools an upstream's listing does not contain (they allow nothing); told when the
   * gateway sees the listing, which is after `policy.loaded`, so that record cannot carry it.
   */
  'grant.unlisted',
  'config.loaded',
  'audit.pruned',
  /** The gateway's periodic re-verification found the log in the store broken (audit.verify_every). */
  'audit.verification_failed',
  /** An alert delivered to a webhook (rule, key, webhook, attempts). */
  'alert.sent',
  /** An alert no attempt could deliver; alert records never raise alerts themselves. */
  'alert.failed',
] as const;

export type AuditEvent = (typeof AUDIT_EVENTS)[number];

/** What the caller asks to record; the chain adds stream, seq, prevHash and hash. */
export interface AuditEntry {
  readonly event: AuditEvent;
  /** ISO 8601 with milliseconds, UTC. */
  readonly time: string;
  /** Shared by every record of one call. */
  readonly requestId?: string;
  /** W3C trace id (32 hex), shared by every record of one call. */
  readonly traceId?: string;
  readonly environment?: string;
  readonly tenant?: string;
  readonly region?: string;
  readonly user?: string;
  readonly agent?: string;
  readonly roles?: readonly string[];
  /** The model the client declared; recorded as declared. */
  readonly model?: string;
  /** What the caller proved who it is with, on every record of a call. */
  readonly credential?: AuditCredential;
  readonly upstream?: string;
  /** The MCP method (tools/call, resources/read, …). */
  readonly method?: string;
  readonly tool?: string;
  /** Arguments after redaction. */
  readonly arguments?: unknown;
  /** Keyed hash (HMAC-SHA256, base64url) of the unredacted arguments' canonical JSON. */
  readonly argumentsHash?: string;
  readonly decision?: Decision;
  readonly approval?: {
    readonly id: string;
    readonly approvers?: readonly string[];
    readonly decidedAt?: string;
    readonly argumentsHash?: string;
  };
  readonly result?: {
    readonly isError: boolean;
    readonly size: number;
    /** SHA-256 (base64url) of the result's canonical JSON. */
    readonly hash: string;
    /** A truncated, redacted copy, when configured. */
    readonly excerpt?: string;
  };
  readonly latencyMs?: number;
  readonly errorCode?: string;
  /** Event-specific facts (e.g. the revoked subject, the rotated key id). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * A call's credential, named as an operator finds or revokes it: a token by its issuer and `jti`
 * (and the certificate it is bound to), a client certificate by its fingerprint and identity.
 */
export type AuditCredential =
  | {
      readonly kind: 'jwt';
      readonly issuer: string;
      /** The token's `jti`, when its issuer set one. */
      readonly tokenId?: string;
      /** `x5t#S256` of the client certificate the token is bound to (RFC 8705 §3). */
      readonly boundCertificate?: string;
    }
  | {
      readonly kind: 'mtls';
      /** The SPIFFE id or subject CN that matched the agent's `mtls_identity`. */
      readonly subject: string;
      /** base64url SHA-256 of the DER certificate (its `x5t#S256`). */
      readonly fingerprint: string;
    };

/** A record as stored: the entry plus its place in the chain. */
export interface AuditRecord extends AuditEntry {
  /** The replica's chain this record belongs to. */
  readonly stream: string;
  /** 1, 2, 3, … within the stream, without gaps. */
  readonly seq: number;
  /** `hash` of the previous record of the stream (64 zeros for the first). */
  readonly prevHash: string;
  /** SHA-256 (hex) of the record's RFC 8785 canonical JSON without `hash`. */
  readonly hash: string;
}

/** An Ed25519 signature over a stream's head, made every N records or T seconds and at shutdown. */
export interface AuditCheckpoint {
  readonly stream: string;
  readonly seq: number;
  readonly headHash: string;
  readonly time: string;
  /** Id of the audit signing key (separate from token-signing keys). */
  readonly keyId: string;
  /** Base64url Ed25519 signature over the canonical JSON of {stream, seq, headHash, time, keyId}. */
  readonly signature: string;
}
