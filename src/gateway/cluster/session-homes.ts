/**
 * Which replica holds each client session, shared through the store, and the hops between them.
 * A session's upstream half (an HTTP session, a stdio child, a GET stream) lives in one process:
 * rather than move it, any other replica relays the session's exchanges to that one. A session is
 * published before its initialize is answered, so the client's next request finds it wherever it
 * lands; it is forgotten when it ends here, or when its replica stops or dies (its clients then
 * get the spec's 404 and initialize again).
 */
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { peerCertificateOf } from '../../identity/tls-peer-check.js';
import { WardenError } from '../../domain/errors.js';
import type { Store } from '../../store/types.js';
import type { Logger } from '../logger.js';
import { signHop, verifyHop, type HopClaims } from './hop-signature.js';
import type { Membership } from './replica-membership.js';
import { relayToReplica } from './relay-to-replica.js';

export interface SessionHomes {
  /** Names this replica as the session's home; awaited before the session id is told. */
  publish(session: { id: string; agent: string; upstreamName: string }): Promise<void>;
  /** The session ended here. */
  forget(id: string): void;
  /** Relays the exchange to the live replica that holds the session; false when none does. */
  relay(
    session: string,
    request: IncomingMessage,
    response: ServerResponse,
    source: string,
    signal: AbortSignal,
  ): Promise<boolean>;
  /**
   * Relays a 2026-07-28 retry, whose body is read already, to the replica that parked its call
   * (named in its requestState); false when that replica is not alive.
   */
  relayRetry(
    replica: string,
    parkedCall: string,
    request: IncomingMessage,
    body: string,
    response: ServerResponse,
    source: string,
    signal: AbortSignal,
  ): Promise<boolean>;
  /** Checks a relayed request's hop claims: it may be used once, here, for a short time. */
  accept(request: IncomingMessage): HopClaims;
  /** The client certificate a relayed request carried, verified by the replica it reached. */
  certificateOf(request: IncomingMessage): X509Certificate | undefined;
  /** Whether another replica relayed this request here (it is never relayed again). */
  wasRelayed(request: IncomingMessage): boolean;
  /**
   * A request relayed as a 2026-07-28 retry must carry the requestState its hop was signed for;
   * anything else (WARDEN_HOP_REFUSED) was not what the relaying replica sent.
   */
  checkRetryHop(request: IncomingMessage, requestState: unknown): void;
}

/** A hop's signature is accepted once: a captured hop cannot be replayed within its window. */
const SEEN_HOPS_MAX = 100_000;
/** Sessions whose home this replica remembers (oldest forgotten first). */
const HOMES_SEEN_MAX = 50_000;

export function createSessionHomes(options: {
  readonly store: Pick<Store, 'sessions'>;
  readonly membership: Membership;
  readonly hopKey: Buffer;
  readonly logger: Logger;
  readonly now?: () => number;
}): SessionHomes {
  const { store, membership, hopKey, logger } = options;
  const now = options.now ?? Date.now;
  const seen = new Map<string, number>();
  const homesSeen = new Map<string, string>();
  const certificates = new WeakMap<IncomingMessage, X509Certificate>();
  const relayed = new WeakMap<IncomingMessage, HopClaims>();

  function remember(signature: string, at: number): void {
    for (const [old, until] of seen) {
      if (until > at && seen.size < SEEN_HOPS_MAX) break;
      seen.delete(old);
    }
    seen.set(signature, at + 60_000);
  }

  function claimsFor(
    kind: HopClaims['kind'],
    to: string,
    session: string,
    request: IncomingMessage,
    source: string,
  ): HopClaims {
    // Only a certificate the listener verified (CA, trust domain, revocation) is relayed.
    const verdict = peerCertificateOf(request.socket as Partial<TLSSocket>);
    const peer = verdict.status === 'verified' ? verdict.certificate : undefined;
    return {
      kind,
      from: membership.id,
      to,
      at: now(),
      method: request.method ?? '',
      url: request.url ?? '/',
      session,
      source,
      certificate: peer?.raw.toString('base64'),
    };
  }

  return {
    async publish(session) {
      await store.sessions.record({
        id: session.id,
        replica: membership.id,
        agent: session.agent,
        upstream: session.upstreamName,
        createdAt: now(),
      });
    },
    forget(id) {
      store.sessions.forget(id).catch((error: unknown) => {
        logger.warn({ err: error }, 'could not forget an ended session in the store');
      });
    },
    async relay(session, request, response, source, signal) {
      // A session's home never changes, so it is read from the store once: a session that has
      // since ended there is answered 404 by its home, as it would be here.
      let home = homesSeen.get(session);
      if (home === undefined) {
        home = (await store.sessions.find(session))?.replica;
        if (home === undefined || home === membership.id) return false;
        if (homesSeen.size >= HOMES_SEEN_MAX) homesSeen.delete(homesSeen.keys().next().value!);
        homesSeen.set(session, home);
      }
      const address = await membership.addressOf(home);
      if (address === undefined) {
        // Its replica is gone: the session with it.
        homesSeen.delete(session);
        await store.sessions.forget(session);
        return false;
      }
      const claims = claimsFor('session', address.instance, session, request, source);
      await relayToReplica(
        address.url,
        request,
        undefined,
        response,
        signHop(hopKey, claims),
        signal,
      );
      return true;
    },
    async relayRetry(replica, parkedCall, request, body, response, source, signal) {
      const address = await membership.addressOf(replica);
      if (address === undefined) return false;
      const claims = claimsFor('retry', address.instance, parkedCall, request, source);
      await relayToReplica(address.url, request, body, response, signHop(hopKey, claims), signal);
      return true;
    },
    accept(request) {
      const at = now();
      const claims = verifyHop(hopKey, membership.instance, request, at);
      const signature = String(request.headers['warden-hop-signature']);
      if (seen.has(signature)) {
        throw new WardenError('WARDEN_HOP_REFUSED', 'this hop was used already');
      }
      remember(signature, at);
      relayed.set(request, claims);
      if (claims.certificate !== undefined) {
        certificates.set(request, new X509Certificate(Buffer.from(claims.certificate, 'base64')));
      }
      return claims;
    },
    certificateOf: (request) => certificates.get(request),
    wasRelayed: (request) => relayed.has(request),
    checkRetryHop(request, requestState) {
      const claims = relayed.get(request);
      // A session hop carries whatever the client sent on its session; it is read as such.
      if (claims === undefined || claims.kind === 'session') return;
      if (claims.session !== requestState) {
        throw new WardenError(
          'WARDEN_HOP_REFUSED',
          'the relayed message is not the retry its hop was signed for',
        );
      }
    },
  };
}
