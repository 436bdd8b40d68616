/**
 * What `warden policy status` reports: each replica with the policy version it runs (and which
 * pushed bundle that is), the pushed bundle versions, and in plain words where live replicas
 * disagree (policy version, configuration file, argument-hash key) or where the newest pushed
 * bundle is not yet running.
 */
import type {
  PolicyBundle,
  PolicyBundleRepository,
  ReplicaRecord,
  ReplicaRepository,
} from '../store/types.js';

export interface ReplicaPolicyStatus {
  readonly id: string;
  readonly alive: boolean;
  readonly policyVersion: string;
  /** The pushed bundle whose policy it runs (the newest such); undefined: none (a file's policy). */
  readonly bundle: number | undefined;
  readonly configDigest: string;
  readonly seenMsAgo: number;
}

export interface PolicyStatus {
  /** Live replicas first, then by id. */
  readonly replicas: readonly ReplicaPolicyStatus[];
  /** Newest first. */
  readonly bundles: readonly Omit<PolicyBundle, 'text'>[];
  /** Disagreements between live replicas, in words; empty when they agree. */
  readonly problems: readonly string[];
}

export interface ReadPolicyStatusDependencies {
  readonly replicas: Pick<ReplicaRepository, 'list'>;
  readonly policyBundles: Pick<PolicyBundleRepository, 'list'>;
  /** A replica not heard from for this long is dead (`cluster.dead_after`). */
  readonly liveMs: number;
}

export async function readPolicyStatus(
  dependencies: ReadPolicyStatusDependencies,
): Promise<PolicyStatus> {
  const [{ now, replicas }, bundles] = await Promise.all([
    dependencies.replicas.list(),
    dependencies.policyBundles.list(),
  ]);
  const isAlive = (replica: ReplicaRecord) =>
    replica.stoppedAt === undefined && now - replica.seenAt < dependencies.liveMs;
  const live = replicas.filter(isAlive);
  const problems = describeDisagreements(live);
  const newest = bundles[0];
  if (newest !== undefined && live.length > 0) {
    const behind = live.filter((replica) => replica.policyVersion !== newest.policyVersion);
    if (behind.length > 0) {
      problems.push(
        `the newest pushed bundle #${newest.id} (${newest.policyVersion.slice(0, 12)}) is not running on ${behind.map((r) => r.id).join(', ')}`,
      );
    }
  }
  return {
    replicas: replicas
      .map((replica) => ({
        id: replica.id,
        alive: isAlive(replica),
        policyVersion: replica.policyVersion,
        bundle: bundles.find((bundle) => bundle.policyVersion === replica.policyVersion)?.id,
        configDigest: replica.configDigest,
        seenMsAgo: Math.max(0, now - replica.seenAt),
      }))
      .sort((a, b) => Number(b.alive) - Number(a.alive) || (a.id < b.id ? -1 : 1)),
    bundles: bundles.map(({ text: _text, ...summary }) => summary),
    problems,
  };
}

/**
 * Where live replicas differ, one sentence per kind of difference. `/readyz`, the disagreement
 * log and `warden policy status` all say it this way.
 */
export function describeDisagreements(live: readonly ReplicaRecord[]): string[] {
  const problems: string[] = [];
  const differ = (field: 'policyVersion' | 'configDigest' | 'hashKeyDigest', what: string) => {
    // A replica still starting has no policy version yet: that is no disagreement.
    const values = new Set(live.map((replica) => replica[field]).filter((value) => value !== ''));
    if (values.size > 1) {
      problems.push(
        `replicas disagree on ${what}: ${live.map((r) => `${r.id}=${r[field].slice(0, 12)}`).join(', ')}`,
      );
    }
  };
  differ('policyVersion', 'the policy version');
  differ('configDigest', 'the configuration file');
  differ('hashKeyDigest', 'the argument-hash key (equal arguments would hash differently)');
  return problems;
}
