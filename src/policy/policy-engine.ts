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
 *
 * A slice made only of grants (no hand-written rule) is decided in plain JavaScript, with the
 * answer Cedar gives for the grants' compiled text (compiled-grants-decision.ts): the bridge into
 * Cedar's WebAssembly costs more than the whole decision otherwise. Requests that path cannot
 * read exactly as Cedar would, and every slice with a hand-written rule, still go to Cedar.
 */
import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { GrantConfig, PolicyConfig } from '../config/policy-config.js';
import type { Decision } from '../domain/decision.js';
import type { ErrorCode } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import { isRecord } from '../domain/json-object.js';
import { FactRegistry } from './cedar-expressions.js';
import { loadCedarFiles, type HandWrittenPolicy } from './cedar-files.js';
import {
  askCedar,
  checksCedarFinds,
  prepareCedarSet,
  type CedarSlice,
  type SliceAnswer,
} from './ask-cedar.js';
import {
  isCedarText,
  targetOf,
  valueAt,
  type ArgumentPath,
  type ArgumentType,
} from './cedar-request.js';
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
import {
  checkHolds,
  decideCompiledGrants,
  planCompiledSlice,
  readCompiledRequest,
  type CompiledSlice,
} from './compiled-grants-decision.js';
import { describeCheck } from './describe-check.js';
import {
  compileGrantRule,
  type FactLookup,
  type GrantInput,
  type GrantRule,
} from './grant-conditions.js';
import { findSuspiciousText, normaliseText } from './normalise-text.js';
import { normaliseResourceUri, refuseResourceUri, RESOURCE_URI_POLICY } from './normalise-uri.js';
import { PolicyLoadError } from './policy-load-error.js';

/** Where the quotas (and other readers of a call's arguments) find the value at a path. */
export { valueAt };

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

interface Slice extends CedarSlice {
  /** Argument paths whose text is refused when suspicious (compared by a grant, not `text: raw`). */
  readonly textPaths: readonly string[];
  /** Every argument path the slice reads (values, presence, facts): none may have a look-alike key. */
  readonly keyPaths: readonly string[];
  /** The slice for the compiled path; undefined when Cedar decides it. */
  readonly compiledPath: CompiledSlice | undefined;
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
  readonly everyValuePath: readonly ArgumentPath[];
  readonly everyPresencePath: readonly string[];
  /** The arguments quotas sum (quotas.ts reads them exactly too), by the tool they count. */
  readonly quotaSums: readonly { readonly tool: string | undefined; readonly path: string }[];
}

let nextEngineId = 0;
/** Prepared slices kept per engine: targets × the role combinations callers hold. */
const MAX_SLICES = 10_000;

/** How the engine evaluates requests. */
export interface PolicyEngineOptions {
  /**
   * `compiled` (the default): a slice made only of grants is decided in plain JavaScript with
   * Cedar's answer for their compiled text (compiled-grants-decision.ts); a slice with a
   * hand-written rule, and any request Cedar could read otherwise, goes to Cedar. `cedar`: every
   * request goes to Cedar, the oracle the compiled path is tested against.
   */
  readonly decideWith?: 'compiled' | 'cedar';
  /** Told which evaluator answered each decision (and its explanation): for tests and benchmarks. */
  readonly onEvaluated?: (evaluator: Evaluator) => void;
}

export type Evaluator = 'compiled' | 'cedar';

