/**
 * Hand-written Cedar files: read, split into policies with stable ids (an `@id("…")` annotation,
 * else `<file>#<n>`), and every problem reported as `file:line:column: message`.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { DetailedError } from '@cedar-policy/cedar-wasm/nodejs';
import type { CompiledPolicy } from './compile-grants.js';
import { PolicyLoadError } from './policy-load-error.js';

export interface HandWrittenPolicy extends CompiledPolicy {
  readonly file: string;
  /** 1-based line where the policy starts in its file. */
  readonly line: number;
  readonly effect: 'permit' | 'forbid';
  /** The `@reason("…")` annotation: what a denied caller is told. */
  readonly reason: string | undefined;
}

/** Loads every file; throws PolicyLoadError listing each problem with its place. */
export function loadCedarFiles(files: readonly string[]): HandWrittenPolicy[] {
  const problems: string[] = [];
  const policies: HandWrittenPolicy[] = [];
  const ids = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      problems.push(`${file}: cannot read: ${(error as Error).message}`);
      continue;
    }
    const parsed = cedar.checkParsePolicySet({ staticPolicies: text });
    if (parsed.type === 'failure') {
      problems.push(...parsed.errors.map((error) => placeError(file, text, error)));
      continue;
    }
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') {
      problems.push(...parts.errors.map((error) => placeError(file, text, error)));
      continue;
    }
    if (parts.policy_templates.length > 0) {
      problems.push(`${file}: templates are not supported; write static policies`);
    }
    let searchFrom = 0;
    parts.policies.forEach((policyText, index) => {
      const json = cedar.policyToJson(policyText);
      if (json.type === 'failure') {
        problems.push(...json.errors.map((error) => `${file}: ${error.message}`));
        return;
      }
      const start = locatePolicy(text, policyText, searchFrom);
      searchFrom = start + 1;
      const id = json.json.annotations?.['id'] ?? `${basename(file)}#${index + 1}`;
      const line = lineOf(text, start);
      if (ids.has(id)) problems.push(`${file}:${line}: policy id "${id}" is used twice`);
      ids.add(id);
      policies.push({
        id,
        text: policyText,
        file,
        line,
        effect: json.json.effect,
        reason: json.json.annotations?.['reason'],
      });
    });
  }
  if (problems.length > 0) throw new PolicyLoadError(problems);
  return policies;
}

/** `file:line:column: message (help)` for a Cedar error with a source location in `text`. */
export function placeError(file: string, text: string, error: DetailedError): string {
  const offset = error.sourceLocations?.[0]?.start;
  const place =
    offset === undefined ? file : `${file}:${lineOf(text, offset)}:${columnOf(text, offset)}`;
  return `${place}: ${error.message}${error.help ? ` (${error.help})` : ''}`;
}

function locatePolicy(text: string, policyText: string, from: number): number {
  // Cedar hands back each policy's own text; find where it starts, else keep the running offset.
  const head = policyText.trimStart().slice(0, 40);
  const found = text.indexOf(head, from);
  return found === -1 ? from : found;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function columnOf(text: string, offset: number): number {
  return offset - text.lastIndexOf('\n', offset - 1);
}
