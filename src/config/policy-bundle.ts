/**
 * A policy bundle: the sections of warden.yaml a reload puts in force (the policy keys and
 * `agents`), as `warden policy push` stores them and every replica following the store applies
 * them. A bundle is checked against a running configuration exactly as loading that
 * configuration's file with the bundle's sections in place of its own would check it: against
 * its upstreams, approvers and authentication.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { canonicalJson } from '../domain/canonical-json.js';
import { ConfigError } from '../domain/errors.js';
import { isRecord } from '../domain/json-object.js';
import type { Config } from './config.js';
import { reparseConfig } from './load.js';
import { policyConfigShape } from './policy-schema.js';
import { parseConfigYaml } from './read-yaml.js';

/** The top-level keys of a bundle: what SIGHUP reloads (policy and agents). */
export const BUNDLE_KEYS: readonly string[] = [...Object.keys(policyConfigShape), 'agents'];

export interface BundleSections {
  /** The bundle's keys the file holds. */
  readonly sections: Readonly<Record<string, unknown>>;
  /** Other top-level keys of the file (it is a whole warden.yaml): not part of a bundle. */
  readonly ignored: readonly string[];
  /** SHA-256 of the sections' canonical JSON: comments and layout do not change it. */
  readonly contentHash: string;
  /** The sections as YAML, as stored. */
  readonly text: string;
}

/** Reads a bundle's sections from YAML text; throws ConfigError naming the problem. */
export function readBundleSections(text: string, source: string): BundleSections {
  const parsed = parseConfigYaml(text);
  if (!parsed.ok) throw new ConfigError(source, [parsed.problem]);
  if (parsed.value === null || parsed.value === undefined) {
    throw new ConfigError(source, [
      `the file is empty; a policy bundle holds ${BUNDLE_KEYS.join(', ')} (at least agents)`,
    ]);
  }
  if (!isRecord(parsed.value)) {
    throw new ConfigError(source, ['expected a mapping of sections (roles:, agents:, …)']);
  }
  const sections: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(parsed.value)) {
    if (BUNDLE_KEYS.includes(key)) sections[key] = value;
    else ignored.push(key);
  }
  if (Object.keys(sections).length === 0) {
    throw new ConfigError(source, [
      `holds none of the sections of a policy bundle (${BUNDLE_KEYS.join(', ')})`,
    ]);
  }
  const files = (sections['policy'] as { files?: unknown } | undefined)?.files;
  if (Array.isArray(files) && files.length > 0) {
    throw new ConfigError(source, [
      'policy.files: a pushed bundle cannot name Cedar files (each replica would read its own ' +
        'copy, so they could disagree); keep hand-written rules in the file form, or write them ' +
        'as grants and scopes',
    ]);
  }
  return {
    sections,
    ignored,
    contentHash: hashSections(sections, source),
    text: stringify(sections),
  };
}

function hashSections(sections: Readonly<Record<string, unknown>>, source: string): string {
  try {
    return createHash('sha256').update(canonicalJson(sections)).digest('hex');
  } catch (error) {
    // e.g. `.inf`: YAML has values JSON has not, and no setting takes one.
    throw new ConfigError(source, [`holds a value no setting takes: ${(error as Error).message}`]);
  }
}

/**
 * `running` with the bundle's policy and agents in place of its own; everything else (listen,
 * upstreams, `warden serve` overrides, policy_source) stays. Throws ConfigError with the loader's
 * messages.
 */
export function applyBundleSections(
  running: Config,
  bundle: Pick<BundleSections, 'sections'>,
  source: string,
): Config {
  const reparsed = reparseConfig(
    running,
    (raw) => {
      for (const key of BUNDLE_KEYS) delete raw[key];
      return { ...raw, ...bundle.sections };
    },
    source,
  );
  return Object.freeze({ ...running, agents: reparsed.agents, policy: reparsed.policy });
}
