/**
 * The upstream tool definitions Warden has pinned against rug pulls, every stored version with
 * its approval status: in force, approved earlier, pending (seen after the version in force and
 * never approved: a change waiting for an operator), or not approved.
 */
import type { StoredToolDefinition, ToolDefinitionRepository } from '../store/types.js';

export type { StoredToolDefinition };

export type ToolVersionStatus = 'in force' | 'approved earlier' | 'pending' | 'not approved';

export interface ToolVersion extends StoredToolDefinition {
  readonly status: ToolVersionStatus;
}

export interface ListToolDefinitionsDependencies {
  readonly toolDefinitions: Pick<ToolDefinitionRepository, 'list' | 'approvedHashes'>;
}

/** Every stored version (of one upstream's tools, given `upstream`), by upstream, tool, first seen. */
export async function listToolDefinitions(
  dependencies: ListToolDefinitionsDependencies,
  upstream?: string,
): Promise<ToolVersion[]> {
  const versions = await dependencies.toolDefinitions.list(upstream);
  const inForce = await dependencies.toolDefinitions.approvedHashes();
  return versions.map((version) => ({
    ...version,
    status: statusOf(version, versions, inForce),
  }));
}

function statusOf(
  version: StoredToolDefinition,
  versions: readonly StoredToolDefinition[],
  inForce: ReadonlyMap<string, string>,
): ToolVersionStatus {
  const key = `${version.upstream}.${version.tool}`;
  if (inForce.get(key) === version.hash) return 'in force';
  if (version.approvedAt !== undefined) return 'approved earlier';
  const current = versions.find(
    (other) => `${other.upstream}.${other.tool}` === key && other.hash === inForce.get(key),
  );
  return isPendingVersion(version, current) ? 'pending' : 'not approved';
}

/** Never approved and seen after the version in force: a change waiting for an operator. */
export function isPendingVersion(
  version: StoredToolDefinition,
  current: StoredToolDefinition | undefined,
): boolean {
  return (
    version.approvedAt === undefined &&
    (current === undefined || version.firstSeenAt >= current.firstSeenAt)
  );
}
