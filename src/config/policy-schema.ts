/**
 * The policy part of warden.yaml: named lists, reusable scopes (constraints on arguments and
 * context), roles with their grants, operator-switched policy states, quotas, hand-written Cedar
 * files, break-glass limits and tool pinning. Structure is checked here; meaning (wildcards,
 * approval rules, references between names) in checkPolicyReferences, so every mistake names
 * its key.
 */
import { z } from 'zod';
import { positiveDurationSchema } from './duration.js';

const name = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'names are letters, digits, - and _ (at most 64)');

/** `amount`, `recipient.iban`: a path into the tool call's arguments. */
export const argumentPath = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*){0,7}$/,
    'an argument path is dot-separated names, e.g. recipient.iban',
  );

const scalar = z.union([z.string(), z.number(), z.boolean()], {
  error: 'expected text, a number or true/false',
});

/** The condition of a conditional constraint: applies only when `arg` equals (or is in) a value. */
const conditionSchema = z.strictObject({
  arg: argumentPath,
  equals: scalar.optional(),
  in: z.array(scalar).min(1).optional(),
});

const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);

/** The keys of an entry that constrain its `arg` (beside `text`, which only sets its text mode). */
export const ARGUMENT_CONSTRAINT_KEYS = [
  'min',
  'max',
  'in',
  'in_list',
  'pattern',
  'max_length',
  'required',
  'forbidden',
  'when',
] as const;

/** One constraint. Exactly one family of keys per entry: argument, tenant, region, time or state. */
export const constraintSchema = z
  .strictObject({
    arg: argumentPath.optional(),
    min: z.number().finite().optional(),
    max: z.number().finite().optional(),
    in: z.array(scalar).min(1).optional(),
    in_list: name.optional(),
    pattern: z.string().min(1).max(1000).optional(),
    max_length: z.number().int().nonnegative().optional(),
    required: z.boolean().optional(),
    forbidden: z.boolean().optional(),
    when: conditionSchema.optional(),
    /**
     * `strict` (default): a call whose value for `arg` is text with leading or trailing
     * whitespace, control, invisible or format characters is refused before policy. `raw`: such
     * text is accepted (and still compared exactly by grants, normalised by restrictions).
     */
    text: z.enum(['strict', 'raw']).optional(),
    tenant: z.array(z.string().min(1)).min(1).optional(),
    region: z.array(z.string().min(1)).min(1).optional(),
    time: z
      .strictObject({
        days: z.array(weekday).min(1).optional(),
        /** UTC, `HH:MM-HH:MM`, end exclusive. */
        hours: z
          .string()
          .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$/, 'use HH:MM-HH:MM (UTC)')
          .optional(),
      })
      .optional(),
    state: z.record(name, z.enum(['on', 'off'])).optional(),
  })
  .superRefine((entry, ctx) => {
    const usesArgument = ARGUMENT_CONSTRAINT_KEYS.some((key) => entry[key] !== undefined);
    const contextKeys = (['tenant', 'region', 'time', 'state'] as const).filter(
      (key) => entry[key] !== undefined,
    );
    if (entry.arg !== undefined && contextKeys.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `an entry constrains either an argument (arg) or the context (${contextKeys.join(', ')}), not both`,
      });
    }
    if (entry.arg === undefined && (usesArgument || entry.text !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'argument constraints need arg: <path>' });
    }
    if (entry.arg !== undefined && !usesArgument && entry.text === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `arg ${entry.arg} has no constraint: add min, max, in, in_list, pattern, max_length, required, forbidden or text`,
      });
    }
    if (entry.arg === undefined && contextKeys.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: 'an empty constraint: use arg, tenant, region, time or state',
      });
    }
    if (contextKeys.length > 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'one context constraint per entry; list several entries instead',
      });
    }
    if (entry.forbidden === true && usesArgumentValue(entry)) {
      ctx.addIssue({
        code: 'custom',
        message: 'a forbidden argument cannot also have value constraints',
      });
    }
    if (entry.min !== undefined && entry.max !== undefined && entry.min > entry.max) {
      ctx.addIssue({ code: 'custom', message: 'min is greater than max: nothing could pass' });
    }
    if (entry.in !== undefined && entry.in_list !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'use in or in_list, not both' });
    }
    if (
      entry.when !== undefined &&
      (entry.when.equals === undefined) === (entry.when.in === undefined)
    ) {
      ctx.addIssue({ code: 'custom', path: ['when'], message: 'a condition needs equals or in' });
    }
    if (entry.pattern !== undefined) {
      try {
        new RegExp(entry.pattern, 'u');
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          path: ['pattern'],
          message: `not a valid regular expression: ${(error as Error).message}`,
        });
      }
    }
  });

function usesArgumentValue(entry: z.input<typeof constraintSchema>): boolean {
  return (['min', 'max', 'in', 'in_list', 'pattern', 'max_length'] as const).some(
    (key) => entry[key] !== undefined,
  );
}

