/**
 * `warden approvals list|show|approve|deny --config FILE`: the approvals inbox on the operator's
 * host, against the store the gateway uses. A decision made here releases (or refuses) the call
 * a running gateway holds within its poll interval, and is recorded in the audit log on the
 * CLI's own stream, with the OS user and host that named the approver. Exit codes: 0 done,
 * 1 refused by the approval rules (already decided, self-approval, not an approver, CLI
 * decisions turned off, …) or not found, 2 a usage or configuration mistake.
 */
import { hostname } from 'node:os';
import type { Command } from 'commander';
import {
  APPROVAL_STATUSES,
  isoTime as iso,
  parseArguments,
  toApprovalView,
  type ApprovalRequest,
  type ApprovalStatus,
} from '../approvals/approval-view.js';
import { ApprovalError } from '../approvals/errors.js';
import { summarizeArguments } from '../approvals/summarize-arguments.js';
import { toTerminalText } from '../audit/terminal-text.js';
import type { ApprovalsConfig } from '../config/config.js';
import { loadConfigFile } from '../config/load.js';
import {
  CONFIG_OPTION,
  currentUser,
  exitWithUsageCode,
  runCliAction,
  UsageError,
  withSession,
} from './operator.js';
import { formatTable } from './format-table.js';

const MAX_REASON_LENGTH = 1000;

const APPROVER_HELP = `
--as names the approver: it must be a user id under approvals.approvers in the config, and the
decision is checked against that entry's roles. This command is for operators on the gateway's
host, who can read the store anyway; the admin HTTP API (POST /admin/approvals/ID/approve|deny)
never takes the approver from the request: it is the user of the caller's token. The decision's
audit record names the OS user and host that ran this command. With approvals.cli_decisions:
false in the config, this command refuses and only the admin API decides.
`;

interface ListOptions {
  readonly config: string;
  readonly status?: string;
  readonly json?: boolean;
}

interface ShowOptions {
  readonly config: string;
  readonly json?: boolean;
}

interface DecideOptions {
  readonly config: string;
  readonly as: string;
  readonly reason?: string;
}

export function registerApprovalsCommand(program: Command): void {
  const approvals = program
    .command('approvals')
    .description('list, inspect, approve and deny calls held for human approval')
    // Usage mistakes exit 2 (1 means the approval rules refused); subcommands inherit this.
    .exitOverride(exitWithUsageCode);

  approvals
    .command('list')
    .description(
      'list approval requests, newest first (at most 100): who asked, the tool and its key arguments (approvals.summaries)',
    )
    .option(...CONFIG_OPTION)
    .option('--status <status>', `only requests in this status (${APPROVAL_STATUSES.join(', ')})`)
    .option('--json', 'print the requests as JSON, one per line')
    .action((options: ListOptions) =>
      runCliAction(async () => {
        const status = parseStatus(options.status);
        const config = loadConfigFile(options.config);
        const requests = await withSession(config, (session) => session.approvals.list(status));
        if (options.json) {
          for (const request of requests) {
            process.stdout.write(`${JSON.stringify(toApprovalView(request))}\n`);
          }
          return;
        }
        if (requests.length === 0) {
          process.stdout.write(`no ${status === undefined ? '' : `${status} `}approval requests\n`);
          return;
        }
        process.stdout.write(formatRequests(requests, config.approvals.summaries));
      }),
    );

  approvals
    .command('show')
    .description('show everything about one request: the call, its full arguments, the votes')
    .argument('<id>', 'the approval id')
    .option(...CONFIG_OPTION)
    .option('--json', 'print the request as JSON')
    .action((id: string, options: ShowOptions) =>
      runCliAction(async () => {
        const request = await withSession(options.config, (session) => session.approvals.get(id));
        if (request === undefined) {
          throw new ApprovalError('APPROVAL_NOT_FOUND', id, `no approval request has the id ${id}`);
        }
        process.stdout.write(
          options.json
            ? `${JSON.stringify(toApprovalView(request), null, 2)}\n`
            : describeRequest(request),
        );
      }),
    );

  approvals
    .command('approve')
    .description('approve a held call as a configured approver')
    .argument('<id>', 'the approval id')
    .option(...CONFIG_OPTION)
    .requiredOption('--as <user>', 'your user id, as configured under approvals.approvers')
    .option('--reason <text>', 'why, for the audit trail', '')
    .addHelpText('after', APPROVER_HELP)
    .action((id: string, options: DecideOptions) =>
      runCliAction(() => decideCommand(id, options, 'approve')),
    );

  approvals
    .command('deny')
    .description('refuse a held call as a configured approver; the caller is told the reason')
    .argument('<id>', 'the approval id')
    .option(...CONFIG_OPTION)
    .requiredOption('--as <user>', 'your user id, as configured under approvals.approvers')
    .requiredOption('--reason <text>', 'why (required; sent to the caller and recorded)')
    .addHelpText('after', APPROVER_HELP)
    .action((id: string, options: DecideOptions) =>
      runCliAction(() => decideCommand(id, options, 'deny')),
    );
}

