/**
 * Client sessions: Warden issues its own Mcp-Session-Id (unguessable, never the upstream's) and
 * keeps the upstream half of each session. Idle sessions are ended after a configured time.
 *
 * Sessions are also a share of an upstream, so each agent's share is capped: on one upstream an
 * agent holds at most `maxPerAgent` sessions and bridged 2026-07-28 requests in flight together.
 * An agent at its cap ends its own least recently used idle session there to make room: clients
 * that never send DELETE are common, and must keep working (for an agent acting for many users,
 * the idle session may be another user's of the same agent). A session whose client holds its GET
 * stream open or has a request in flight is not idle: with none idle the agent is refused
 * (WARDEN_TOO_MANY_SESSIONS_FOR_AGENT). No agent ever ends another agent's session.
 */
import { randomBytes } from 'node:crypto';
import { WardenError } from '../domain/errors.js';
import type { UpstreamSession } from './upstream/types.js';

export interface ClientSession {
  readonly id: string;
  readonly upstreamName: string;
  readonly upstream: UpstreamSession;
  /** The identity that opened the session; no other may use it. */
  readonly owner: string;
  /** The agent that opened it: the unit whose share of the upstream is capped. */
  readonly agent: string;
  protocolVersion: string | undefined;
  /** Whether the client declared it can answer elicitation requests (its initialize said so). */
  readonly elicits: boolean;
  lastSeenAt: number;
  /** Open exchanges (POSTs from lookup to reply, GET streams); a session in use is never idle. */
  activeExchanges: number;
  /** The POSTs among them: a call may wait in the gate (for an approval) before it is sent. */
  callsInFlight: number;
}

/** Why a session ended without its client asking. */
export type SessionEnd =
  /** Unused for the idle timeout. */
  | 'idle'
  /** Its agent, at its cap, opened a newer one. */
  | 'evicted'
  /** The upstream ended its half (an HTTP upstream that lost it, a stdio child reclaimed). */
  | 'upstream_ended';

export interface SessionLimits {
  /** Sessions held at once, all upstreams and callers together. */
  readonly maxSessions: number;
  /** Sessions plus bridged 2026-07-28 requests in flight, per agent and upstream. */
  readonly maxPerAgent: number;
  readonly idleTimeoutMs: number;
}

export interface NewSession {
  readonly upstreamName: string;
  readonly owner: string;
  readonly agent: string;
  readonly protocolVersion: string | undefined;
  readonly elicits?: boolean;
  /** Opens the upstream half: called only once the session is admitted. */
  readonly open: () => UpstreamSession;
}

/** What one agent holds on one upstream. */
interface Share {
  readonly sessions: Set<ClientSession>;
  exchanges: number;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, ClientSession>();
  /** By upstream and agent. */
  private readonly shares = new Map<string, Share>();
  private readonly sweeper: NodeJS.Timeout;
  /** Told of every session that ends here, however it ends (the store forgets where it was). */
  onForget: (session: ClientSession) => void = () => undefined;

