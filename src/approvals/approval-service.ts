/**
 * Human approvals for sensitive calls. A call whose decision is `approval_required` is held:
 * `hold` stores an approval request, records `approval.requested` durably, announces it
 * (`notify`), and waits until approvers decide (`decide`, from the admin API or the CLI), the
 * timeout passes, or the client goes away. A granted approval releases exactly the call it was
 * given for, once.
 *
 * Rules `decide` applies, in one store transaction (so two approvers acting at the same moment
 * are serialised and the second sees the first's result):
 *   - only a pending request can be decided;
 *   - the requesting user, and the requesting agent (as a user id or as an agent the decision
 *     came through), can never approve their own call;
 *   - the approver must hold one of the request's approver roles (from the approver registry in
 *     config, never from the request);
 *   - one vote per approver; a deny refuses at once; approvals grant once `approvalsRequired`
 *     distinct approvers have approved (the two-person rule);
 *   - a decision after the timeout marks the request expired instead.
 *
 * Audit records (every step, all with the call's requestId, so `warden audit show` tells the
 * whole story): `approval.requested` (approval.approvers = the roles that may approve);
 * `approval.granted` for every approve vote, with details `{ votes, required, final }` —
 * `final: false` on the first vote of a two-person approval (the request stays pending),
 * `final: true` on the vote that grants; `approval.refused` for a deny (details `{ reason }`) or
 * when the client withdrew (details `{ withdrawn: true, by: 'client' }`); `approval.expired`.
 * Decisions name their approvers, time and the arguments hash in `approval`.
 *
 * Decisions made in this process wake the holder at once; decisions made elsewhere (the CLI,
 * another replica) are seen by reading the request every `pollIntervalMs`.
 */
