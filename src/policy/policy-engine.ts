/**
 * The policy engine: grants and hand-written rules compiled to Cedar, validated against the
 * generated schema once at load, and evaluated per request by Cedar. Default deny, forbid beats
 * permit, and a policy that errors never allows.
 *
 * Before Cedar, two refusals keep the policy from judging a value the upstream reads otherwise
 * (normalise-uri.ts, normalise-text.ts): a resource URI is judged in its normal form, and one that
 * stays ambiguous is refused (`warden.resource_uri`); a call whose compared text argument carries
 * edge whitespace, control, invisible or format characters is refused (`warden.suspicious_text`)
 * unless its scopes mark it `text: raw`. Neither is softened by monitor mode.
 *
 * Cedar evaluates every policy of a set, so the set is sliced by target: a call to
 * payments.issue_payment is decided by the grants that can match that tool (exact and wildcard)
 * plus every hand-written rule. Slices are prepared once, on first use, and shared by all calls
 * to that target; a tool no grant names shares its upstream's slice, so unknown names cannot grow
 * the cache.
 */
import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { AuthorizationAnswer, EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { GrantConfig, PolicyConfig } from '../config/policy-config.js';
import type { Decision } from '../domain/decision.js';
import type { ErrorCode } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import { FactRegistry, toDecimalText, type ArgumentFact } from './cedar-expressions.js';
import { loadCedarFiles, type HandWrittenPolicy } from './cedar-files.js';
import { PolicyLoadError } from './policy-load-error.js';
import {
  buildCedarSchema,
  comparedArgumentPaths,
  NAMESPACE,
  type PolicyAction,
} from './cedar-schema.js';
import {
  BREAKGLASS_POLICY,
  compileGrant,
  grantAction,
  VISIBILITY_SUFFIX,
  type CompiledGrant,
  type CompiledPolicy,
  type GrantCheck,
} from './compile-grants.js';
import { describeCheck } from './describe-check.js';
import { isRecord } from '../domain/json-object.js';
import { findSuspiciousText, normaliseText } from './normalise-text.js';
import { normaliseResourceUri, refuseResourceUri, RESOURCE_URI_POLICY } from './normalise-uri.js';

/** The id under which a refusal of suspicious argument text is recorded in a decision's policies. */
export const SUSPICIOUS_TEXT_POLICY = 'warden.suspicious_text';

/**
 * The specific error code for a denial that refused the request's input before any grant was
 * consulted (an ambiguous resource URI, suspicious argument text); undefined for other decisions.
 */
export function refusalCodeOf(decision: Decision): ErrorCode | undefined {
  if (decision.effect !== 'deny') return undefined;
  if (decision.policies.includes(SUSPICIOUS_TEXT_POLICY)) return 'WARDEN_ARGUMENT_SUSPICIOUS_TEXT';
  if (decision.policies.includes(RESOURCE_URI_POLICY)) return 'WARDEN_RESOURCE_URI_AMBIGUOUS';
  return undefined;
}

/** One question for the engine. */
export interface PolicyRequest {
  readonly action: PolicyAction;
  readonly identity: Pick<
    Identity,
    'agent' | 'user' | 'roles' | 'tenant' | 'environment' | 'declaredModel'
  >;
  readonly upstream: string;
  /** The tool or prompt name, or the resource URI. */
  readonly name: string;
  /** call_tool only: the call's arguments. */
  readonly arguments?: unknown;
  readonly now: number;
  /** Current policy states (operator-set values over the configured defaults). */
  readonly states: ReadonlyMap<string, boolean>;
  /** `upstream.tool` targets with an active break-glass grant for this agent. */
  readonly breakglass: ReadonlySet<string>;
}

/** A grant that could have allowed the request, and how each of its checks fared. */
export interface GrantExplanation {
  readonly grant: string;
  readonly role: string;
  readonly passed: readonly string[];
  readonly failed: readonly string[];
}

export interface Explanation {
  readonly decision: Decision;
  readonly grants: readonly GrantExplanation[];
}

export interface PolicyEngine {
  /** SHA-256 of the compiled policy set and schema: the version approvals are bound to. */
  readonly version: string;
  /** How many policies were compiled (grants, visibility permits, hand-written rules). */
  readonly policyCount: number;
  decide(request: PolicyRequest): Decision;
  /** The decision plus, for every grant that could apply, which checks passed and failed. */
  explain(request: PolicyRequest): Explanation;
}

interface Slice {
  readonly setId: string;
  readonly grants: readonly CompiledGrant[];
  readonly facts: readonly ArgumentFact[];
  /** Argument paths whose presence a constraint checks. */
  readonly presencePaths: readonly string[];
  /** Argument paths whose values reach Cedar, with the type they are compared as. */
  readonly valuePaths: readonly { path: string; type: 'number' | 'string' | 'boolean' }[];
  /** Argument paths whose text is refused when suspicious (compared by a grant, not `text: raw`). */
  readonly textPaths: readonly string[];
  /** Every argument path the slice reads (values, presence, facts): none may have a look-alike key. */
  readonly keyPaths: readonly string[];
  /**
   * The context attributes the slice's policies read (undefined: all). Cedar's per-call cost
   * grows with the request it is handed, so a call carries only what its slice can look at.
   */
  readonly attributes: ReadonlySet<string> | undefined;
  /** Whether a policy of the slice asks which upstream a resource belongs to. */
  readonly needsResourceEntity: boolean;
  explainSetId?: string;
}

interface LoadedPolicy {
  readonly compiled: CompiledGrant[];
  readonly handWritten: HandWrittenPolicy[];
  readonly facts: FactRegistry;
  /**
   * With hand-written rules: every argument path any scope compares, and every path whose presence
   * one checks. A hand-written forbid reads `context.arguments` whatever the caller's grants
   * constrain, so a caller whose own grant names no argument must not hand Cedar an empty record.
   */
  readonly everyValuePath: readonly { path: string; type: 'number' | 'string' | 'boolean' }[];
  readonly everyPresencePath: readonly string[];
  /** The arguments quotas sum (quotas.ts reads them exactly too), by the tool they count. */
  readonly quotaSums: readonly { readonly tool: string | undefined; readonly path: string }[];
}

let nextEngineId = 0;
/** Prepared slices kept per engine: targets × the role combinations callers hold. */
const MAX_SLICES = 10_000;

/** Compiles, validates and prepares the policy; throws PolicyLoadError naming each problem. */
export function createPolicyEngine(policy: PolicyConfig): PolicyEngine {
  const loaded = compilePolicy(policy);
  const schema = buildCedarSchema(policy);
  const every: Record<string, string> = {};
  for (const grant of loaded.compiled) {
    for (const compiled of policiesOf(grant)) every[compiled.id] = compiled.text;
  }
  for (const handWritten of loaded.handWritten) every[handWritten.id] = handWritten.text;
  every[BREAKGLASS_POLICY.id] = BREAKGLASS_POLICY.text;
  validatePolicies(schema, every, loaded);

  const version = createHash('sha256')
    .update(JSON.stringify(schema))
    .update(JSON.stringify(Object.entries(every).sort(([a], [b]) => (a < b ? -1 : 1))))
    .digest('hex');
  const engineId = `e${nextEngineId++}-${version.slice(0, 12)}`;
  const handWrittenById = new Map(loaded.handWritten.map((p) => [p.id, p]));
  const grantsById = new Map(loaded.compiled.map((c) => [c.grant.id, c]));
  const slices = new Map<string, Slice>();
  const roles = policy.roles;
  const region = policy.region ?? '';

  const named = namedTargets(loaded.compiled);
  const sliceFor = (request: PolicyRequest): Slice => {
    // Grants of roles the caller does not hold can never match: they are left out of its slice.
    const held = request.identity.roles.filter((role) => roles.has(role));
    const key = `${sliceKey(request, named)}|${[...new Set(held)].sort().join(',')}`;
    let slice = slices.get(key);
    if (slice === undefined) {
      slice = prepareSlice(`${engineId}:${key}`, request, loaded, BREAKGLASS_POLICY);
      if (slices.size >= MAX_SLICES) slices.delete(slices.keys().next().value as string);
      slices.set(key, slice);
    }
    return slice;
  };

  const evaluate = (request: PolicyRequest, slice: Slice, setId: string): AuthorizationAnswer =>
    cedar.statefulIsAuthorized({
      principal: { type: `${NAMESPACE}::Agent`, id: request.identity.agent },
      action: { type: `${NAMESPACE}::Action`, id: request.action },
      resource: resourceOf(request),
      context: buildContext(request, slice, region),
      preparsedPolicySetId: setId,
      entities: entitiesOf(request, slice.needsResourceEntity),
    });

  /**
   * `unexplained`: a default denial whose reasons the explanation set still has to find.
   * `refused`: the input was refused before Cedar; monitor mode never softens that.
   */
  const decide = (
    request: PolicyRequest,
  ): { decision: Decision; slice: Slice; unexplained?: true; refused?: true } => {
    const slice = sliceFor(request);
    if (request.action === 'call_tool') {
      const target = `${request.upstream}.${request.name}`;
      const summed = loaded.quotaSums.filter(
        (sum) => sum.tool === undefined || sum.tool === target,
      );
      const suspicious = [
        ...lookalikeArguments(request.arguments, [
          ...slice.keyPaths,
          ...summed.map((sum) => sum.path),
        ]),
        ...suspiciousArguments(request.arguments, slice.textPaths),
      ];
      if (suspicious.length > 0) {
        return { decision: refuseSuspiciousText(suspicious, version), slice, refused: true };
      }
    }
    let answer: AuthorizationAnswer;
    try {
      answer = evaluate(request, slice, slice.setId);
    } catch (error) {
      return { decision: engineFailure(String(error), version), slice };
    }
    if (answer.type === 'failure') {
      return {
        decision: engineFailure(answer.errors.map((e) => e.message).join('; '), version),
        slice,
      };
    }
    const { decision: cedarDecision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
    const determining = diagnostics.reason;
    // Cedar skips a policy that errors; a forbid that could not be evaluated must still deny.
    const brokenForbids = diagnostics.errors
      .map((e) => e.policyId)
      .filter((id) => handWrittenById.get(id)?.effect === 'forbid');
    if (brokenForbids.length > 0) {
      return {
        decision: {
          effect: 'deny',
          reasons: brokenForbids.map((id) => `forbid policy ${id} could not be evaluated`),
          policies: brokenForbids,
          errors,
          policyVersion: version,
        },
        slice,
      };
    }
    if (cedarDecision === 'allow') {
      return {
        decision: allowDecision(determining, grantsById, request, version, errors),
        slice,
      };
    }
    const forbids = determining.filter((id) => handWrittenById.get(id)?.effect === 'forbid');
    return {
      decision: {
        effect: 'deny',
        reasons: forbids.map((id) => forbidReason(handWrittenById.get(id))),
        policies: forbids,
        ...(errors.length > 0 && { errors }),
        policyVersion: version,
      },
      slice,
      ...(forbids.length === 0 && { unexplained: true as const }),
    };
  };

  const explainGrants = (request: PolicyRequest, slice: Slice): GrantExplanation[] => {
    const relevant = slice.grants.filter(
      (grant) =>
        request.identity.roles.includes(grant.grant.role) &&
        grantAction(grant.grant.target) === actionForGrants(request.action),
    );
    if (relevant.length === 0) return [];
    if (slice.explainSetId === undefined) {
      const set: Record<string, string> = {};
      for (const grant of slice.grants) {
        for (const { policy: check } of grant.checks) set[check.id] = check.text;
      }
      slice.explainSetId = `${slice.setId}!explain`;
      prepare(slice.explainSetId, set);
    }
    let satisfied = new Set<string>();
    try {
      const answer = evaluate(request, slice, slice.explainSetId);
      if (answer.type === 'success') satisfied = new Set(answer.response.diagnostics.reason);
    } catch {
      // Every check then counts as failed: the explanation errs on the side of the denial.
    }
    return relevant.map((grant) => {
      const passed: string[] = [];
      const failed: string[] = [];
      for (const { policy: check, check: what } of applicableChecks(grant, request.action)) {
        (satisfied.has(check.id) ? passed : failed).push(describeCheck(what, request));
      }
      return { grant: grant.grant.id, role: grant.grant.role, passed, failed };
    });
  };

  /** Adds a default denial's reasons (from `grants`, computed here unless given) and monitor mode. */
  const finish = (
    request: PolicyRequest,
    { decision, slice, unexplained, refused }: ReturnType<typeof decide>,
    grants?: readonly GrantExplanation[],
  ): Decision => {
    if (refused) return decision;
    const result = unexplained
      ? {
          ...decision,
          reasons: denialReasons(request, grants ?? explainGrants(request, slice)),
        }
      : decision;
    return applyMonitorMode(result, request.identity.roles, roles);
  };

  /** A resource is judged by its URI's normal form; an ambiguous URI is refused before Cedar. */
  const judged = (request: PolicyRequest): PolicyRequest | Decision => {
    if (request.action !== 'read_resource') return request;
    // Template mode: listings hand over uriTemplates; a concrete URI holds no `{…}` expression.
    const uri = normaliseResourceUri(request.name, { template: true });
    if (!uri.ok) return refuseResourceUri(uri.problem, version);
    return uri.uri === request.name ? request : { ...request, name: uri.uri };
  };

  return {
    version,
    policyCount: Object.keys(every).length,
    decide(request) {
      const target = judged(request);
      if (!('action' in target)) return target;
      return finish(target, decide(target));
    },
    explain(request) {
      const target = judged(request);
      if (!('action' in target)) return { decision: target, grants: [] };
      const decided = decide(target);
      const grants = explainGrants(target, decided.slice);
      return { decision: finish(target, decided, grants), grants };
    },
  };
}

function compilePolicy(policy: PolicyConfig): LoadedPolicy {
  const facts = new FactRegistry();
  const problems: string[] = [];
  const compiled = policy.grants.flatMap((grant) => {
    try {
      return [compileGrant(grant, facts)];
    } catch (error) {
      if (!(error instanceof PolicyLoadError)) throw error;
      problems.push(...error.problems);
      return [];
    }
  });
  if (problems.length > 0) throw new PolicyLoadError(problems);
  const handWritten = loadCedarFiles(policy.files);
  const withHandWritten = handWritten.length > 0;
  const everyPresencePath = new Set<string>();
  for (const grant of policy.grants) {
    for (const constraint of grant.constraints) {
      if (constraint.kind === 'required' || constraint.kind === 'forbidden') {
        everyPresencePath.add(constraint.path);
      }
    }
  }
  return {
    compiled,
    handWritten,
    facts,
    everyValuePath: withHandWritten ? comparedArgumentPaths(policy) : [],
    everyPresencePath: withHandWritten ? [...everyPresencePath] : [],
    quotaSums: policy.quotas.flatMap((quota) =>
      quota.sum === undefined ? [] : [{ tool: quota.tool, path: quota.sum }],
    ),
  };
}

function policiesOf(grant: CompiledGrant): CompiledPolicy[] {
  return grant.visibility ? [grant.permit, grant.visibility] : [grant.permit];
}

function validatePolicies(
  schema: ReturnType<typeof buildCedarSchema>,
  policies: Record<string, string>,
  loaded: LoadedPolicy,
): void {
  const answer = cedar.validate({ schema, policies: { staticPolicies: policies } });
  if (answer.type === 'failure') {
    throw new PolicyLoadError(answer.errors.map((error) => `policy set: ${error.message}`));
  }
  if (answer.validationErrors.length === 0) return;
  const byId = new Map(loaded.handWritten.map((p) => [p.id, p]));
  const grantOf = (id: string) =>
    loaded.compiled.find((c) => policiesOf(c).some((p) => p.id === id))?.grant;
  throw new PolicyLoadError(
    answer.validationErrors.map(({ policyId, error }) => {
      const handWritten = byId.get(policyId);
      if (handWritten) {
        return `${handWritten.file}:${handWritten.line}: policy "${policyId}" fails validation against the Warden schema: ${error.message}`;
      }
      const grant = grantOf(policyId);
      return `${grant?.keyPath ?? policyId}: the compiled grant fails validation: ${error.message}`;
    }),
  );
}

function prepare(setId: string, policies: Record<string, string>): void {
  const answer = cedar.preparsePolicySet(setId, { staticPolicies: policies });
  if (answer.type === 'failure') {
    throw new PolicyLoadError(answer.errors.map((error) => `${setId}: ${error.message}`));
  }
}

/** `tool:payments.issue_payment`, … for every target a grant names exactly. */
function namedTargets(compiled: readonly CompiledGrant[]): ReadonlySet<string> {
  const named = new Set<string>();
  for (const { grant } of compiled) {
    if (grant.target.kind !== 'resource' && grant.target.name !== '*') {
      named.add(`${grant.target.kind}:${grant.target.upstream}.${grant.target.name}`);
    }
  }
  return named;
}

function sliceKey(request: PolicyRequest, named: ReadonlySet<string>): string {
  if (request.action === 'read_resource') return `resource:${request.upstream}`;
  const kind = request.action === 'get_prompt' ? 'prompt' : 'tool';
  const key = `${kind}:${request.upstream}.${request.name}`;
  return named.has(key) ? key : `${kind}:${request.upstream}.*`;
}

function prepareSlice(
  setId: string,
  request: PolicyRequest,
  loaded: LoadedPolicy,
  breakglass: CompiledPolicy,
): Slice {
  const grants = loaded.compiled.filter(
    (c) => request.identity.roles.includes(c.grant.role) && grantCouldMatch(c.grant, request),
  );
  const set: Record<string, string> = { [breakglass.id]: breakglass.text };
  for (const grant of grants) for (const p of policiesOf(grant)) set[p.id] = p.text;
  for (const handWritten of loaded.handWritten) set[handWritten.id] = handWritten.text;
  prepare(setId, set);

  const presence = new Set<string>(loaded.everyPresencePath);
  const values = new Map<string, 'number' | 'string' | 'boolean'>(
    loaded.everyValuePath.map(({ path, type }) => [path, type]),
  );
  const factPaths = new Set<string>();
  const textPaths = new Set<string>();
  for (const grant of grants) {
    const raw = new Set(grant.grant.rawText);
    const compared = (path: string) => {
      if (!raw.has(path)) textPaths.add(path);
    };
    for (const constraint of grant.grant.constraints) {
      if (constraint.condition) {
        values.set(
          constraint.condition.path,
          typeof constraint.condition.values[0] as 'number' | 'string' | 'boolean',
        );
        factPaths.add(constraint.condition.path);
        compared(constraint.condition.path);
      }
      switch (constraint.kind) {
        case 'required':
        case 'forbidden':
          presence.add(constraint.path);
          break;
        case 'min':
        case 'max':
          values.set(constraint.path, 'number');
          compared(constraint.path);
          break;
        case 'one_of':
          values.set(
            constraint.path,
            typeof constraint.values[0] as 'number' | 'string' | 'boolean',
          );
          compared(constraint.path);
          break;
        case 'pattern':
        case 'max_length':
          factPaths.add(constraint.path);
          compared(constraint.path);
          break;
        default:
          break;
      }
    }
  }
  const texts = Object.entries(set)
    .filter(([id]) => id !== breakglass.id)
    .map(([, text]) => text);
  return {
    setId,
    grants,
    attributes: contextAttributesRead(texts),
    needsResourceEntity: texts.some((text) => text.includes(`${NAMESPACE}::Upstream::`)),
    facts: loaded.facts.facts().filter((fact) => factPaths.has(fact.path)),
    presencePaths: [...presence],
    valuePaths: [...values].map(([path, type]) => ({ path, type })),
    textPaths: [...textPaths],
    keyPaths: [...new Set([...presence, ...values.keys(), ...factPaths])],
  };
}

/** The context attributes these policies read; undefined when a policy reads it in a way not recognised. */
function contextAttributesRead(texts: readonly string[]): ReadonlySet<string> | undefined {
  const attributes = new Set<string>();
  for (const text of texts) {
    for (const match of text.matchAll(
      /\bcontext\b(\s*\.\s*|\s+has\s+)?([A-Za-z_][A-Za-z0-9_]*)?/g,
    )) {
      const name = match[2];
      if (match[1] === undefined || name === undefined) return undefined;
      attributes.add(name);
    }
  }
  return attributes;
}

function grantCouldMatch(grant: GrantConfig, request: PolicyRequest): boolean {
  const { target } = grant;
  if (target.kind === 'resource') {
    return (
      request.action === 'read_resource' &&
      (target.upstream === '*' || target.upstream === request.upstream)
    );
  }
  const kind = request.action === 'get_prompt' ? 'prompt' : 'tool';
  if (
    target.kind !== kind ||
    (request.action !== 'call_tool' && request.action !== 'list_tools' && kind === 'tool')
  ) {
    return false;
  }
  if (target.upstream === '*') return true;
  return (
    target.upstream === request.upstream && (target.name === '*' || target.name === request.name)
  );
}

function resourceOf(request: PolicyRequest): { type: string; id: string } {
  switch (request.action) {
    case 'read_resource':
      return { type: `${NAMESPACE}::Resource`, id: `${request.upstream}:${request.name}` };
    case 'get_prompt':
      return { type: `${NAMESPACE}::Prompt`, id: `${request.upstream}.${request.name}` };
    default:
      return { type: `${NAMESPACE}::Tool`, id: `${request.upstream}.${request.name}` };
  }
}

function targetOf(request: PolicyRequest): string {
  return request.action === 'read_resource'
    ? `${request.upstream}:${request.name}`
    : `${request.upstream}.${request.name}`;
}

function entitiesOf(request: PolicyRequest, withResource: boolean): EntityJson[] {
  const agent: EntityJson = {
    uid: { type: `${NAMESPACE}::Agent`, id: request.identity.agent },
    attrs: {},
    parents: request.identity.roles.map((role) => ({ type: `${NAMESPACE}::Role`, id: role })),
  };
  if (!withResource) return [agent];
  return [
    agent,
    {
      uid: resourceOf(request),
      attrs: {},
      parents: [{ type: `${NAMESPACE}::Upstream`, id: request.upstream }],
    },
  ];
}

const MINUTES_PER_DAY = 1440;

function buildContext(request: PolicyRequest, slice: Slice, region: string): Record<string, never> {
  const wanted = slice.attributes;
  const wants = (name: string) => wanted === undefined || wanted.has(name);
  const context: Record<string, unknown> = {};
  const put = (name: string, value: () => unknown) => {
    if (wants(name)) context[name] = value();
  };
  put('user', () => request.identity.user ?? '');
  put('agent', () => request.identity.agent);
  put('tenant', () => request.identity.tenant ?? '');
  put('environment', () => request.identity.environment);
  put('region', () => region);
  put('model', () => request.identity.declaredModel ?? '');
  put('upstream', () => request.upstream);
  put('now', () => Math.floor(request.now / 1000));
  // Monday = 0, as the config's day names are numbered.
  put('weekday', () => (new Date(request.now).getUTCDay() + 6) % 7);
  put('minute', () => Math.floor((request.now / 60_000) % MINUTES_PER_DAY));
  put('states', () => Object.fromEntries(request.states));
  if (request.breakglass.size > 0) {
    context['breakglass'] = [...request.breakglass];
    context['target'] = targetOf(request);
  } else {
    put('target', () => targetOf(request));
  }
  if (request.action === 'call_tool') {
    const args = isRecord(request.arguments) ? request.arguments : {};
    put('arguments', () => argumentValues(args, slice.valuePaths));
    put('normalized', () => ({ arguments: normalizedTexts(args, slice.valuePaths) }));
    put('present', () => slice.presencePaths.filter((path) => valueAt(args, path) !== undefined));
    put('facts', () =>
      slice.facts.filter((fact) => fact.test(valueAt(args, fact.path))).map((fact) => fact.id),
    );
  }
  return context as Record<string, never>;
}

/** The normal form of every text argument compared as text: `context.normalized.arguments`. */
function normalizedTexts(
  args: Record<string, unknown>,
  paths: Slice['valuePaths'],
): Record<string, unknown> {
  return collectArguments(args, paths, (value, type) =>
    type === 'string' && typeof value === 'string' ? normaliseText(value) : undefined,
  );
}

/** The compared text arguments a tool could read otherwise than the policy, and why. */
function suspiciousArguments(args: unknown, paths: readonly string[]): string[] {
  const found: string[] = [];
  for (const path of paths) {
    const value = valueAt(args, path);
    const problem = typeof value === 'string' ? findSuspiciousText(value) : undefined;
    if (problem !== undefined) {
      found.push(
        `argument ${path} holds ${describeSuspicious(problem)}, which the tool could read differently from the policy (an operator may allow it with text: raw)`,
      );
    }
  }
  return found;
}

/**
 * The arguments the policy reads that are also sent under a look-alike key: one equal to it in
 * normal form (another case, a fullwidth form, an invisible character, edge whitespace). Many
 * tools match keys loosely (Go's encoding/json ignores case, the last match winning), and would
 * read the key the policy never judged. Names paths, never the keys or values sent.
 */
function lookalikeArguments(args: unknown, paths: readonly string[]): string[] {
  if (paths.length === 0 || !isRecord(args)) return [];
  const foldedKeys = new Map<Record<string, unknown>, Map<string, number>>();
  const countFolded = (node: Record<string, unknown>, key: string): number => {
    let counts = foldedKeys.get(node);
    if (counts === undefined) {
      counts = new Map();
      for (const name of Object.keys(node)) {
        const folded = normaliseText(name);
        counts.set(folded, (counts.get(folded) ?? 0) + 1);
      }
      foldedKeys.set(node, counts);
    }
    return counts.get(normaliseText(key)) ?? 0;
  };
  const found = new Set<string>();
  for (const path of new Set(paths)) {
    let node: unknown = args;
    for (const part of path.split('.')) {
      if (!isRecord(node)) break;
      const exact = Object.hasOwn(node, part);
      if (countFolded(node, part) > (exact ? 1 : 0)) {
        found.add(
          `argument ${path} is also sent under a look-alike key (another case or width, or an invisible character), which the tool could read in its place`,
        );
        break;
      }
      node = exact ? node[part] : undefined;
    }
  }
  return [...found];
}

function describeSuspicious(problem: NonNullable<ReturnType<typeof findSuspiciousText>>): string {
  switch (problem) {
    case 'edge whitespace':
      return 'leading or trailing whitespace';
    case 'control character':
      return 'a control character (such as a newline or tab)';
    case 'invisible character':
      return 'an invisible or format character (such as a zero-width space or a bidi control)';
  }
}

/** A denial of text the policy and the tool could read differently; names paths, never values. */
function refuseSuspiciousText(found: readonly string[], version: string): Decision {
  return {
    effect: 'deny',
    reasons: [...found],
    policies: [SUSPICIOUS_TEXT_POLICY],
    policyVersion: version,
  };
}

/**
 * The arguments Cedar compares, converted to the type each is compared as. A value of another
 * type (or a number Cedar's decimal cannot hold exactly) is left out, so its constraint fails.
 */
function argumentValues(
  args: Record<string, unknown>,
  paths: Slice['valuePaths'],
): Record<string, unknown> {
  return collectArguments(args, paths, (value, type) => {
    if (type === 'number' && typeof value === 'number') {
      const text = toDecimalText(value);
      return text === undefined ? undefined : { __extn: { fn: 'decimal', arg: text } };
    }
    return typeof value === type ? value : undefined;
  });
}

/** A record of the converted value at each path; paths whose value converts to undefined are left out. */
function collectArguments(
  args: Record<string, unknown>,
  paths: Slice['valuePaths'],
  convert: (value: unknown, type: Slice['valuePaths'][number]['type']) => unknown,
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const { path, type } of paths) {
    const converted = convert(valueAt(args, path), type);
    if (converted !== undefined) setAt(result, path, converted);
  }
  return result;
}

export function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split('.')) {
    if (!isRecord(current) || !Object.hasOwn(current, part)) return undefined;
    current = current[part];
  }
  return current;
}