  constructor(
    private readonly limits: SessionLimits,
    /** Told of every session that ends without its client asking; it stops the upstream half. */
    private readonly onEnd: (session: ClientSession, reason: SessionEnd) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(limits.idleTimeoutMs, 60_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Admits a new session, then opens its upstream half. Throws WARDEN_TOO_MANY_SESSIONS when the
   * gateway holds its limit, WARDEN_TOO_MANY_SESSIONS_FOR_AGENT when the agent holds its share
   * and none of its sessions there is idle to end.
   */
  create(request: NewSession): ClientSession {
    if (this.sessions.size >= this.limits.maxSessions) {
      throw new WardenError('WARDEN_TOO_MANY_SESSIONS');
    }
    const share = this.makeRoom(request.upstreamName, request.agent);
    let upstream: UpstreamSession;
    try {
      upstream = request.open();
    } catch (error) {
      this.forgetIfEmpty(request.upstreamName, request.agent, share);
      throw error;
    }
    const session: ClientSession = {
      id: randomBytes(24).toString('base64url'),
      upstreamName: request.upstreamName,
      upstream,
      owner: request.owner,
      agent: request.agent,
      protocolVersion: request.protocolVersion,
      elicits: request.elicits ?? false,
      lastSeenAt: this.now(),
      activeExchanges: 0,
      callsInFlight: 0,
    };
    this.sessions.set(session.id, session);
    share.sessions.add(session);
    upstream.onEnded = () => {
      // A call under way (held for approval, say) goes on: a stdio session whose child was
      // reclaimed starts a new one for it. Otherwise the client is told the session is gone.
      if (session.callsInFlight === 0) this.end(session.id, 'upstream_ended');
    };
    return session;
  }

  /**
   * Counts one bridged 2026-07-28 request in flight against its agent's share, as create does a
   * session; call the returned function when it has ended (calling it again does nothing).
   */
  holdExchange(upstreamName: string, agent: string): () => void {
    const share = this.makeRoom(upstreamName, agent);
    share.exchanges += 1;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      share.exchanges -= 1;
      this.forgetIfEmpty(upstreamName, agent, share);
    };
  }

  /**
   * Finds a session of this upstream and this owner: a session id is not valid on another
   * upstream's path, nor in another caller's hands.
   */
  find(id: string, upstreamName: string, owner: string): ClientSession | undefined {
    const session = this.sessions.get(id);
    if (!session || session.upstreamName !== upstreamName || session.owner !== owner)
      return undefined;
    session.lastSeenAt = this.now();
    return session;
  }

  /** Whether the session's upstream half lives in this process. */
  holds(id: string): boolean {
    return this.sessions.has(id);
  }

  delete(id: string): ClientSession | undefined {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    this.sessions.delete(id);
    this.onForget(session);
    const share = this.shares.get(shareKey(session.upstreamName, session.agent));
    if (share) {
      share.sessions.delete(session);
      this.forgetIfEmpty(session.upstreamName, session.agent, share);
    }
    return session;
  }

  all(): ClientSession[] {
    return [...this.sessions.values()];
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /** The agent's share, with room for one more (its own idlest session ended if need be). */
  private makeRoom(upstreamName: string, agent: string): Share {
    const share = this.shareOf(upstreamName, agent);
    if (share.sessions.size + share.exchanges < this.limits.maxPerAgent) return share;
    let idlest: ClientSession | undefined;
    for (const session of share.sessions) {
      if (
        session.activeExchanges === 0 &&
        (idlest === undefined || session.lastSeenAt < idlest.lastSeenAt)
      ) {
        idlest = session;
      }
    }
    if (idlest === undefined) {
      throw new WardenError('WARDEN_TOO_MANY_SESSIONS_FOR_AGENT', undefined, {
        details: { limit: this.limits.maxPerAgent },
      });
    }
    this.end(idlest.id, 'evicted');
    return this.shareOf(upstreamName, agent);
  }

  private shareOf(upstreamName: string, agent: string): Share {
    const key = shareKey(upstreamName, agent);
    let share = this.shares.get(key);
    if (!share) {
      share = { sessions: new Set(), exchanges: 0 };
      this.shares.set(key, share);
    }
    return share;
  }

  private forgetIfEmpty(upstreamName: string, agent: string, share: Share): void {
    const key = shareKey(upstreamName, agent);
    if (share.sessions.size === 0 && share.exchanges === 0 && this.shares.get(key) === share) {
      this.shares.delete(key);
    }
  }

  private end(id: string, reason: SessionEnd): void {
    const session = this.delete(id);
    if (session) this.onEnd(session, reason);
  }

  private sweep(): void {
    const cutoff = this.now() - this.limits.idleTimeoutMs;
    for (const session of [...this.sessions.values()]) {
      if (session.activeExchanges === 0 && session.lastSeenAt < cutoff) {
        this.end(session.id, 'idle');
      }
    }
  }
}

function shareKey(upstreamName: string, agent: string): string {
  return `${upstreamName}\u0000${agent}`;
}