import { randomUUID } from 'node:crypto';
import { identityFields } from '../audit/call-entry.js';
import type { ApprovalsConfig } from '../config/config.js';
import type { AuditEntry } from '../domain/audit-record.js';
import { canonicalJson } from '../domain/canonical-json.js';
import type { Decision } from '../domain/decision.js';
import { WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import type { ApprovalRequest, ApprovalStatus, ApprovalVote, Store } from '../store/types.js';
import { approvingVoters, isoTime } from './approval-view.js';
import { ApprovalError } from './errors.js';

const DEFAULT_PROGRESS_EVERY_MS = 5000;

/** A call that policy says needs approval, as the pipeline holds it. */
export interface HeldCall {
  readonly requestId: string;
  readonly traceId?: string;
  readonly identity: Identity;
  readonly upstream: string;
  readonly tool: string;
  /** The full, unredacted arguments: approvers see them, and the approval is bound to them. */
  readonly arguments: unknown;
  /** The audit log's (keyed) hash of the arguments, as on the call's other records. */
  readonly argumentsHash: string;
  /** effect `approval_required`, with `approval` and `policyVersion` set. */
  readonly decision: Decision;
  readonly toolDefinitionHash: string | undefined;
  /** Aborts when the client cancels or goes away: the request is then withdrawn. */
  readonly signal: AbortSignal;
  /** Called about every `progressEveryMs` while held (e.g. to send a progress notification). */
  readonly onWaiting?: (info: { approvalId: string; elapsedMs: number }) => void;
  /**
   * Decides the call again once it is granted, before the approval is used: resolves with what
   * the call is bound to now (the policy version and tool definition in force), or rejects with
   * a WardenError (WARDEN_APPROVAL_STALE, a revocation, …) when the call may no longer go. A
   * rejection invalidates the approval, and nothing is released.
   */
  readonly recheck: () => Promise<Pick<ApprovalBinding, 'policyVersion' | 'toolDefinitionHash'>>;
}

export interface ApprovedCall {
  /** The request as consumed (status granted, consumedAt set). */
  readonly approval: ApprovalRequest;
  /** Who approved, in voting order. */
  readonly approvers: string[];
}

/**
 * What an approval is bound to: a grant releases only a call with the same upstream, tool,
 * arguments (canonical JSON text) and hash, tool definition hash and policy version.
 */
export type ApprovalBinding = Pick<
  ApprovalRequest,
  'upstream' | 'tool' | 'arguments' | 'argumentsHash' | 'toolDefinitionHash' | 'policyVersion'
>;

/** Who decides. `roles` come from the approver registry (config), never from the request. */
export interface Approver {
  /** The approver's user id (a token's `sub`). */
  readonly user: string;
  readonly roles: readonly string[];
  /** The agents the decision came through (the admin API client, its delegation chain). */
  readonly via?: readonly string[];
}

export type Verdict = 'approve' | 'deny';

/** What one vote did: counted (still pending), granted, refused, or found the request expired. */
type Outcome = 'voted' | 'granted' | 'refused' | 'expired';

export interface ApprovalServiceOptions {
  readonly store: Pick<Store, 'approvals'>;
  readonly config: Pick<ApprovalsConfig, 'pollIntervalMs'>;
  readonly now: () => number;
  readonly newId?: () => string;
  /** Appends one audit record durably; rejects when it cannot. */
  readonly record: (entry: AuditEntry) => Promise<void>;
  /** Announces a new request (webhooks, console); must not throw. */
  readonly notify: (request: ApprovalRequest) => void;
  /** Tells approvers a request they may have seen can no longer be decided; must not throw. */
  readonly notifyInvalidated?: (request: ApprovalRequest, reason: string) => void;
  /** Told about failures that do not change the outcome (a late audit record, a poll). */
  readonly onError?: (error: unknown, message: string) => void;
  readonly progressEveryMs?: number;
  /** Stamped on the records `decide` makes (hold takes it from the caller's identity). */
  readonly environment?: string;
}

export interface ApprovalService {
  /**
   * Holds the call until it is approved (resolves), refused (WARDEN_APPROVAL_REFUSED), expired
   * (WARDEN_APPROVAL_EXPIRED) or withdrawn by the client (rejects with the signal's reason). When
   * the request cannot be stored or `approval.requested` cannot be recorded, rejects with
   * WARDEN_APPROVAL_UNAVAILABLE at once (fail closed).
   */
  hold(call: HeldCall): Promise<ApprovedCall>;
  /**
   * Uses a granted approval for the call it is bound to; succeeds once. Rejects with
   * WARDEN_APPROVAL_REFUSED when it is not granted, was used already, or is bound to anything else.
   */
  consume(id: string, binding: ApprovalBinding): Promise<ApprovalRequest>;
  /** One approver's vote; rejects with an ApprovalError when the rules refuse it. */
  decide(
    id: string,
    approver: Approver,
    verdict: Verdict,
    reason: string,
  ): Promise<ApprovalRequest>;
  /**
   * Invalidates every pending request `affected` picks (the policy or a tool's definition
   * changed): each is marked invalidated, recorded as `approval.invalidated` with `reason`,
   * announced to approvers, and its held call is refused with WARDEN_APPROVAL_STALE.
   * Resolves with the ids invalidated.
   */
  invalidatePending(
    affected: (request: ApprovalRequest) => boolean,
    reason: string,
  ): Promise<string[]>;
  /** Newest first (at most 100). */
  list(status?: ApprovalStatus): Promise<ApprovalRequest[]>;
  get(id: string): Promise<ApprovalRequest | undefined>;
}

export function createApprovalService(options: ApprovalServiceOptions): ApprovalService {
  const { store, now, record } = options;
  const newId = options.newId ?? randomUUID;
  const onError = options.onError ?? (() => undefined);
  const pollIntervalMs = options.config.pollIntervalMs;
  const progressEveryMs = options.progressEveryMs ?? DEFAULT_PROGRESS_EVERY_MS;
  /** Holders in this process, by approval id: woken at once by a decision made here. */
  const holders = new Map<string, Set<() => void>>();

  const wake = (id: string): void => {
    for (const holder of holders.get(id) ?? []) holder();
  };

  async function consume(id: string, binding: ApprovalBinding): Promise<ApprovalRequest> {
    const at = now();
    let consumed: ApprovalRequest | undefined;
    try {
      consumed = await store.approvals.update(id, (current) => {
        if (current.status !== 'granted') throw refusal(id, `the approval is ${current.status}`);
        if (current.consumedAt !== undefined) {
          throw refusal(id, `the approval was already used at ${isoTime(current.consumedAt)}`);
        }
        const mismatch = bindingMismatch(current, binding);
        if (mismatch === 'tool definition' || mismatch === 'policy version') {
          throw stale(id, `the ${mismatch} changed after the approval was asked for`);
        }
        if (mismatch !== undefined) {
          throw refusal(id, `the approval was given for a different ${mismatch}`);
        }
        return { ...current, consumedAt: at };
      });
    } catch (error) {
      if (error instanceof WardenError) throw error;
      throw unavailable(error);
    }
    if (consumed === undefined) throw refusal(id, 'no such approval request');
    return consumed;
  }

  async function hold(call: HeldCall): Promise<ApprovedCall> {
    call.signal.throwIfAborted();
    const request = newRequest(call);
    try {
      await store.approvals.create(request);
    } catch (error) {
      throw unavailable(error);
    }
    try {
      await record(requestedEntry(call, request));
    } catch (error) {
      // Nobody may approve a call that was refused: take the request off the pending list.
      await settle(request, 'withdrawn').catch((cause: unknown) =>
        onError(cause, `could not withdraw approval ${request.id} after its record failed`),
      );
      throw unavailable(error);
    }
    // A client gone already needs no approver: the wait below withdraws the request at once.
    if (!call.signal.aborted) {
      try {
        options.notify(request);
      } catch (error) {
        onError(error, `announcing approval ${request.id} failed`);
      }
    }
    return waitForDecision(call, request);
  }

  function newRequest(call: HeldCall): ApprovalRequest {
    const { decision, identity } = call;
    const requirement = decision.approval;
    if (decision.effect !== 'approval_required' || requirement === undefined) {
      throw new TypeError('hold() needs a decision with effect approval_required and its approval');
    }
    if (decision.policyVersion === undefined) {
      throw new TypeError('hold() needs the policyVersion the approval is bound to');
    }
    const createdAt = now();
    return {
      id: newId(),
      requestId: call.requestId,
      status: 'pending',
      createdAt,
      expiresAt: createdAt + requirement.timeoutMs,
      decidedAt: undefined,
      consumedAt: undefined,
      user: identity.user,
      agent: identity.agent,
      roles: identity.roles,
      model: identity.declaredModel,
      upstream: call.upstream,
      tool: call.tool,
      arguments: canonicalJson(call.arguments),
      argumentsHash: call.argumentsHash,
      toolDefinitionHash: call.toolDefinitionHash,
      policyVersion: decision.policyVersion,
      grants: requirement.grants,
      scopes: requirement.scopes,
      approverRoles: requirement.approverRoles,
      approvalsRequired: requirement.approvalsRequired,
      votes: [],
    };
  }

  async function waitForDecision(call: HeldCall, request: ApprovalRequest): Promise<ApprovedCall> {
    const alarm = createAlarm();
    const { id } = request;
    const registered = holders.get(id) ?? new Set();
    registered.add(alarm.ring);
    holders.set(id, registered);
    call.signal.addEventListener('abort', alarm.ring, { once: true });
    const progress =
      call.onWaiting === undefined
        ? undefined
        : setInterval(() => {
            try {
              call.onWaiting?.({ approvalId: id, elapsedMs: now() - request.createdAt });
            } catch (error) {
              onError(error, `the progress callback of approval ${id} failed`);
            }
          }, progressEveryMs);
    let failing = false;
    try {
      for (;;) {
        if (call.signal.aborted) return await withdraw(call, request);
        let current: ApprovalRequest | undefined = request;
        try {
          current = await store.approvals.get(id);
          failing = false;
        } catch (error) {
          // Keep waiting: the store may come back before the timeout, which still refuses.
          if (!failing) onError(error, `reading approval ${id} failed; still waiting`);
          failing = true;
        }
        if (current === undefined) throw unavailable(new Error(`approval ${id} vanished`));
        switch (current.status) {
          case 'granted':
            return await release(call, request);
          case 'invalidated':
            throw stale(id, 'the policy or the tool definition changed while it waited');
          case 'refused':
            throw refused(current);
          case 'expired':
            throw expired(id);
          case 'withdrawn':
            throw refusal(id, 'the approval request was withdrawn');
          case 'pending':
            if (now() >= current.expiresAt) {
              if (await expire(call, request)) throw expired(id);
              continue; // a decision won the race: read it
            }
        }
        await alarm.sleep(Math.min(pollIntervalMs, Math.max(0, request.expiresAt - now())));
      }
    } finally {
      if (progress !== undefined) clearInterval(progress);
      call.signal.removeEventListener('abort', alarm.ring);
      registered.delete(alarm.ring);
      if (registered.size === 0) holders.delete(id);
      alarm.cancel();
    }
  }

  /**
   * A granted request is decided again before its approval is used: the call goes only if the
   * rules in force now still lead to the same question the approver answered.
   */
  async function release(call: HeldCall, request: ApprovalRequest): Promise<ApprovedCall> {
    let now: Pick<ApprovalBinding, 'policyVersion' | 'toolDefinitionHash'>;
    try {
      now = await call.recheck();
    } catch (error) {
      const reason =
        error instanceof WardenError && typeof error.details?.['reason'] === 'string'
          ? error.details['reason']
          : error instanceof WardenError
            ? error.code
            : 'the call could not be decided again';
      await invalidate(request.id, reason, call).catch((cause: unknown) =>
        onError(cause, `could not mark approval ${request.id} invalidated`),
      );
      throw error;
    }
    let approval: ApprovalRequest;
    try {
      approval = await consume(request.id, { ...bindingOf(request), ...now });
    } catch (error) {
      if (error instanceof WardenError && error.code === 'WARDEN_APPROVAL_STALE') {
        const reason = String(error.details?.['reason'] ?? 'stale');
        await invalidate(request.id, reason, call).catch((cause: unknown) =>
          onError(cause, `could not mark approval ${request.id} invalidated`),
        );
      }
      throw error;
    }
    return { approval, approvers: approvingVoters(approval) };
  }

  /**
   * Marks a pending or granted-but-unused request invalidated and records why; undefined when
   * it was in neither state (decided, used, or gone).
   */
  async function invalidate(
    id: string,
    reason: string,
    call?: HeldCall,
  ): Promise<ApprovalRequest | undefined> {
    const at = now();
    let changed = false as boolean;
    const updated = await store.approvals.update(id, (current) => {
      changed =
        current.status === 'pending' ||
        (current.status === 'granted' && current.consumedAt === undefined);
      return changed ? { ...current, status: 'invalidated', decidedAt: at } : current;
    });
    if (!changed || updated === undefined) return undefined;
    await recordLate({
      ...(call === undefined
        ? requestEntryBase(updated, options.environment)
        : heldCallEntryBase(call, updated)),
      event: 'approval.invalidated',
      time: isoTime(at),
      approval: { id, argumentsHash: updated.argumentsHash },
      details: { reason },
    });
    try {
      options.notifyInvalidated?.(updated, reason);
    } catch (error) {
      onError(error, `announcing the invalidation of approval ${id} failed`);
    }
    wake(id);
    return updated;
  }

  async function invalidatePending(
    affected: (request: ApprovalRequest) => boolean,
    reason: string,
  ): Promise<string[]> {
    const pending = await store.approvals.list({ status: 'pending', limit: 1000 });
    const invalidated: string[] = [];
    for (const request of pending.filter(affected)) {
      if ((await invalidate(request.id, reason)) !== undefined) invalidated.push(request.id);
    }
    return invalidated;
  }

  /** Marks a still-pending request expired; false when a decision got there first. */
  async function expire(call: HeldCall, request: ApprovalRequest): Promise<boolean> {
    let settled: ApprovalRequest | undefined;
    try {
      settled = await settle(request, 'expired');
    } catch (error) {
      // The call is refused either way (fail closed); the request stays pending but unusable.
      onError(error, `could not mark approval ${request.id} expired`);
      return true;
    }
    if (settled === undefined) return false;
    await recordLate({
      ...heldCallEntryBase(call, request),
      event: 'approval.expired',
      time: isoTime(settled.decidedAt ?? now()),
      approval: { id: request.id, argumentsHash: request.argumentsHash },
    });
    return true;
  }

  async function withdraw(call: HeldCall, request: ApprovalRequest): Promise<never> {
    let settled: ApprovalRequest | undefined;
    try {
      settled = await settle(request, 'withdrawn');
    } catch (error) {
      onError(error, `could not mark approval ${request.id} withdrawn`);
    }
    if (settled !== undefined) {
      const decidedAt = isoTime(settled.decidedAt ?? now());
      await recordLate({
        ...heldCallEntryBase(call, request),
        event: 'approval.refused',
        time: decidedAt,
        approval: {
          id: request.id,
          approvers: [],
          decidedAt,
          argumentsHash: request.argumentsHash,
        },
        details: { withdrawn: true, by: 'client' },
      });
    }
    throw call.signal.reason;
  }

  /** Moves a pending request to `status`; undefined when it was not pending any more. */
  async function settle(
    request: ApprovalRequest,
    status: 'expired' | 'withdrawn',
  ): Promise<ApprovalRequest | undefined> {
    const at = now();
    let changed = false as boolean;
    const updated = await store.approvals.update(request.id, (current) => {
      changed = current.status === 'pending';
      return changed ? { ...current, status, decidedAt: at } : current;
    });
    return changed ? updated : undefined;
  }

  /** Records an event whose outcome stands whether or not it is recorded (the call is refused). */
  async function recordLate(entry: AuditEntry): Promise<void> {
    try {
      await record(entry);
    } catch (error) {
      onError(error, `could not record ${entry.event} for request ${entry.requestId ?? '?'}`);
    }
  }

  async function decide(
    id: string,
    approver: Approver,
    verdict: Verdict,
    reason: string,
  ): Promise<ApprovalRequest> {
    const at = now();
    let outcome = 'voted' as Outcome;
    let decided: ApprovalRequest | undefined;
    try {
      decided = await store.approvals.update(id, (current) => {
        checkVoter(current, approver);
        // Expired is checked after the rules, so only an eligible approver can mark it expired.
        if (at >= current.expiresAt) {
          outcome = 'expired';
          return { ...current, status: 'expired', decidedAt: at };
        }
        const vote: ApprovalVote = { approver: approver.user, decision: verdict, reason, at };
        const next = { ...current, votes: [...current.votes, vote] };
        if (verdict === 'deny') {
          outcome = 'refused';
          return { ...next, status: 'refused', decidedAt: at };
        }
        if (approvingVoters(next).length >= current.approvalsRequired) {
          outcome = 'granted';
          return { ...next, status: 'granted', decidedAt: at };
        }
        outcome = 'voted';
        return next;
      });
    } catch (error) {
      if (error instanceof ApprovalError) throw error;
      throw unavailable(error);
    }
    if (decided === undefined) {
      throw new ApprovalError('APPROVAL_NOT_FOUND', id, `no approval request has the id ${id}`);
    }
    try {
      await record(decisionEntry(decided, approver, outcome, reason, at));
    } catch (error) {
      onError(error, `could not record the decision on approval ${id}`);
      throw new WardenError(
        'WARDEN_AUDIT_UNAVAILABLE',
        'The decision was stored, but the audit log could not record it; operators are alerted.',
        { cause: error, details: { approvalId: id } },
      );
    } finally {
      // Woken after the record, so the log shows the decision before the call it releases.
      wake(id);
    }
    if (outcome === 'expired') {
      throw new ApprovalError(
        'APPROVAL_EXPIRED',
        id,
        `approval ${id} expired at ${isoTime(decided.expiresAt)} before this decision; the call was refused`,
      );
    }
    return decided;
  }

  function decisionEntry(
    request: ApprovalRequest,
    approver: Approver,
    outcome: Outcome,
    reason: string,
    at: number,
  ): AuditEntry {
    const base = { time: isoTime(at), ...requestEntryBase(request, options.environment) };
    const approval = (approvers: readonly string[]) => ({
      id: request.id,
      approvers,
      decidedAt: isoTime(at),
      argumentsHash: request.argumentsHash,
    });
    switch (outcome) {
      case 'expired':
        return {
          ...base,
          event: 'approval.expired',
          approval: { id: request.id, argumentsHash: request.argumentsHash },
          details: { noticedBy: approver.user },
        };
      case 'refused':
        return {
          ...base,
          event: 'approval.refused',
          approval: approval([approver.user]),
          details: { reason },
        };
      case 'voted':
      case 'granted': {
        const final = outcome === 'granted';
        const voters = approvingVoters(request);
        return {
          ...base,
          event: 'approval.granted',
          approval: approval(final ? voters : [approver.user]),
          details: {
            votes: voters.length,
            required: request.approvalsRequired,
            final,
            ...(reason !== '' && { reason }),
          },
        };
      }
    }
  }

  return {
    hold,
    consume,
    decide,
    invalidatePending,
    list: (status) => store.approvals.list(status === undefined ? {} : { status }),
    get: (id) => store.approvals.get(id),
  };
}

/** Throws the ApprovalError that refuses this vote, if any rule does. */
function checkVoter(request: ApprovalRequest, approver: Approver): void {
  const { id } = request;
  if (request.status !== 'pending') {
    const since = request.decidedAt === undefined ? '' : ` since ${isoTime(request.decidedAt)}`;
    const used = request.consumedAt === undefined ? '' : ', and the call was released';
    throw new ApprovalError(
      'APPROVAL_ALREADY_DECIDED',
      id,
      `approval ${id} is already ${request.status}${since}${used}`,
    );
  }
  const requesters = [request.user, request.agent].filter((who) => who !== undefined);
  const actors = [approver.user, ...(approver.via ?? [])];
  if (actors.some((actor) => requesters.some((requester) => sameId(actor, requester)))) {
    throw new ApprovalError(
      'APPROVAL_SELF_APPROVAL',
      id,
      `${approver.user} cannot decide approval ${id}: nobody approves a call they (or their agent) made`,
    );
  }
  if (!approver.roles.some((role) => request.approverRoles.includes(role))) {
    throw new ApprovalError(
      'APPROVAL_NOT_AN_APPROVER',
      id,
      `${approver.user} holds none of the roles that may decide approval ${id} (${request.approverRoles.join(', ') || 'none configured'})`,
    );
  }
  if (request.votes.some((vote) => sameId(vote.approver, approver.user))) {
    throw new ApprovalError(
      'APPROVAL_ALREADY_VOTED',
      id,
      `${approver.user} has already voted on approval ${id}; a second approval must come from someone else`,
    );
  }
}

/**
 * User ids compared for the separation-of-duties rules: letter case and surrounding space
 * ignored, so `Carol@example.com` cannot approve a call of `carol@example.com` or vote twice.
 */
function sameId(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/** What a stored request binds its approval to. */
export function bindingOf(request: ApprovalRequest): ApprovalBinding {
  return {
    upstream: request.upstream,
    tool: request.tool,
    arguments: request.arguments,
    argumentsHash: request.argumentsHash,
    toolDefinitionHash: request.toolDefinitionHash,
    policyVersion: request.policyVersion,
  };
}

/** What differs between an approval and the call presented for it, if anything. */
function bindingMismatch(approval: ApprovalRequest, call: ApprovalBinding): string | undefined {
  if (approval.upstream !== call.upstream || approval.tool !== call.tool) return 'tool';
  if (approval.arguments !== call.arguments || approval.argumentsHash !== call.argumentsHash) {
    return 'set of arguments';
  }
  if (approval.toolDefinitionHash !== call.toolDefinitionHash) return 'tool definition';
  if (approval.policyVersion !== call.policyVersion) return 'policy version';
  return undefined;
}

/** The facts every record of a held call shares. */
function heldCallEntryBase(call: HeldCall, request: ApprovalRequest) {
  return {
    requestId: call.requestId,
    ...(call.traceId !== undefined && { traceId: call.traceId }),
    ...identityFields(call.identity),
    upstream: request.upstream,
    tool: request.tool,
  };
}

/** The facts every record about a request shares, when the held call is not at hand. */
function requestEntryBase(request: ApprovalRequest, environment: string | undefined) {
  return {
    requestId: request.requestId,
    ...(environment !== undefined && { environment }),
    ...(request.user !== undefined && { user: request.user }),
    agent: request.agent,
    roles: request.roles,
    ...(request.model !== undefined && { model: request.model }),
    upstream: request.upstream,
    tool: request.tool,
  };
}

function requestedEntry(call: HeldCall, request: ApprovalRequest): AuditEntry {
  return {
    ...heldCallEntryBase(call, request),
    event: 'approval.requested',
    time: isoTime(request.createdAt),
    argumentsHash: request.argumentsHash,
    decision: call.decision,
    approval: {
      id: request.id,
      approvers: request.approverRoles,
      argumentsHash: request.argumentsHash,
    },
    details: {
      expiresAt: isoTime(request.expiresAt),
      approvalsRequired: request.approvalsRequired,
    },
  };
}

function unavailable(cause: unknown): WardenError {
  return new WardenError('WARDEN_APPROVAL_UNAVAILABLE', undefined, { cause });
}

function refusal(approvalId: string, reason: string): WardenError {
  return new WardenError('WARDEN_APPROVAL_REFUSED', `The call was refused: ${reason}.`, {
    details: { approvalId, reason },
  });
}

function refused(request: ApprovalRequest): WardenError {
  const deny = request.votes.findLast((vote) => vote.decision === 'deny');
  const reason = deny?.reason || 'an approver refused the call';
  return new WardenError('WARDEN_APPROVAL_REFUSED', `An approver refused this call: ${reason}`, {
    details: { approvalId: request.id, reason },
  });
}

function stale(approvalId: string, reason: string): WardenError {
  return new WardenError(
    'WARDEN_APPROVAL_STALE',
    `The call was approved but not forwarded: ${reason}. Call again to be decided under the rules in force now.`,
    { details: { approvalId, reason } },
  );
}

function expired(approvalId: string): WardenError {
  return new WardenError('WARDEN_APPROVAL_EXPIRED', undefined, { details: { approvalId } });
}

/** A sleep that a decision (or the client going away) can cut short. */
function createAlarm(): {
  ring: () => void;
  sleep: (ms: number) => Promise<void>;
  cancel: () => void;
} {
  let rung = false;
  let end: (() => void) | undefined;
  return {
    ring() {
      rung = true;
      end?.();
    },
    sleep(ms) {
      if (rung) {
        rung = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => end?.(), ms);
        end = () => {
          clearTimeout(timer);
          end = undefined;
          rung = false;
          resolve();
        };
      });
    },
    cancel() {
      end?.();
    },
  };
}