async function decideCommand(
  id: string,
  options: DecideOptions,
  verdict: 'approve' | 'deny',
): Promise<void> {
  const reason = (options.reason ?? '').trim();
  if (verdict === 'deny' && reason === '') throw new UsageError('--reason must say why');
  if (reason.length > MAX_REASON_LENGTH) {
    throw new UsageError(`--reason is longer than ${MAX_REASON_LENGTH} characters`);
  }
  const config = loadConfigFile(options.config);
  const approver = config.approvals.approvers.get(options.as);
  if (approver === undefined) {
    throw new UsageError(
      `--as "${options.as}" is not an approver: add it under approvals.approvers in ${config.source}`,
    );
  }
  // The approver is a claim made on this host: the decision records who made it, and where.
  const assertedBy = { osUser: currentUser(), host: hostname() };
  const decided = await withSession(config, (session) =>
    session.approvals.decide(
      id,
      { user: approver.user, roles: approver.roles, assertedBy },
      verdict,
      reason,
    ),
  );
  process.stdout.write(`${describeOutcome(decided, approver.user, verdict)}\n`);
}

function describeOutcome(request: ApprovalRequest, user: string, verdict: string): string {
  if (request.status === 'granted')
    return `approval ${request.id} granted; the held call is released`;
  if (request.status === 'refused')
    return `approval ${request.id} refused; the held call is refused`;
  const approvals = request.votes.filter((vote) => vote.decision === 'approve').length;
  return `${user} ${verdict}d approval ${request.id}: ${approvals} of ${request.approvalsRequired} approvals; still pending`;
}

function parseStatus(value: string | undefined): ApprovalStatus | undefined {
  if (value === undefined) return undefined;
  if (!APPROVAL_STATUSES.includes(value as ApprovalStatus)) {
    throw new UsageError(`--status must be one of ${APPROVAL_STATUSES.join(', ')}`);
  }
  return value as ApprovalStatus;
}

/** One row a request, for `list`; every cell made safe for a terminal. */
function formatRequests(
  requests: readonly ApprovalRequest[],
  summaries: ApprovalsConfig['summaries'],
): string {
  const rows = [
    ['ID', 'STATUS', 'CREATED', 'EXPIRES', 'AGENT', 'USER', 'TOOL', 'VOTES', 'ARGUMENTS'],
    ...requests.map((request) => [
      request.id,
      request.status,
      iso(request.createdAt),
      iso(request.expiresAt),
      request.agent,
      request.user ?? '-',
      `${request.upstream}.${request.tool}`,
      `${request.votes.filter((vote) => vote.decision === 'approve').length}/${request.approvalsRequired}`,
      summarizeArguments(request.arguments, summaries.get(`${request.upstream}.${request.tool}`)),
    ]),
  ];
  return formatTable(rows.map((row) => row.map(toTerminalText)));
}

/** Every fact of a request, for an approver deciding on it. */
function describeRequest(request: ApprovalRequest): string {
  const approvals = request.votes.filter((vote) => vote.decision === 'approve').length;
  const facts: [string, string][] = [
    ['approval', request.id],
    ['status', `${request.status} (${approvals} of ${request.approvalsRequired} approvals)`],
    ['request', request.requestId],
    ['created', iso(request.createdAt)],
    ['expires', iso(request.expiresAt)],
    ['decided', request.decidedAt === undefined ? '-' : iso(request.decidedAt)],
    ['released', request.consumedAt === undefined ? '-' : iso(request.consumedAt)],
    ['user', request.user ?? '-'],
    ['agent', request.agent],
    ['roles', request.roles.join(', ') || '-'],
    ['model', request.model === undefined ? '-' : `${request.model} (declared)`],
    ['tool', `${request.upstream}.${request.tool}`],
    ['approvers', `any holder of: ${request.approverRoles.join(', ') || '(none)'}`],
    ['grants', request.grants.join(', ') || '-'],
    ['scopes', request.scopes.join(', ') || '-'],
    ['policy', request.policyVersion],
    ['tool def', request.toolDefinitionHash ?? '-'],
    ['args hash', request.argumentsHash],
  ];
  const lines = facts.map(([name, value]) => `${name.padEnd(10)} ${toTerminalText(value)}`);
  lines.push('arguments:');
  for (const line of JSON.stringify(parseArguments(request.arguments), null, 2).split('\n')) {
    lines.push(`  ${toTerminalText(line)}`);
  }
  lines.push(request.votes.length === 0 ? 'votes:     none yet' : 'votes:');
  for (const vote of request.votes) {
    const reason = vote.reason === '' ? '' : `: ${vote.reason}`;
    lines.push(`  ${iso(vote.at)} ${toTerminalText(`${vote.approver} ${vote.decision}${reason}`)}`);
  }
  return `${lines.join('\n')}\n`;
}
