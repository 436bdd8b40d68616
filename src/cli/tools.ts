/**
 * `warden tools list|approve`: the upstream tool definitions Warden has pinned against rug pulls.
 * A tool whose definition changed after approval is blocked until an operator approves the new
 * version here; before approving, the command shows what changed (description, input
 * properties, other pinned fields). `approve` exits 1 when there is nothing to approve.
 */
import type { Command } from 'commander';
import { canonicalJson } from '../domain/canonical-json.js';
import { isRecord } from '../domain/json-object.js';
import type { StoredToolDefinition } from '../policy/list-tool-definitions.js';
import { formatTable } from './format-table.js';
import {
  CONFIG_OPTION,
  currentUser,
  exitWithUsageCode,
  runCliAction,
  withSession,
} from './operator.js';

const HASH_SHOWN = 12;

interface ApproveOptions {
  readonly config: string;
  readonly hash?: string;
  readonly by?: string;
}

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
        const versions = await withSession(options.config, (session) =>
          session.policy.listToolDefinitions(options.upstream),
        );
        if (versions.length === 0) {
          process.stdout.write(
            'no tool definitions stored yet: they are recorded when an upstream lists its tools\n',
          );
          return;
        }
        const rows = versions.map((version) => [
          `${version.upstream}.${version.tool}`,
          version.hash.slice(0, HASH_SHOWN),
          version.status,
          new Date(version.firstSeenAt).toISOString(),
          version.approvedBy ?? '-',
        ]);
        process.stdout.write(
          formatTable([['TOOL', 'VERSION', 'STATUS', 'FIRST SEEN', 'APPROVED BY'], ...rows]),
        );
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

async function approveCommand(tool: string, options: ApproveOptions): Promise<void> {
  const approval = await withSession(options.config, (session) =>
    session.policy.approveToolDefinition({
      tool,
      ...(options.hash !== undefined && { hash: options.hash }),
      by: options.by ?? currentUser(),
    }),
  );
  process.stdout.write(describeChange(approval.label, approval.approved, approval.previous));
  process.stdout.write(
    `approved ${approval.label} version ${approval.approved.hash.slice(0, HASH_SHOWN)}; a running gateway uses it within seconds\n`,
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
