/**
 * The Cedar schema Warden generates from its configuration, against which every policy
 * (generated or hand-written) is validated at load:
 *   principal  Warden::Agent, member of its Warden::Role entities
 *   action     call_tool, list_tools (a tool's visibility), read_resource, get_prompt
 *   resource   Warden::Tool / Warden::Resource / Warden::Prompt, members of a Warden::Upstream
 *   context    who (user, agent, tenant, model), where (environment, region), when (now, weekday,
 *              minute), policy states, break-glass targets, and for call_tool the arguments and
 *              `normalized.arguments`: each text argument in the normal form restrictive rules
 *              compare (normalise-text.ts), for hand-written forbids a near-miss must not escape
 */
import type { SchemaJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { PolicyConfig } from '../config/policy-config.js';
import { argumentTypeOf } from '../config/policy-config.js';

export const NAMESPACE = 'Warden';
export const ACTIONS = ['call_tool', 'list_tools', 'read_resource', 'get_prompt'] as const;
export type PolicyAction = (typeof ACTIONS)[number];

type CedarType = SchemaJson<string>[string]['commonTypes'] extends
  Record<string, infer T> | undefined
  ? T
  : never;

interface ArgumentTree {
  type?: 'number' | 'string' | 'boolean';
  children: Map<string, ArgumentTree>;
}

/** The schema for this configuration: the argument shape comes from the scopes' constraints. */
export function buildCedarSchema(policy: PolicyConfig): SchemaJson<string> {
  const baseContext: Record<string, CedarType & { required?: boolean }> = {
    user: { type: 'String' },
    agent: { type: 'String' },
    tenant: { type: 'String' },
    environment: { type: 'String' },
    region: { type: 'String' },
    model: { type: 'String' },
    target: { type: 'String' },
    upstream: { type: 'String' },
    now: { type: 'Long' },
    weekday: { type: 'Long' },
    minute: { type: 'Long' },
    states: {
      type: 'Record',
      attributes: Object.fromEntries(
        [...policy.states.keys()].map((name) => [name, { type: 'Boolean' }]),
      ),
    },
    breakglass: { type: 'Set', element: { type: 'String' }, required: false },
  };
  const tree = buildArgumentTree(policy);
  const callContext = {
    ...baseContext,
    arguments: argumentRecordType(tree),
    normalized: {
      type: 'Record',
      attributes: { arguments: argumentRecordType(onlyText(tree)) },
    },
    present: { type: 'Set', element: { type: 'String' } },
    facts: { type: 'Set', element: { type: 'String' } },
  };
  const applies = (resource: string, context: Record<string, unknown>) => ({
    appliesTo: {
      principalTypes: ['Agent'],
      resourceTypes: [resource],
      context: { type: 'Record', attributes: context },
    },
  });
  return {
    [NAMESPACE]: {
      entityTypes: {
        Role: {},
        Upstream: {},
        Agent: { memberOfTypes: ['Role'] },
        Tool: { memberOfTypes: ['Upstream'] },
        Resource: { memberOfTypes: ['Upstream'] },
        Prompt: { memberOfTypes: ['Upstream'] },
      },
      actions: {
        call_tool: applies('Tool', callContext),
        list_tools: applies('Tool', baseContext),
        read_resource: applies('Resource', baseContext),
        get_prompt: applies('Prompt', baseContext),
      },
    },
  } as SchemaJson<string>;
}

/** Every argument path some scope compares by value, with the type it is compared as. */
export function comparedArgumentPaths(
  policy: PolicyConfig,
): { path: string; type: 'number' | 'string' | 'boolean' }[] {
  const paths: { path: string; type: 'number' | 'string' | 'boolean' }[] = [];
  const walk = (node: ArgumentTree, prefix: string) => {
    for (const [name, child] of node.children) {
      const path = prefix === '' ? name : `${prefix}.${name}`;
      if (child.type !== undefined) paths.push({ path, type: child.type });
      else walk(child, path);
    }
  };
  walk(buildArgumentTree(policy), '');
  return paths;
}

/** The tree with only its text leaves (and the records leading to them). */
function onlyText(tree: ArgumentTree): ArgumentTree {
  const children = new Map<string, ArgumentTree>();
  for (const [name, child] of tree.children) {
    if (child.type === 'string') {
      children.set(name, child);
    } else if (child.type === undefined) {
      const kept = onlyText(child);
      if (kept.children.size > 0) children.set(name, kept);
    }
  }
  return { children };
}

function buildArgumentTree(policy: PolicyConfig): ArgumentTree {
  const root: ArgumentTree = { children: new Map() };
  const add = (path: string, type: 'number' | 'string' | 'boolean' | undefined) => {
    let node = root;
    for (const part of path.split('.')) {
      let child = node.children.get(part);
      if (child === undefined) {
        child = { children: new Map() };
        node.children.set(part, child);
      }
      node = child;
    }
    if (type !== undefined) node.type = type;
  };
  for (const grant of policy.grants) {
    for (const constraint of grant.constraints) {
      const type = argumentTypeOf(constraint);
      if (type !== undefined && 'path' in constraint && usesValue(constraint.kind)) {
        add(constraint.path, type);
      }
      if (constraint.condition) {
        const first = constraint.condition.values[0];
        add(constraint.condition.path, typeof first as 'number' | 'string' | 'boolean');
      }
    }
  }
  return root;
}

/** Pattern and length checks reach Cedar as facts, presence checks as `present`: no value needed. */
function usesValue(kind: string): boolean {
  return kind === 'min' || kind === 'max' || kind === 'one_of';
}

function argumentRecordType(tree: ArgumentTree): CedarType {
  const attributes: Record<string, unknown> = {};
  for (const [name, child] of tree.children) {
    const type =
      child.type === 'number'
        ? { type: 'Extension', name: 'decimal' }
        : child.type === 'string'
          ? { type: 'String' }
          : child.type === 'boolean'
            ? { type: 'Boolean' }
            : argumentRecordType(child);
    attributes[name] = { ...type, required: false };
  }
  return { type: 'Record', attributes } as CedarType;
}
