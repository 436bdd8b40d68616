/**
 * This replica's place among the others on one store: it announces itself (refusing to start
 * when a live replica already writes its audit stream), stamps a heartbeat, and keeps a recent
 * view of who else runs, their policy versions, configuration and argument-hash key, so that
 * hops go only to live replicas and disagreements are reported. A replica whose heartbeat is
 * older than `liveMs` is dead: the first replica to notice forgets its sessions (their clients
 * get 404 and start again) and tells `onReplicaGone`, which withdraws what it held.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalError } from '../../domain/errors.js';
import { describeDisagreements } from '../../policy/read-policy-status.js';
import type { Logger } from '../logger.js';
import { StoreError } from '../../store/errors.js';
import type { ReplicaRecord, Store } from '../../store/types.js';

export interface MembershipOptions {
  readonly store: Pick<Store, 'replicas' | 'sessions'>;
  readonly id: string;
  readonly url: string | undefined;
  readonly auditStream: string;
  readonly configDigest: string;
  readonly hashKeyDigest: string;
  readonly policyVersion: () => string;
  readonly heartbeatMs: number;
  readonly liveMs: number;
  readonly logger: Logger;
  /** Told once of each replica found dead (not of one that said it stopped). */
  readonly onReplicaGone?: ((replica: ReplicaRecord) => Promise<void>) | undefined;
}

/** What /readyz and the CLI tell of the replicas. */
export interface ClusterReport {
  readonly replica: string;
  readonly replicas: readonly {
    readonly id: string;
    readonly alive: boolean;
    readonly policyVersion: string;
    readonly configDigest: string;
    readonly seenMsAgo: number;
  }[];
  /** Disagreements between live replicas, in words; empty when they agree. */
  readonly problems: readonly string[];
}

export interface Membership {
  readonly id: string;
  /** This process's instance of the replica: hops are addressed to it. */
  readonly instance: string;
  /**
   * A live replica's hop address, or undefined when it is dead, stopped or takes no hops. A
   * replica not in the last view (it started since) is looked up in the store once.
   */
  addressOf(
    replica: string,
  ): Promise<{ readonly url: string; readonly instance: string } | undefined>;
  report(): ClusterReport;
  /** Announces the stop and forgets this replica's sessions. */
  leave(): Promise<void>;
}

/** Another live process writes this replica's audit stream, or runs under its name. */
export class ReplicaConflictError extends LocalError {
  constructor(message: string) {
    super('REPLICA_CONFLICT', message);
    this.name = 'ReplicaConflictError';
  }
}

export async function joinCluster(options: MembershipOptions): Promise<Membership> {
  const { store, id, logger } = options;
  const announcement = {
    id,
    // Host and process, so a restart on the same host can tell its previous life is gone.
    instance: `${hostname()}/${process.pid}/${randomBytes(6).toString('base64url')}`,
    url: options.url,
    auditStream: options.auditStream,
    policyVersion: options.policyVersion(),
    configDigest: options.configDigest,
    hashKeyDigest: options.hashKeyDigest,
  };
  // A replica restarted at once (after a crash) finds its previous instance still "live" for up
  // to liveMs: it waits that out. A second process with the same name keeps beating, and is
  // refused once the wait is over.
  await retireDeadPredecessor(store, id);
  const giveUpAt = Date.now() + options.liveMs + options.heartbeatMs;
  for (;;) {
    try {
      await store.replicas.announce(announcement, options.liveMs);
      break;
    } catch (error) {
      if (!(error instanceof StoreError) || error.code !== 'STORE_CONFLICT') throw error;
      if (/is running already/.test(error.message) && Date.now() < giveUpAt) {
        await sleep(Math.min(500, options.heartbeatMs));
        continue;
      }
      throw new ReplicaConflictError(
        `cannot start: ${error.message}. Two processes cannot write one audit chain: give each ` +
          'replica its own audit.stream (WARDEN_AUDIT_STREAM), e.g. its pod or host name.',
      );
    }
  }
  // This replica's earlier life (same id) held sessions that died with it.
  await store.sessions.forgetReplica(id);

  let view: { now: number; replicas: ReplicaRecord[] } = { now: 0, replicas: [] };
  const mourned = new Set<string>();
  const reported = new Set<string>();
  const alive = (replica: ReplicaRecord) =>
    replica.id === id ||
    (replica.stoppedAt === undefined && view.now - replica.seenAt < options.liveMs);

  async function beat(): Promise<void> {
    await store.replicas.heartbeat(id, {
      policyVersion: options.policyVersion(),
      configDigest: options.configDigest,
    });
    view = await store.replicas.list();
    for (const replica of view.replicas) {
      if (alive(replica) || replica.stoppedAt !== undefined || mourned.has(replica.id)) continue;
      mourned.add(replica.id);
      const forgotten = await store.sessions.forgetReplica(replica.id);
      logger.warn(
        { event: 'replica.gone', replica: replica.id, sessions: forgotten },
        'a replica stopped sending heartbeats: its sessions are ended',
      );
      await options.onReplicaGone?.(replica);
    }
    for (const replica of view.replicas) if (alive(replica)) mourned.delete(replica.id);
    for (const problem of problemsOf()) {
      if (reported.has(problem)) continue;
      reported.add(problem);
      logger.error({ event: 'replica.disagreement', problem }, problem);
    }
  }

  const problemsOf = () => describeDisagreements(view.replicas.filter(alive));

  await beat();
  let beating: Promise<void> | undefined;
  const timer = setInterval(() => {
    beating ??= beat()
      .catch((error: unknown) => logger.warn({ err: error }, 'replica heartbeat failed'))
      .finally(() => {
        beating = undefined;
      });
  }, options.heartbeatMs);
  timer.unref();

  return {
    id,
    instance: announcement.instance,
    async addressOf(replica) {
      let record = view.replicas.find((candidate) => candidate.id === replica);
      if (record === undefined || !alive(record)) {
        view = await store.replicas.list();
        record = view.replicas.find((candidate) => candidate.id === replica);
      }
      return record !== undefined && record.id !== id && alive(record) && record.url !== undefined
        ? { url: record.url, instance: record.instance }
        : undefined;
    },
    report: () => ({
      replica: id,
      replicas: view.replicas.map((replica) => ({
        id: replica.id,
        alive: alive(replica),
        policyVersion: replica.policyVersion,
        configDigest: replica.configDigest,
        seenMsAgo: Math.max(0, view.now - replica.seenAt),
      })),
      problems: problemsOf(),
    }),
    async leave() {
      clearInterval(timer);
      await beating;
      await store.sessions.forgetReplica(id);
      await store.replicas.stop(id);
    },
  };
}

/**
 * A replica restarted on the same host after a crash need not wait out its previous life's
 * heartbeat: when that instance's process is gone, it is marked stopped at once. On another
 * host nothing can be known, and the wait (dead_after) stands.
 */
async function retireDeadPredecessor(store: Pick<Store, 'replicas'>, id: string): Promise<void> {
  const { replicas } = await store.replicas.list();
  const previous = replicas.find((replica) => replica.id === id && replica.stoppedAt === undefined);
  if (previous === undefined) return;
  const [host, pid] = previous.instance.split('/');
  if (host !== hostname() || !isProcessGone(Number(pid))) return;
  await store.replicas.stop(id);
}

function isProcessGone(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
