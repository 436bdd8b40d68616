/**
 * The internal hop between replicas: a replica that does not hold a client's session relays the
 * exchange to the replica that does. The relayed request carries what only the first replica
 * saw — the client's address and verified certificate — so the owner must be able to trust those
 * claims: they are signed with a key every replica reads from the shared store, bound to the
 * target replica, the request line and the session, and valid for a short time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../../domain/errors.js';
import { STATELESS_REVISION } from '../../domain/protocol.js';
import { firstValue } from '../../http/http-headers.js';

/** Headers a hop adds; a client that sends any of them is refused unless the signature holds. */
export const HOP_HEADERS = {
  from: 'warden-hop-from',
  to: 'warden-hop-to',
  at: 'warden-hop-at',
  source: 'warden-hop-source',
  session: 'warden-hop-session',
  kind: 'warden-hop-kind',
  certificate: 'warden-hop-certificate',
  signature: 'warden-hop-signature',
} as const;

/** How far a hop's timestamp may be from the receiver's clock. */
const HOP_VALID_MS = 30_000;

export interface HopClaims {
  readonly from: string;
  /** The target replica's instance (name, host, process): a restarted replica takes no old hop. */
  readonly to: string;
  /** `session`: an exchange on a session (its Mcp-Session-Id must be `session`); `retry`: a
   * 2026-07-28 retry whose requestState is `session`. */
  readonly kind: 'session' | 'retry';
  readonly at: number;
  readonly method: string;
  /** The request target as received: path and query. */
  readonly url: string;
  /** The session (or, for a 2026-07-28 retry, the parked call) the hop is for. */
  readonly session: string;
  /** The client's address as the first replica saw it. */
  readonly source: string;
  /** The client's verified certificate (DER, base64), when it presented one. */
  readonly certificate: string | undefined;
}

function mac(key: Buffer, claims: HopClaims): string {
  const text = [
    'warden-hop-v1',
    claims.kind,
    claims.from,
    claims.to,
    String(claims.at),
    claims.method,
    claims.url,
    claims.session,
    claims.source,
    claims.certificate ?? '-',
  ].join('\n');
  return createHmac('sha256', key).update(text).digest('base64url');
}

/** The headers that carry `claims` to the owner. */
export function signHop(key: Buffer, claims: HopClaims): Record<string, string> {
  return {
    [HOP_HEADERS.kind]: claims.kind,
    [HOP_HEADERS.from]: claims.from,
    [HOP_HEADERS.to]: claims.to,
    [HOP_HEADERS.at]: String(claims.at),
    [HOP_HEADERS.source]: claims.source,
    [HOP_HEADERS.session]: claims.session,
    ...(claims.certificate === undefined ? {} : { [HOP_HEADERS.certificate]: claims.certificate }),
    [HOP_HEADERS.signature]: mac(key, claims),
  };
}

/** Whether a request carries any hop header (genuine or not). */
export function claimsHop(headers: IncomingHttpHeaders): boolean {
  return Object.values(HOP_HEADERS).some((name) => headers[name] !== undefined);
}

/**
 * The claims of a genuine hop addressed to `self`; anything else — a forged or stale signature,
 * a hop meant for another replica, a missing session — is WARDEN_HOP_REFUSED.
 */
export function verifyHop(
  key: Buffer,
  self: string,
  request: { method?: string | undefined; url?: string | undefined; headers: IncomingHttpHeaders },
  now: number,
): HopClaims {
  const header = (name: string) => firstValue(request.headers[name]);
  const at = Number(header(HOP_HEADERS.at));
  const kind = header(HOP_HEADERS.kind) === 'retry' ? 'retry' : 'session';
  const claims: HopClaims = {
    kind,
    from: header(HOP_HEADERS.from) ?? '',
    to: header(HOP_HEADERS.to) ?? '',
    at,
    method: request.method ?? '',
    url: request.url ?? '',
    session: header(HOP_HEADERS.session) ?? '',
    source: header(HOP_HEADERS.source) ?? '',
    certificate: header(HOP_HEADERS.certificate),
  };
  const given = Buffer.from(header(HOP_HEADERS.signature) ?? '');
  const expected = Buffer.from(mac(key, claims));
  const genuine = given.length === expected.length && timingSafeEqual(given, expected);
  if (!genuine) throw new WardenError('WARDEN_HOP_REFUSED', 'the hop signature does not verify');
  if (claims.to !== self) {
    throw new WardenError('WARDEN_HOP_REFUSED', `the hop was meant for replica "${claims.to}"`);
  }
  if (!Number.isFinite(at) || Math.abs(now - at) > HOP_VALID_MS) {
    throw new WardenError('WARDEN_HOP_REFUSED', 'the hop is stale');
  }
  // A session hop is good for that session only; a retry hop for a message with no session
  // (its requestState is checked against the claim once the body is read: checkRetryHop).
  const sessionHeader = header('mcp-session-id');
  // A retry is a 2026-07-28 message: it is read in that revision's lane, which checks it.
  const named =
    kind === 'session'
      ? sessionHeader === claims.session
      : sessionHeader === undefined && header('mcp-protocol-version') === STATELESS_REVISION;
  if (claims.session === '' || !named) {
    throw new WardenError('WARDEN_HOP_REFUSED', 'a hop must name the session it is for');
  }
  return claims;
}