/** A scope is one constraint or a list of them; all must hold. */
const scopeSchema = z.union([constraintSchema, z.array(constraintSchema).min(1)], {
  error: 'expected one constraint ({ arg: amount, max: 1000 }) or a list of them',
});

/** A date (`2027-03-31`, meaning 00:00 UTC that day) or a date and time with a zone. */
const instant = z.union(
  [
    z.iso.date(),
    z.iso.datetime({ offset: true }),
    z.date().transform((date) => date.toISOString()),
  ],
  {
    error: (issue) =>
      `${JSON.stringify(issue.input)} is not a date; write it like 2027-03-31 or 2027-03-31T18:00:00Z`,
  },
);

export const grantSchema = z.strictObject({
  /** `upstream.tool`, `upstream.*` or `*` (wildcards only for trusted roles); or a bare tool name. */
  tool: z.string().min(1).max(300).optional(),
  /** `upstream:uri`, with a trailing `*` for a prefix (`research:docs://*`). */
  resource: z.string().min(1).max(1000).optional(),
  /** `upstream.prompt` or `upstream.*`. */
  prompt: z.string().min(1).max(300).optional(),
  /** The upstream of a bare tool name. */
  upstream: z.string().min(1).optional(),
  scope: z
    .union([name, z.array(name)], { error: 'expected a scope name or a list of scope names' })
    .optional(),
  requires_approval: z.boolean().default(false),
  /** Roles whose holders may approve; defaults to `approver`. */
  approvers: z.array(name).min(1).optional(),
  approvals_required: z
    .union([z.literal(1), z.literal(2)], { error: 'expected 1 or 2 (distinct approvers)' })
    .default(1),
  approval_timeout: positiveDurationSchema.optional(),
  /** How a held call waits (approvals.delivery for this grant); the global setting when absent. */
  approval_delivery: z.enum(['auto', 'hold', 'retry', 'task']).optional(),
  expires: instant.optional(),
  owner: z.string().min(1).optional(),
  reason: z.string().min(1).optional(),
  /** A stable id for the audit log and explain; generated from role and tool when absent. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.:/-]{1,120}$/)
    .optional(),
});

/** The seed's flat form: a grant that names its role. */
const flatGrantSchema = grantSchema.extend({ agent_role: name });

export const roleSchema = z.strictObject({
  /** monitor: decisions are recorded, would-be denials marked, calls go through (pilot stage). */
  mode: z.enum(['enforce', 'monitor']).default('enforce'),
  /** Only trusted roles may hold wildcard grants. */
  trusted: z.boolean().default(false),
  /** How this role's denied tool calls are answered (policy.denials when absent). */
  denials: z.enum(['error', 'result']).optional(),
  description: z.string().optional(),
  grants: z.array(grantSchema).default([]),
});

export const quotaSchema = z
  .strictObject({
    name,
    /** Whose usage is counted together. */
    per: z.enum(['agent', 'role', 'tool', 'user']),
    /** Only calls to this tool (`upstream.tool`) count; all tools when absent. */
    tool: z.string().min(1).optional(),
    /** Only calls by holders of this role count. */
    role: name.optional(),
    /** Count calls (rate) or sum this numeric argument (budget). */
    sum: argumentPath.optional(),
    limit: z.number().positive().finite(),
    window: positiveDurationSchema,
  })
  .refine((quota) => quota.sum === undefined || quota.tool !== undefined, {
    message: 'a budget (sum) needs the tool whose argument it sums',
    path: ['tool'],
  });

export const policySchema = z.strictObject({
  /** Cedar files with hand-written rules, relative to the config file. */
  files: z.array(z.string().min(1)).default([]),
  /** How tool definitions are pinned against rug pulls. */
  tool_pinning: z.enum(['trust_on_first_use', 'require_approval']).default('trust_on_first_use'),
  /** Longest break-glass grant `warden grant break-glass` may create. */
  breakglass_max_ttl: positiveDurationSchema.default(4 * 60 * 60 * 1000),
  /** Default time a held call waits for approval. */
  approval_timeout: positiveDurationSchema.default(10 * 60 * 1000),
  /**
   * How a denied tools/call is answered: `error`, a JSON-RPC error (code -32030, data.reasons);
   * `result`, a tool result with isError and the reasons as text a model can act on.
   */
  denials: z.enum(['error', 'result']).default('error'),
});

export const policyStateSchema = z.strictObject({
  default: z.enum(['on', 'off']).default('off'),
  description: z.string().optional(),
});

/** Top-level keys this file adds to warden.yaml. */
export const policyConfigShape = {
  /** This deployment's region, for region constraints. */
  region: z.string().min(1).optional(),
  lists: z
    .record(
      name,
      z.array(z.union([z.string(), z.number()], { error: 'expected text or a number' })).min(1),
    )
    .default({}),
  scopes: z.record(name, scopeSchema).default({}),
  roles: z.record(name, roleSchema).default({}),
  grants: z.array(flatGrantSchema).default([]),
  policy_states: z.record(name, policyStateSchema).default({}),
  quotas: z.array(quotaSchema).default([]),
  policy: policySchema.default(policySchema.parse({})),
};
