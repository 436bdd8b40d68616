/**
 * Parses the text of warden.yaml. A syntax problem is told with its line, the key it is about
 * when there is one, and what to do: a key given twice is named by its full path, a tab
 * indentation says "indent with spaces".
 */
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parse as parseYaml,
  parseDocument,
  visit,
  YAMLParseError,
  type Pair,
} from 'yaml';

export type ParsedYaml =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly problem: string };

/** Error codes of the yaml package that mean "the indentation is off". */
const INDENTATION_CODES = new Set(['BAD_INDENT', 'BLOCK_AS_IMPLICIT_KEY', 'MISSING_CHAR']);

export function parseConfigYaml(text: string): ParsedYaml {
  try {
    // uniqueKeys: a key given twice is refused, never silently resolved to its last value.
    return { ok: true, value: parseYaml(text, { prettyErrors: true, uniqueKeys: true }) };
  } catch (error) {
    return { ok: false, problem: describeYamlError(error, text) };
  }
}

function describeYamlError(error: unknown, text: string): string {
  if (!(error instanceof YAMLParseError)) {
    return `not valid YAML: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`;
  }
  const line = error.linePos?.[0]?.line;
  const where = `not valid YAML at line ${line ?? '?'}`;
  const source = line === undefined ? '' : (text.split('\n')[line - 1] ?? '');
  if (error.code === 'DUPLICATE_KEY') {
    const duplicate = findDuplicateKey(text, error.pos[0]);
    if (duplicate !== undefined) {
      return `${where}: ${duplicate.path} is given twice (first at line ${duplicate.firstLine}); keep one`;
    }
  }
  if (error.code === 'TAB_AS_INDENT') {
    const indented = /^\s*([^\s:#][^:#]*):/.exec(source)?.[1]?.trim();
    const what = indented === undefined ? 'the line' : `"${indented}"`;
    return `${where}: ${what} is indented with a tab; YAML indents with spaces only`;
  }
  const summary = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? '';
  if (INDENTATION_CODES.has(error.code)) {
    return `${where}: ${summary}; check the indentation around it: the keys of one mapping line up, nested ones are indented further, with spaces`;
  }
  return `${where}: ${summary}`;
}

/** The full path of the key at `offset` that repeats an earlier key of its mapping. */
function findDuplicateKey(
  text: string,
  offset: number,
): { path: string; firstLine: number } | undefined {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { uniqueKeys: false, lineCounter });
  let found: { path: string; firstLine: number } | undefined;
  visit(document, {
    Pair(_, pair, ancestors) {
      if (!isScalar(pair.key) || pair.key.range?.[0] !== offset) return undefined;
      const parent = ancestors[ancestors.length - 1];
      const first = isMap(parent)
        ? parent.items.find((item) => isScalar(item.key) && item.key.value === keyOf(pair))
        : undefined;
      const firstOffset = isScalar(first?.key) ? (first.key.range?.[0] ?? offset) : offset;
      found = {
        path: [...pathOf(ancestors), keyOf(pair)].join('.'),
        firstLine: lineCounter.linePos(firstOffset).line,
      };
      return visit.BREAK;
    },
  });
  return found;
}

/** The keys and list positions leading to a node, e.g. `roles.finance.grants.0`. */
function pathOf(ancestors: readonly unknown[]): string[] {
  return ancestors.flatMap((ancestor, index) => {
    if (isPair(ancestor)) return [keyOf(ancestor as Pair)];
    if (isSeq(ancestor)) return [String(ancestor.items.indexOf(ancestors[index + 1]))];
    return [];
  });
}

function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : '?';
}
