/**
 * Revocations in force, held in memory and checked on every request (no cache window).
 * Revoking writes to the store and applies here at once; revocations made by other replicas
 * arrive through the store's subscription (PostgreSQL NOTIFY) within moments.
 */
import type { Revocation, RevocationRepository } from '../store/types.js';

/** What a credential is checked against: its id, its agent, its user, and when it was issued. */
export interface RevocationSubject {
  readonly tokenId: string | undefined;
  readonly agent: string;
  readonly user: string | undefined;
  /** Issue time in ms; a credential with no issue time is treated as issued at the epoch. */
  readonly issuedAt: number | undefined;
}

export interface RevocationList {
  /** The revocation that covers this credential, if any. */
  find(subject: RevocationSubject): Revocation | undefined;
  /** The revocation of a client certificate by serial (lowercase hex, no leading zeros). */
  findCertificate(serial: string): Revocation | undefined;
  /** True while an agent revocation is in force: the agent may not be issued new tokens. */
  isAgentRevoked(agent: string, at: number): boolean;
  revoke(revocation: Revocation): Promise<void>;
  /**
   * Re-reads the revocations in force from the store now, rather than waiting for the feed
   * (a SQLite store is polled): for a decision that must see a revocation made a moment ago.
   */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export async function loadRevocationList(
  repository: RevocationRepository,
  now: () => number = Date.now,
): Promise<RevocationList> {
  const byToken = new Map<string, Revocation>();
  // Agent and user revocations are watermarks: every credential issued up to then is dead.
  const byAgent = new Map<string, Revocation>();
  const byUser = new Map<string, Revocation>();
  const byCertificate = new Map<string, Revocation>();

  const apply = (revocation: Revocation): void => {
    const table = { token: byToken, agent: byAgent, user: byUser, certificate: byCertificate }[
      revocation.kind
    ];
    const known = table.get(revocation.subject);
    if (!known || known.revokedAt < revocation.revokedAt) table.set(revocation.subject, revocation);
  };

  for (const revocation of await repository.listActive(now())) apply(revocation);
  const unsubscribe = await repository.subscribe(apply);

  return {
    find(subject) {
      const issuedAt = subject.issuedAt ?? 0;
      if (subject.tokenId !== undefined) {
        const token = byToken.get(subject.tokenId);
        if (token) return token;
      }
      const agent = byAgent.get(subject.agent);
      if (agent && issuedAt <= agent.revokedAt) return agent;
      const user = subject.user === undefined ? undefined : byUser.get(subject.user);
      if (user && issuedAt <= user.revokedAt) return user;
      return undefined;
    },
    findCertificate(serial) {
      return byCertificate.get(serial);
    },
    isAgentRevoked(agent, at) {
      const revocation = byAgent.get(agent);
      return revocation !== undefined && revocation.expiresAt > at;
    },
    async revoke(revocation) {
      await repository.add(revocation);
      apply(revocation);
    },
    async refresh() {
      for (const revocation of await repository.listActive(now())) apply(revocation);
    },
    close: unsubscribe,
  };
}
