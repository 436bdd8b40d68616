/**
 * The bounded load generator: exactly `calls` calls, at most `concurrency` in flight, each timed
 * with performance.now() from just before it is issued until its result has been checked.
 */
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  /** How many calls to make in total. */
  readonly calls: number;
  /** How many callers run at once; caller `slot` is 0..concurrency-1. */
  readonly concurrency: number;
}

export interface LoadResult {
  readonly calls: number;
  readonly concurrency: number;
  readonly failures: number;
  /** The first failure's message, to make a broken peer obvious in the report. */
  readonly firstFailure: string | undefined;
  readonly elapsedMs: number;
  readonly callsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Runs `call(slot)` `options.calls` times. A call that throws counts as a failure; its latency
 * is still recorded, so a failing peer does not look fast by dropping its slow calls.
 */
export async function runLoad(
  call: (slot: number) => Promise<void>,
  options: LoadOptions,
): Promise<LoadResult> {
  const latencies = new Float64Array(options.calls);
  let issued = 0;
  let failures = 0;
  let firstFailure: string | undefined;

  async function caller(slot: number): Promise<void> {
    while (issued < options.calls) {
      const index = issued++;
      const started = performance.now();
      try {
        await call(slot);
      } catch (error) {
        failures += 1;
        firstFailure ??= error instanceof Error ? error.message : String(error);
      }
      latencies[index] = performance.now() - started;
    }
  }

  const started = performance.now();
  await Promise.all(Array.from({ length: options.concurrency }, (_, slot) => caller(slot)));
  const elapsedMs = performance.now() - started;
  latencies.sort();
  return {
    calls: options.calls,
    concurrency: options.concurrency,
    failures,
    firstFailure,
    elapsedMs,
    callsPerSecond: (options.calls * 1000) / elapsedMs,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

/** Nearest-rank percentile of already sorted samples. */
export function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(fraction * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}
