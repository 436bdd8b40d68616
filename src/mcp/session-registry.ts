/**
 * Client sessions: Warden issues its own Mcp-Session-Id (unguessable, never the upstream's) and
 * keeps the upstream half of each session. Idle sessions are ended after a configured time.
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
  protocolVersion: string | undefined;
  lastSeenAt: number;
  /** Open exchanges (POST streams, GET streams); a session in use is never idle. */
  activeExchanges: number;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, ClientSession>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxSessions: number,
    private readonly idleTimeoutMs: number,
    private readonly onExpire: (session: ClientSession) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(idleTimeoutMs, 60_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  create(
    upstreamName: string,
    upstream: UpstreamSession,
    protocolVersion: string | undefined,
    owner: string,
  ): ClientSession {
    if (this.sessions.size >= this.maxSessions) throw new WardenError('WARDEN_TOO_MANY_SESSIONS');
    const session: ClientSession = {
      id: randomBytes(24).toString('base64url'),
      upstreamName,
      upstream,
      owner,
      protocolVersion,
      lastSeenAt: this.now(),
      activeExchanges: 0,
    };
    this.sessions.set(session.id, session);
    upstream.onEnded = () => this.delete(session.id);
    return session;
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

  delete(id: string): ClientSession | undefined {
    const session = this.sessions.get(id);
    this.sessions.delete(id);
    return session;
  }

  all(): ClientSession[] {
    return [...this.sessions.values()];
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const cutoff = this.now() - this.idleTimeoutMs;
    for (const session of this.sessions.values()) {
      if (session.activeExchanges === 0 && session.lastSeenAt < cutoff) {
        this.sessions.delete(session.id);
        this.onExpire(session);
      }
    }
  }
}
