/** Parses durations written as `250ms`, `30s`, `15m`, `2h`, `7d`, or a number of milliseconds. */
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) return undefined;
  const [, amount, unit] = match;
  return Number(amount) * (UNIT_MS[unit ?? 'ms'] ?? 1);
}

const HOW_TO_WRITE = 'write it like 15m, 1h or 900s';

/** `"15 minutes" is not a duration; write it like …`: what was written, and how to write it. */
function notADuration(value: unknown): string {
  const written = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return `${written} is not a duration; ${HOW_TO_WRITE}`;
}

/** A duration key of warden.yaml, as milliseconds (0 allowed). */
export const durationSchema = z
  .union([z.string(), z.number()], { error: (issue) => notADuration(issue.input) })
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: notADuration(value) });
      return z.NEVER;
    }
    return ms;
  });

/**
 * A wait that must end, or a window that must have a length: 0 would disable a timeout, restart a
 * crashing child in a tight loop, or make a token expire as it is issued.
 */
export const positiveDurationSchema = durationSchema.refine((ms) => ms > 0, {
  message: `must be longer than 0; ${HOW_TO_WRITE}`,
});

/** `90000` → `1m30s`; the largest units first, as durations are written in the config. */
export function formatDuration(ms: number): string {
  const units = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const;
  let rest = Math.round(ms);
  let text = '';
  for (const [unit, size] of units) {
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return rest > 0 || text === '' ? `${text}${rest}ms` : text;
}
