/**
 * `warden tools list|approve`: the upstream tool definitions Warden has pinned against rug pulls.
 * A tool whose definition changed after approval is blocked until an operator approves the new
 * version here; before approving, the command shows what changed (description, input
 * properties, other pinned fields). `approve` exits 1 when there is nothing to approve.
 */
import type { Command } from 'commander';
import { recordOnce } from '../audit/record-once.js';
import { loadConfigFile } from '../config/load.js';
import { canonicalJson } from '../domain/canonical-json.js';
import type { StoredToolDefinition } from '../store/types.js';
import { formatTable } from './format-table.js';
import {
  CONFIG_OPTION,
  currentUser,
  exitWithUsageCode,
  runCliAction,
  UsageError,
  withStore,
} from './operator.js';
import { parseTarget } from './policy.js';
import { isRecord } from '../domain/json-object.js';

const HASH_SHOWN = 12;

interface ApproveOptions {
  readonly config: string;
  readonly hash?: string;
  readonly by?: string;
}

type VersionStatus = 'in force' | 'approved earlier' | 'pending' | 'not approved';

export function registerToolsCommand(program: Command): void {
  const tools = program
    .command('tools')
    .description('pinned upstream tool definitions: list versions, approve a changed one')
    .exitOverride(exitWithUsageCode);

  tools
    .command('list')
    .description('every stored version of every tool, with its approval status')
    .option(...CONFIG_OPTION)
    .option('--upstream <name>', 'only this upstream')
    .action((options: { config: string; upstream?: string }) =>
      runCliAction(async () => {
        const config = loadConfigFile(options.config);
        await withStore(config, async (store) => {
          const versions = await store.toolDefinitions.list(options.upstream);
          if (versions.length === 0) {
            process.stdout.write(
              'no tool definitions stored yet: they are recorded when an upstream lists its tools\n',
            );
            return;
          }
          const inForce = await store.toolDefinitions.approvedHashes();
          const rows = versions.map((version) => [
            `${version.upstream}.${version.tool}`,
            version.hash.slice(0, HASH_SHOWN),
            statusOf(version, versions, inForce),
            new Date(version.firstSeenAt).toISOString(),
            version.approvedBy ?? '-',
          ]);
          process.stdout.write(
            formatTable([['TOOL', 'VERSION', 'STATUS', 'FIRST SEEN', 'APPROVED BY'], ...rows]),
          );
        });
      }),
    );

  tools
    .command('approve')
    .description(
      'approve the newest pending version of a tool (or the one with --hash); exit 1 when nothing is pending',
    )
    .argument('<tool>', 'upstream.tool')
    .option(...CONFIG_OPTION)
    .option('--hash <hash>', 'the version to approve (a prefix is enough)')
    .option('--by <name>', 'who (default: the OS user)')
    .action((tool: string, options: ApproveOptions) =>
      runCliAction(() => approveCommand(tool, options)),
    );
}