/** Compiles, validates and prepares the policy; throws PolicyLoadError naming each problem. */
export function createPolicyEngine(
  policy: PolicyConfig,
  options: PolicyEngineOptions = {},
): PolicyEngine {
  const settings = Object.freeze({
    decideWith: options.decideWith ?? 'compiled',
    onEvaluated: options.onEvaluated,
  });
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
  const rules =
    settings.decideWith === 'compiled' && loaded.handWritten.length === 0 && isCedarText(region)
      ? compileRules(loaded)
      : undefined;

  const named = namedTargets(loaded.compiled);
  const sliceFor = (request: PolicyRequest): Slice => {
    // Grants of roles the caller does not hold can never match: they are left out of its slice.
    const key = `${sliceKey(request, named)}|${heldRolesKey(request.identity.roles, roles)}`;
    let slice = slices.get(key);
    if (slice === undefined) {
      const prepared = prepareSlice(`${engineId}:${key}`, request, loaded, BREAKGLASS_POLICY);
      slice = {
        ...prepared,
        compiledPath:
          rules &&
          planCompiledSlice(
            prepared.grants.map((g) => rules.get(g.grant.id)),
            prepared,
          ),
      };
      if (slices.size >= MAX_SLICES) slices.delete(slices.keys().next().value as string);
      slices.set(key, slice);
    }
    return slice;
  };

  /** The slice's satisfied permits: by the compiled path when it can read the request, else Cedar. */
  const answer = (
    request: PolicyRequest,
    slice: Slice,
  ): { answer: SliceAnswer; input?: GrantInput } => {
    const input = slice.compiledPath && readCompiledRequest(request, slice.compiledPath, region);
    if (slice.compiledPath !== undefined && input !== undefined) {
      settings.onEvaluated?.('compiled');
      const determining = decideCompiledGrants(slice.compiledPath, input, request.breakglass);
      return { answer: { allowed: determining.length > 0, determining, errors: [] }, input };
    }
    settings.onEvaluated?.('cedar');
    return { answer: askCedar(request, slice, region) };
  };

  /**
   * `unexplained`: a default denial whose reasons the explanation set still has to find.
   * `refused`: the input was refused before Cedar; monitor mode never softens that.
   * `input`: the request as the compiled path read it, when that path decided.
   */
  const decide = (
    request: PolicyRequest,
  ): {
    decision: Decision;
    slice: Slice;
    unexplained?: true;
    refused?: true;
    input?: GrantInput;
  } => {
    const slice = sliceFor(request);
    if (request.action === 'call_tool') {
      const target = `${request.upstream}.${request.name}`;
      const summed = loaded.quotaSums.filter(
        (sum) => sum.tool === undefined || sum.tool === target,
      );
      const lookalikes = lookalikeArguments(
        request.arguments,
        summed.length === 0 ? slice.keyPaths : [...slice.keyPaths, ...summed.map((s) => s.path)],
      );
      const suspicious = suspiciousArguments(request.arguments, slice.textPaths);
      if (lookalikes.length > 0 || suspicious.length > 0) {
        return {
          decision: refuseSuspiciousText([...lookalikes, ...suspicious], version),
          slice,
          refused: true,
        };
      }
    }
    const { answer: answered, input } = answer(request, slice);
    if ('failure' in answered) {
      return { decision: engineFailure(answered.failure, version), slice };
    }
    const errors = answered.errors.map((e) => `${e.policyId}: ${e.message}`);
    const determining = answered.determining;
    // Cedar skips a policy that errors; a forbid that could not be evaluated must still deny.
    const brokenForbids = answered.errors
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
    if (answered.allowed) {
      return {
        decision: allowDecision(determining, grantsById, request, version, errors),
        slice,
        ...(input !== undefined && { input }),
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
      ...(input !== undefined && { input }),
    };
  };

  /** Which explanation checks hold: by the compiled path with the request it read, else Cedar. */
  const checksHolding = (
    request: PolicyRequest,
    slice: Slice,
    input: GrantInput | undefined,
  ): ((grant: CompiledGrant, checkId: string) => boolean) => {
    const read =
      input ?? (slice.compiledPath && readCompiledRequest(request, slice.compiledPath, region));
    if (rules !== undefined && slice.compiledPath !== undefined && read !== undefined) {
      settings.onEvaluated?.('compiled');
      return (grant, checkId) => {
        const rule = rules.get(grant.grant.id);
        return rule !== undefined && checkHolds(rule, checkId, read);
      };
    }
    settings.onEvaluated?.('cedar');
    const satisfied = checksCedarFinds(request, slice, region);
    return (_grant, checkId) => satisfied.has(checkId);
  };

  const explainGrants = (
    request: PolicyRequest,
    slice: Slice,
    input: GrantInput | undefined,
  ): GrantExplanation[] => {
    const relevant = slice.grants.filter(
      (grant) =>
        request.identity.roles.includes(grant.grant.role) &&
        grantAction(grant.grant.target) === actionForGrants(request.action),
    );
    if (relevant.length === 0) return [];
    const holds = checksHolding(request, slice, input);
    return relevant.map((grant) => {
      const passed: string[] = [];
      const failed: string[] = [];
      for (const { policy: check, check: what } of applicableChecks(grant, request.action)) {
        (holds(grant, check.id) ? passed : failed).push(describeCheck(what, request));
      }
      return { grant: grant.grant.id, role: grant.grant.role, passed, failed };
    });
  };

  /** Adds a default denial's reasons (from `grants`, computed here unless given) and monitor mode. */
  const finish = (
    request: PolicyRequest,
    { decision, slice, unexplained, refused, input }: ReturnType<typeof decide>,
    grants?: readonly GrantExplanation[],
  ): Decision => {
    if (refused) return decision;
    const result = unexplained
      ? {
          ...decision,
          reasons: denialReasons(request, grants ?? explainGrants(request, slice, input)),
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
      const grants = explainGrants(target, decided.slice, decided.input);
      return { decision: finish(target, decided, grants), grants };
    },
  };
}

/** Every grant as predicates for the compiled path, by grant id (undefined: Cedar decides it). */
function compileRules(loaded: LoadedPolicy): ReadonlyMap<string, GrantRule | undefined> {
  const factsById = new Map(loaded.facts.facts().map((fact) => [fact.id, fact]));
  // The ids compileGrant registered: registering the same parameters again returns them.
  const factFor: FactLookup = (kind, path, parameter) =>
    factsById.get(loaded.facts.register(kind, path, parameter));
  return new Map(
    loaded.compiled.map((grant) => [grant.grant.id, compileGrantRule(grant, factFor)]),
  );
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

/**
 * The configured roles the caller holds, sorted and without repeats, joined by commas (role
 * names hold none). Callers' roles mostly come sorted already: those are joined as they are.
 */
function heldRolesKey(callerRoles: readonly string[], roles: ReadonlyMap<string, unknown>): string {
  let key = '';
  let previous: string | undefined;
  for (const role of callerRoles) {
    if (!roles.has(role)) continue;
    if (previous !== undefined && role <= previous) {
      return [...new Set(callerRoles.filter((held) => roles.has(held)))].sort().join(',');
    }
    key = previous === undefined ? role : `${key},${role}`;
    previous = role;
  }
  return key;
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
): Omit<Slice, 'compiledPath'> {
  const grants = loaded.compiled.filter(
    (c) => request.identity.roles.includes(c.grant.role) && grantCouldMatch(c.grant, request),
  );
  const set: Record<string, string> = { [breakglass.id]: breakglass.text };
  for (const grant of grants) for (const p of policiesOf(grant)) set[p.id] = p.text;
  for (const handWritten of loaded.handWritten) set[handWritten.id] = handWritten.text;
  prepareCedarSet(setId, set);

  const presence = new Set<string>(loaded.everyPresencePath);
  const values = new Map<string, ArgumentType>(
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
          values.set(constraint.path, typeof constraint.values[0] as ArgumentType);
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
        const folded = foldKey(name);
        counts.set(folded, (counts.get(folded) ?? 0) + 1);
      }
      foldedKeys.set(node, counts);
    }
    return counts.get(foldKey(key)) ?? 0;
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

/** Printable ASCII without space: text normaliseText only lower-cases. */
const PLAIN_KEY = /^[!-~]*$/;

/**
 * A key's normal form (normaliseText). Most keys are plain ASCII names, which normalise to their
 * lower case (NFKC keeps ASCII, which has no invisible, spacing or control character here):
 * that answer is found without the Unicode passes, which cost more than the rest of a decision.
 */
function foldKey(key: string): string {
  return PLAIN_KEY.test(key) ? key.toLowerCase() : normaliseText(key);
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

function allowDecision(
  determining: readonly string[],
  grantsById: ReadonlyMap<string, CompiledGrant>,
  request: PolicyRequest,
  version: string,
  errors: readonly string[],
): Decision {
  const grantOf = (id: string) =>
    grantsById.get(id.endsWith(VISIBILITY_SUFFIX) ? id.slice(0, -VISIBILITY_SUFFIX.length) : id);
  const gated: CompiledGrant[] = [];
  for (const id of determining) {
    const grant = grantOf(id);
    if (grant?.grant.requiresApproval) gated.push(grant);
  }
  // Built key by key (not spread), in the order decisions have always had: this runs per call.
  const base: { -readonly [K in keyof Decision]?: Decision[K] } = { policies: determining };
  if (errors.length > 0) base.errors = errors;
  base.policyVersion = version;
  if (determining.includes(BREAKGLASS_POLICY.id)) base.breakglass = [targetOf(request)];
  // Approval is needed only when every permit that matched asks for it; list_tools never waits.
  if (request.action === 'call_tool' && gated.length > 0 && gated.length === determining.length) {
    const strictest = [...gated].sort(
      (a, b) =>
        b.grant.approvalsRequired - a.grant.approvalsRequired || (a.grant.id < b.grant.id ? -1 : 1),
    )[0] as CompiledGrant;
    base.effect = 'approval_required';
    base.reasons = gated.map((g) => `grant ${g.grant.id} allows this call after approval`);
    base.approval = {
      approverRoles: strictest.grant.approvers,
      approvalsRequired: strictest.grant.approvalsRequired,
      timeoutMs: strictest.grant.approvalTimeoutMs,
      grants: gated.map((g) => g.grant.id),
      scopes: [...new Set(gated.flatMap((g) => g.grant.scopes))],
    };
    return base as Decision;
  }
  base.effect = 'allow';
  base.reasons = determining.map((id) => {
    if (id === BREAKGLASS_POLICY.id) return `break-glass grant for ${targetOf(request)}`;
    const grant = grantOf(id);
    return grant ? `grant ${grant.grant.id} allows it` : `policy ${id} allows it`;
  });
  return base as Decision;
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
