/**
 * Tool-definition pinning against rug pulls. Every listing an upstream sends is hashed tool by
 * tool; a tool is usable only while its current definition is the approved one. A definition that
 * changes after approval hides the tool and denies its calls (`tool_definition_changed`) until an
 * operator approves the new version (`warden tools approve`). With `trust_on_first_use` the first
 * definition ever seen is approved automatically (and recorded as such); with `require_approval`
 * nothing is usable before an operator approves it.
 */
import type { AuditEntry } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import type { Store } from '../store/types.js';
import { hashToolDefinition, type ToolDefinition } from './tool-definition.js';

export type ToolStatus = 'approved' | 'changed' | 'unapproved' | 'unknown';

export interface KnownTool {
  readonly definition: ToolDefinition;
  readonly hash: string;
  readonly status: ToolStatus;
}

export interface ToolCatalog {
  /**
   * Records a listing's tools and returns each one's status, by name. `listing.complete` is false
   * for one page of a paginated listing (pinning is the same; only the whole list tells which
   * tools an upstream lacks).
   */
  observe(
    upstream: string,
    tools: readonly ToolDefinition[],
    listing?: { readonly complete: boolean },
  ): Promise<Map<string, KnownTool>>;
  /** The tool's current definition and status; `unknown` when never listed nor approved. */
  lookup(upstream: string, name: string): Promise<KnownTool | { readonly status: 'unknown' }>;
}

/** Approvals made elsewhere (the CLI, another replica) are looked up at most this often. */
const APPROVALS_REFRESH_MS = 1000;
/**
 * A tool this process never listed is looked up in the store again sooner: another replica may
 * have just listed (and, trusting on first use, approved) it for the same client.
 */
const UNKNOWN_TOOL_REREAD_MS = 50;
export const FIRST_USE_APPROVER = 'warden (trust on first use)';

export function createToolCatalog(options: {
  readonly store: Pick<Store, 'toolDefinitions'>;
  readonly mode: 'trust_on_first_use' | 'require_approval';
  readonly now: () => number;
  /** Records tool.approved (first use) and tool.definition_changed. */
  readonly record: (entry: AuditEntry) => Promise<void>;
  /** Raised once per changed definition. */
  readonly alert: (message: string, details: Record<string, unknown>) => void;
  /** Told once per changed definition (pending approvals for the tool are then stale). */
  readonly onDefinitionChanged?: (upstream: string, tool: string) => Promise<void>;
}): ToolCatalog {
  const { store, now } = options;
  const current = new Map<string, { definition: ToolDefinition; hash: string }>();
  let approved = new Map<string, string>();
  let approvedReadAt = Number.NEGATIVE_INFINITY;
  /** Reads of the approvals begun so far, and what this process approved after which read. */
  let reads = 0;
  const approvedHere = new Map<string, { hash: string; generation: number }>();
  const reported = new Set<string>();
  /** Names the latest listing gave two different definitions: blocked until listed cleanly. */
  const ambiguous = new Set<string>();

  const readApprovals = async (force: boolean) => {
    if (!force && now() - approvedReadAt < APPROVALS_REFRESH_MS) return;
    const generation = ++reads;
    const read = await store.toolDefinitions.approvedHashes();
    // A read that began before this process approved something must not take it back: reads
    // overlap when calls arrive together, and a snapshot taken before the approval committed
    // would make the tool look unapproved again.
    for (const [key, approval] of approvedHere) {
      if (approval.generation >= generation) read.set(key, approval.hash);
    }
    approved = read;
    approvedReadAt = now();
  };

  const statusOf = (key: string, hash: string): ToolStatus => {
    const pinned = approved.get(key);
    if (pinned === hash) return 'approved';
    return pinned === undefined ? 'unapproved' : 'changed';
  };

  const inFlight = new Map<string, Promise<void>>();
  const settle = async (upstream: string, definition: ToolDefinition, hash: string) => {
    const key = `${upstream}.${definition.name}`;
    if (statusOf(key, hash) === 'approved') return;
    const at = now();
    await store.toolDefinitions.observe({
      upstream,
      tool: definition.name,
      hash,
      definition: canonicalJson(definition),
      firstSeenAt: at,
    });
    const pinned = approved.get(key);
    if (pinned === undefined && options.mode === 'trust_on_first_use') {
      await store.toolDefinitions.approve(upstream, definition.name, hash, FIRST_USE_APPROVER, at);
      approved.set(key, hash);
      approvedHere.set(key, { hash, generation: reads });
      await options.record({
        event: 'tool.approved',
        time: new Date(at).toISOString(),
        upstream,
        tool: definition.name,
        details: { hash, approvedBy: FIRST_USE_APPROVER },
      });
      return;
    }
    if (pinned !== undefined && !reported.has(`${key}\u0000${hash}`)) {
      reported.add(`${key}\u0000${hash}`);
      await options.record({
        event: 'tool.definition_changed',
        time: new Date(at).toISOString(),
        upstream,
        tool: definition.name,
        details: { approvedHash: pinned, newHash: hash },
      });
      options.alert('an upstream changed an approved tool definition; the tool is blocked', {
        upstream,
        tool: definition.name,
        approvedHash: pinned,
        newHash: hash,
      });
      await options.onDefinitionChanged?.(upstream, definition.name);
    }
  };

  return {
    async observe(upstream, tools) {
      const hashed = tools.map((definition) => ({
        definition,
        hash: hashToolDefinition(definition),
      }));
      const anyUnapproved = hashed.some(
        ({ definition, hash }) => statusOf(`${upstream}.${definition.name}`, hash) !== 'approved',
      );
      // Something looks unapproved: an operator may just have approved it, so read again first.
      if (anyUnapproved) await readApprovals(false);
      const result = new Map<string, KnownTool>();
      for (const { definition, hash } of hashed) {
        const key = `${upstream}.${definition.name}`;
        // Calls arriving together on first use wait for one settlement, and see the tool only
        // once it is settled: never as "unapproved" while trust on first use is approving it.
        const settling = `${key}\u0000${hash}`;
        let settled = inFlight.get(settling);
        if (settled === undefined) {
          settled = settle(upstream, definition, hash).finally(() => inFlight.delete(settling));
          inFlight.set(settling, settled);
        }
        await settled;
        current.set(key, { definition, hash });
        const earlier = result.get(definition.name);
        // One name listed twice with two definitions: which one would the model read? Neither.
        const status =
          earlier !== undefined && earlier.hash !== hash ? 'changed' : statusOf(key, hash);
        result.set(definition.name, { definition, hash, status });
        if (status === 'changed') ambiguous.add(key);
        else ambiguous.delete(key);
      }
      return result;
    },
    async lookup(upstream, name) {
      const key = `${upstream}.${name}`;
      let seen = current.get(key);
      if (seen === undefined || statusOf(key, seen.hash) !== 'approved') await readApprovals(false);
      if (seen === undefined) {
        // Not listed through this process yet: fall back to the approved version in the store.
        if (!approved.has(key) && now() - approvedReadAt >= UNKNOWN_TOOL_REREAD_MS) {
          await readApprovals(true);
        }
        const hash = approved.get(key);
        if (hash === undefined) return { status: 'unknown' };
        const stored = (await store.toolDefinitions.list(upstream)).find(
          (row) => row.tool === name && row.hash === hash,
        );
        if (stored === undefined) return { status: 'unknown' };
        seen = { definition: JSON.parse(stored.definition) as ToolDefinition, hash };
        current.set(key, seen);
      }
      return { ...seen, status: ambiguous.has(key) ? 'changed' : statusOf(key, seen.hash) };
    },
  };
}