async function approveCommand(text: string, options: ApproveOptions): Promise<void> {
  const config = loadConfigFile(options.config);
  const target = parseTarget('tool', text, config);
  const by = options.by ?? currentUser();
  await withStore(config, async (store) => {
    const all = await store.toolDefinitions.list(target.upstream);
    const versions = all.filter((version) => version.tool === target.name);
    const inForce = await store.toolDefinitions.approvedHashes();
    const current = versions.find((version) => version.hash === inForce.get(target.label));
    const chosen = chooseVersion(versions, current, options.hash);
    if (typeof chosen === 'string') {
      process.stderr.write(`warden: nothing to approve for ${target.label}: ${chosen}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(describeChange(target.label, chosen, current));
    const at = Date.now();
    if (!(await store.toolDefinitions.approve(target.upstream, target.name, chosen.hash, by, at))) {
      process.stderr.write(`warden: version ${chosen.hash} of ${target.label} is not stored\n`);
      process.exitCode = 1;
      return;
    }
    await recordOnce(store.audit, {
      event: 'tool.approved',
      time: new Date(at).toISOString(),
      environment: config.environment,
      upstream: target.upstream,
      tool: target.name,
      details: { hash: chosen.hash, approvedBy: by },
    });
    process.stdout.write(
      `approved ${target.label} version ${chosen.hash.slice(0, HASH_SHOWN)}; a running gateway uses it within seconds\n`,
    );
  });
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
      throw new UsageError(`--hash ${hash} matches ${matches.length} versions; give more of it`);
    }
    const [match] = matches;
    if (match === undefined) return `no stored version has hash ${hash}`;
    if (match === current) return `version ${hash} is already the one in force`;
    return match;
  }
  const pending = versions.filter((version) => isPending(version, current));
  return pending[pending.length - 1] ?? 'no version is pending';
}

function statusOf(
  version: StoredToolDefinition,
  versions: readonly StoredToolDefinition[],
  inForce: ReadonlyMap<string, string>,
): VersionStatus {
  const key = `${version.upstream}.${version.tool}`;
  if (inForce.get(key) === version.hash) return 'in force';
  if (version.approvedAt !== undefined) return 'approved earlier';
  const current = versions.find(
    (other) => `${other.upstream}.${other.tool}` === key && other.hash === inForce.get(key),
  );
  return isPending(version, current) ? 'pending' : 'not approved';
}

/** Never approved and seen after the version in force: a change waiting for an operator. */
function isPending(
  version: StoredToolDefinition,
  current: StoredToolDefinition | undefined,
): boolean {
  return (
    version.approvedAt === undefined &&
    (current === undefined || version.firstSeenAt >= current.firstSeenAt)
  );
}

interface PinnedFields {
  readonly description: string | undefined;
  readonly properties: readonly string[];
  readonly fields: ReadonlyMap<string, string>;
}

/** What an operator should look at before approving: the change from the version in force. */
function describeChange(
  label: string,
  chosen: StoredToolDefinition,
  current: StoredToolDefinition | undefined,
): string {
  const next = readPinnedFields(chosen.definition);
  const lines = [
    `${label}: approving version ${chosen.hash.slice(0, HASH_SHOWN)} (first seen ${new Date(chosen.firstSeenAt).toISOString()})`,
  ];
  if (current === undefined) {
    lines.push(
      '  no version is approved yet',
      `  description: ${next.description ?? '(none)'}`,
      `  input properties: ${next.properties.join(', ') || '(none)'}`,
    );
    return `${lines.join('\n')}\n`;
  }
  const before = readPinnedFields(current.definition);
  lines.push(
    `  compared with the version in force, ${current.hash.slice(0, HASH_SHOWN)} (approved by ${current.approvedBy ?? '?'}):`,
  );
  if (next.description === before.description) {
    lines.push('  description: unchanged');
  } else {
    lines.push(
      '  description changed',
      `    was: ${before.description ?? '(none)'}`,
      `    now: ${next.description ?? '(none)'}`,
    );
  }
  const added = next.properties.filter((name) => !before.properties.includes(name));
  const removed = before.properties.filter((name) => !next.properties.includes(name));
  const delta = [
    ...(added.length > 0 ? [`added: ${added.join(', ')}`] : []),
    ...(removed.length > 0 ? [`removed: ${removed.join(', ')}`] : []),
  ];
  lines.push(
    `  input properties: ${next.properties.join(', ') || '(none)'}${delta.length > 0 ? ` (${delta.join('; ')})` : ' (same names)'}`,
  );
  const changed = [...new Set([...next.fields.keys(), ...before.fields.keys()])].filter(
    (field) => next.fields.get(field) !== before.fields.get(field),
  );
  if (changed.length > 0) lines.push(`  also changed: ${changed.sort().join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** Reads a stored definition (canonical JSON of the pinned fields) for the change summary. */
function readPinnedFields(text: string): PinnedFields {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    value = undefined;
  }
  const definition = isRecord(value) ? value : {};
  const schema = definition['inputSchema'];
  const properties = isRecord(schema) && isRecord(schema['properties']) ? schema['properties'] : {};
  const fields = new Map<string, string>();
  // Description and input properties are shown above; the rest is named when it changed.
  for (const [field, fieldValue] of Object.entries(definition)) {
    if (field !== 'description' && field !== 'name') fields.set(field, canonicalJson(fieldValue));
  }
  return {
    description:
      typeof definition['description'] === 'string' ? definition['description'] : undefined,
    properties: Object.keys(properties).sort(),
    fields,
  };
}
