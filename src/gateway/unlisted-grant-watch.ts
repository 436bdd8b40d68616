/**
 * Tells of grants naming tools their upstream does not list, as soon as the gateway sees the
 * upstream's listing: a warning in the log and a `grant.unlisted` audit record, naming each grant
 * and tool. Told once per upstream for each policy version and finding, and again after a reload
 * (against the listings already seen), so a typo in a tool name never fails silently.
 */
import type { PolicyConfig } from '../config/policy-config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import { describeUnlistedGrant, findUnlistedGrants } from '../policy/find-unlisted-grants.js';
import type { ToolCatalog } from '../policy/tool-catalog.js';

export interface UnlistedGrantWatch {
  /** The catalog to decide with: it observes listings through the watch. */
  readonly catalog: ToolCatalog;
  /** Checks the policy now in force against every listing seen so far. */
  recheck(): Promise<void>;
}

export interface UnlistedGrantWatchOptions {
  /** The policy in force and its version. */
  readonly policy: () => {
    readonly version: string;
    readonly config: Pick<PolicyConfig, 'grants'>;
  };
  readonly environment: string;
  readonly now: () => number;
  readonly record: (entry: AuditEntry) => Promise<void>;
  readonly alert: (message: string, details: Record<string, unknown>) => void;
  /** Told when the finding could not be recorded; the listing goes on regardless. */
  readonly onError: (error: unknown) => void;
}

export function watchForUnlistedGrants(
  catalog: ToolCatalog,
  options: UnlistedGrantWatchOptions,
): UnlistedGrantWatch {
  /** Each upstream's tool names, from its latest complete listing. */
  const listed = new Map<string, ReadonlySet<string>>();
  /** Per upstream, the finding last told, so the same one is not told at every listing. */
  const told = new Map<string, string>();

  const check = async (upstream: string): Promise<void> => {
    const names = listed.get(upstream);
    if (names === undefined) return;
    const { version, config } = options.policy();
    const unlisted = findUnlistedGrants(config, upstream, names);
    const finding = [version, ...unlisted.map((entry) => `${entry.grant}\u0000${entry.tool}`)].join(
      '\u0000',
    );
    if (unlisted.length === 0) {
      told.delete(upstream);
      return;
    }
    if (told.get(upstream) === finding) return;
    told.set(upstream, finding);
    options.alert(
      `grants name tools that upstream ${upstream} does not list; they allow nothing: ${unlisted.map(describeUnlistedGrant).join('; ')}`,
      {
        upstream,
        grants: unlisted.map(({ grant, keyPath, tool, closest }) => ({
          grant,
          keyPath,
          tool,
          ...(closest !== undefined && { closest }),
        })),
      },
    );
    await options.record({
      event: 'grant.unlisted',
      time: new Date(options.now()).toISOString(),
      environment: options.environment,
      upstream,
      details: {
        policyVersion: version,
        grants: unlisted.map(({ grant, keyPath, tool }) => ({ id: grant, keyPath, tool })),
      },
    });
  };
  const checkQuietly = (upstream: string) => check(upstream).catch(options.onError);

  return {
    catalog: {
      lookup: (upstream, name) => catalog.lookup(upstream, name),
      async observe(upstream, tools, listing) {
        const statuses = await catalog.observe(upstream, tools, listing);
        // One page of a paginated listing is not the list: a tool on another page is listed.
        if (listing?.complete !== false) {
          listed.set(upstream, new Set(tools.map((tool) => tool.name)));
          await checkQuietly(upstream);
        }
        return statuses;
      },
    },
    async recheck() {
      for (const upstream of listed.keys()) await checkQuietly(upstream);
    },
  };
}