function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (isRecord(next)) {
      node = next;
    } else {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1] ?? ''] = value;
}

function allowDecision(
  determining: readonly string[],
  grantsById: ReadonlyMap<string, CompiledGrant>,
  request: PolicyRequest,
  version: string,
  errors: readonly string[],
): Decision {
  const grantOf = (id: string) =>
    grantsById.get(id.endsWith(VISIBILITY_SUFFIX) ? id.slice(0, -VISIBILITY_SUFFIX.length) : id);
  const gated = determining
    .map(grantOf)
    .filter((grant): grant is CompiledGrant => grant !== undefined && grant.grant.requiresApproval);
  const breakglass = determining.includes(BREAKGLASS_POLICY.id) ? [targetOf(request)] : undefined;
  const base = {
    policies: determining,
    ...(errors.length > 0 && { errors }),
    policyVersion: version,
    ...(breakglass && { breakglass }),
  };
  // Approval is needed only when every permit that matched asks for it; list_tools never waits.
  if (request.action === 'call_tool' && gated.length > 0 && gated.length === determining.length) {
    const strictest = [...gated].sort(
      (a, b) =>
        b.grant.approvalsRequired - a.grant.approvalsRequired || (a.grant.id < b.grant.id ? -1 : 1),
    )[0] as CompiledGrant;
    return {
      ...base,
      effect: 'approval_required',
      reasons: gated.map((g) => `grant ${g.grant.id} allows this call after approval`),
      approval: {
        approverRoles: strictest.grant.approvers,
        approvalsRequired: strictest.grant.approvalsRequired,
        timeoutMs: strictest.grant.approvalTimeoutMs,
        grants: gated.map((g) => g.grant.id),
        scopes: [...new Set(gated.flatMap((g) => g.grant.scopes))],
      },
    };
  }
  const reasons = determining.map((id) =>
    id === BREAKGLASS_POLICY.id
      ? `break-glass grant for ${targetOf(request)}`
      : grantOf(id)
        ? `grant ${grantOf(id)?.grant.id} allows it`
        : `policy ${id} allows it`,
  );
  return { ...base, effect: 'allow', reasons };
}

