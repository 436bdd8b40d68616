/**
 * Label values, bounded: a label is a time series per value, so an attacker who could choose one
 * (a tool name in a call, a path) could exhaust the scraper's memory. Upstreams come from the
 * config, tools from the config and the tool catalog (what upstreams listed, what operators
 * approved); anything else is `other`.
 */

/** The label of every value not known from the config or the catalog. */
export const OTHER_LABEL = 'other';

/** Tool names kept at most: beyond this, new names are `other`. */
const MAX_TOOL_NAMES = 10_000;

/** A code or reason the gateway itself wrote: WARDEN_TOKEN_EXPIRED, missing_role. */
const CODE_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export interface MetricLabels {
  upstream(name: string | undefined): string;
  tool(upstream: string | undefined, tool: string | undefined): string;
  /** Remembers a tool the catalog or an operator named (tool.approved, a changed definition). */
  learnTool(upstream: string, tool: string): void;
}

export function createMetricLabels(options: {
  readonly upstreams: Iterable<string>;
  /** `[upstream, tool]` pairs known at start: configured tools, pinned definitions. */
  readonly tools: Iterable<readonly [string, string]>;
}): MetricLabels {
  const upstreams = new Set(options.upstreams);
  const tools = new Set<string>();
  const keyOf = (upstream: string, tool: string): string => `${upstream}\u0000${tool}`;
  const learnTool = (upstream: string, tool: string): void => {
    if (upstreams.has(upstream) && tools.size < MAX_TOOL_NAMES) tools.add(keyOf(upstream, tool));
  };
  for (const [upstream, tool] of options.tools) learnTool(upstream, tool);
  return {
    upstream: (name) => (name !== undefined && upstreams.has(name) ? name : OTHER_LABEL),
    tool: (upstream, tool) =>
      upstream !== undefined && tool !== undefined && tools.has(keyOf(upstream, tool))
        ? tool
        : OTHER_LABEL,
    learnTool,
  };
}

/** A code or reason as a label: the gateway's own vocabulary, or `other`. */
export function codeLabel(value: unknown): string {
  return typeof value === 'string' && CODE_PATTERN.test(value) ? value : OTHER_LABEL;
}
