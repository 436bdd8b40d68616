/**
 * The legacy bridge's idle upstream sessions. A call checks one out (or opens a new one) and
 * holds it alone, so that server-to-client requests reach the call that caused them; it gives
 * it back when answered. Each agent keeps a bounded number idle.
 */
import type { ForwardContext, UpstreamConnector } from '../upstream/types.js';
import {
  endBridgeSession,
  openBridgeSession,
  sessionKey,
  type BridgeCaller,
  type BridgeSession,
} from './bridge-session.js';
import type { Envelope } from './envelope.js';

/**
 * Idle upstream sessions kept per agent, across every user it acts for and every capability set
 * it declares: neither varying the envelope nor acting for many users piles up sessions (for a
 * stdio upstream, children) that other agents then lack. At the limit the agent's least recently
 * used idle session is ended.
 */
const MAX_IDLE_SESSIONS_PER_AGENT = 4;

export interface SessionPool {
  readonly connector: UpstreamConnector;
  readonly maxIdlePerAgent: number;
  /** Idle sessions by session key, the most recently released last. */
  readonly idle: Map<string, BridgeSession[]>;
  /** Each agent's idle sessions, least recently used first. */
  readonly idleByAgent: Map<string, BridgeSession[]>;
}

/** An empty pool; `maxIdlePerAgent` is held to 1 to 4. */
export function createSessionPool(
  connector: UpstreamConnector,
  maxIdlePerAgent: number | undefined,
): SessionPool {
  return {
    connector,
    maxIdlePerAgent: Math.max(
      1,
      Math.min(MAX_IDLE_SESSIONS_PER_AGENT, maxIdlePerAgent ?? MAX_IDLE_SESSIONS_PER_AGENT),
    ),
    idle: new Map(),
    idleByAgent: new Map(),
  };
}

/** An idle session of this caller with these capabilities, or a new one. */
export async function checkoutSession(
  pool: SessionPool,
  envelope: Envelope,
  context: ForwardContext,
  caller: BridgeCaller,
): Promise<BridgeSession> {
  const key = sessionKey(envelope, caller.owner);
  const ready = pool.idle.get(key)?.at(-1);
  if (ready) {
    takeIdle(pool, ready);
    return ready;
  }
  return openBridgeSession(pool.connector, key, envelope, context, caller);
}

/** Gives a session back, ending the agent's least recently used ones beyond its limit. */
export function releaseSession(pool: SessionPool, session: BridgeSession): void {
  const agentIdle = pool.idleByAgent.get(session.agent) ?? [];
  const over = Math.max(0, agentIdle.length - pool.maxIdlePerAgent + 1);
  for (const oldest of agentIdle.slice(0, over)) {
    takeIdle(pool, oldest);
    discardSession(oldest);
  }
  const sessions = pool.idle.get(session.key) ?? [];
  sessions.push(session);
  pool.idle.set(session.key, sessions);
  agentIdle.push(session);
  pool.idleByAgent.set(session.agent, agentIdle);
}

/** Ends a session in the background: one left in an unknown state is never reused. */
export function discardSession(session: BridgeSession): void {
  void endBridgeSession(session);
}

/** Empties the pool and returns the sessions it held, for the caller to end. */
export function drainSessionPool(pool: SessionPool): BridgeSession[] {
  const sessions = [...pool.idle.values()].flat();
  pool.idle.clear();
  pool.idleByAgent.clear();
  return sessions;
}

/** Takes an idle session out of its pool and its agent's list. */
function takeIdle(pool: SessionPool, session: BridgeSession): void {
  for (const [lists, key] of [
    [pool.idle, session.key],
    [pool.idleByAgent, session.agent],
  ] as const) {
    const list = lists.get(key) ?? [];
    const at = list.indexOf(session);
    if (at !== -1) list.splice(at, 1);
    if (list.length === 0) lists.delete(key);
  }
}