function engineFailure(message: string, version: string): Decision {
  return {
    effect: 'deny',
    reasons: ['the policy engine could not evaluate this request'],
    policies: [],
    errors: [message],
    policyVersion: version,
    evaluationFailed: true,
  };
}

function forbidReason(policy: HandWrittenPolicy | undefined): string {
  if (policy === undefined) return 'forbidden by policy';
  return policy.reason === undefined
    ? `forbidden by policy ${policy.id}`
    : `forbidden by policy ${policy.id}: ${policy.reason}`;
}

function actionForGrants(action: PolicyAction): PolicyAction {
  return action === 'list_tools' ? 'call_tool' : action;
}

function applicableChecks(grant: CompiledGrant, action: PolicyAction) {
  if (action !== 'list_tools') return grant.checks;
  return grant.checks.filter(
    ({ check }) =>
      check.kind === 'expiry' ||
      (!('path' in check.constraint) && check.constraint.condition === undefined),
  );
}

function denialReasons(request: PolicyRequest, grants: readonly GrantExplanation[]): string[] {
  const target = targetOf(request);
  if (grants.length === 0) {
    const roles = request.identity.roles.length > 0 ? request.identity.roles.join(', ') : '(none)';
    return [`no grant of role(s) ${roles} covers ${describeAction(request.action)} ${target}`];
  }
  const reasons = grants.flatMap((grant) =>
    grant.failed.length === 0
      ? [`grant ${grant.grant} did not apply`]
      : grant.failed.map((failure) => `grant ${grant.grant}: ${failure}`),
  );
  return [...new Set(reasons)];
}

function describeAction(action: PolicyAction): string {
  switch (action) {
    case 'call_tool':
      return 'calling';
    case 'list_tools':
      return 'seeing';
    case 'read_resource':
      return 'reading';
    case 'get_prompt':
      return 'getting the prompt';
  }
}

function applyMonitorMode(
  decision: Decision,
  callerRoles: readonly string[],
  roles: ReadonlyMap<string, { mode: 'enforce' | 'monitor' }>,
): Decision {
  if (decision.effect !== 'deny' || callerRoles.length === 0) return decision;
  // A denial that comes from an evaluation error is never softened: that would fail open.
  if (decision.errors !== undefined && decision.errors.length > 0) return decision;
  const monitored = callerRoles.every((role) => roles.get(role)?.mode === 'monitor');
  if (!monitored) return decision;
  return {
    ...decision,
    effect: 'allow',
    reasons: [`monitor mode: would have been denied`],
    monitored: { effect: 'deny', reasons: decision.reasons },
  };
}

export type { GrantCheck };
