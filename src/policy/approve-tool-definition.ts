/**
 * Approves a version of an upstream tool's definition, and records `tool.approved`. A tool whose
 * definition changed after approval is blocked until an operator approves the new version; a
 * running gateway uses the approved version within seconds.
 */
import { OperationError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { Config } from '../config/config.js';
import type { StoredToolDefinition, ToolDefinitionRepository } from '../store/types.js';
import { isPendingVersion } from './list-tool-definitions.js';
import { parsePolicyTarget } from './policy-target.js';

export interface ApproveToolDefinitionRequest {
  /** `upstream.tool`. */
  readonly tool: string;
  /** The version to approve (a prefix is enough); the newest pending one when absent. */
  readonly hash?: string;
  readonly by: string;
}

export interface ApproveToolDefinitionDependencies extends OperationContext {
  readonly config: Pick<Config, 'upstreams'>;
  readonly toolDefinitions: Pick<ToolDefinitionRepository, 'list' | 'approvedHashes' | 'approve'>;
}

export interface ToolApproval {
  /** `upstream.tool`. */
  readonly label: string;
  /** The version now in force. */
  readonly approved: StoredToolDefinition;
  /** The version in force before, if any: what an operator compares the approved one with. */
  readonly previous: StoredToolDefinition | undefined;
}

/**
 * Approves the version and puts it in force. Throws OperationError: OPERATION_INVALID for a tool
 * not of a configured upstream or a hash prefix matching several versions; OPERATION_NOT_FOUND
 * when there is nothing to approve (no definition stored, no pending version, no version with
 * that hash, or that version is in force already).
 */
export async function approveToolDefinition(
  dependencies: ApproveToolDefinitionDependencies,
  request: ApproveToolDefinitionRequest,
): Promise<ToolApproval> {
  const target = parsePolicyTarget('tool', request.tool, dependencies.config);
  const { toolDefinitions } = dependencies;
  const versions = (await toolDefinitions.list(target.upstream)).filter(
    (version) => version.tool === target.name,
  );
  const inForce = await toolDefinitions.approvedHashes();
  const previous = versions.find((version) => version.hash === inForce.get(target.label));
  const chosen = chooseVersion(versions, previous, request.hash);
  if (typeof chosen === 'string') {
    throw new OperationError(
      'OPERATION_NOT_FOUND',
      `nothing to approve for ${target.label}: ${chosen}`,
    );
  }
  const at = dependencies.now();
  if (!(await toolDefinitions.approve(target.upstream, target.name, chosen.hash, request.by, at))) {
    throw new OperationError(
      'OPERATION_NOT_FOUND',
      `version ${chosen.hash} of ${target.label} is not stored`,
    );
  }
  await dependencies.record({
    event: 'tool.approved',
    time: new Date(at).toISOString(),
    environment: dependencies.environment,
    upstream: target.upstream,
    tool: target.name,
    details: { hash: chosen.hash, approvedBy: request.by },
  });
  return {
    label: target.label,
    approved: { ...chosen, approvedAt: at, approvedBy: request.by },
    previous,
  };
}

/** The version to approve, or why there is none. */
function chooseVersion(
  versions: readonly StoredToolDefinition[],
  current: StoredToolDefinition | undefined,
  hash: string | undefined,
): StoredToolDefinition | string {
  if (versions.length === 0) return 'no definition of it is stored';
  if (hash !== undefined) {
    const wanted = hash.toLowerCase();
    const matches = versions.filter((version) => version.hash.startsWith(wanted));
    if (matches.length > 1) {
      throw new OperationError(
        'OPERATION_INVALID',
        `the hash ${hash} matches ${matches.length} versions; give more of it`,
      );
    }
    const [match] = matches;
    if (match === undefined) return `no stored version has hash ${hash}`;
    if (match === current) return `version ${hash} is already the one in force`;
    return match;
  }
  const pending = versions.filter((version) => isPendingVersion(version, current));
  return pending[pending.length - 1] ?? 'no version is pending';
}
