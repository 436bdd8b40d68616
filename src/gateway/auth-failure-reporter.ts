/**
 * Reports refused authentications (the future audit log's `auth.failed` events) without letting
 * an attacker flood the log: the first failure from a source in a window is reported in full,
 * the rest are counted and reported once as a summary when the window closes.
 */
import type { Logger } from './logger.js';

export interface AuthFailure {
  readonly requestId: string;
  /** The remote address: failures are aggregated per source. */
  readonly source: string;
  readonly upstream: string;
  readonly code: string;
  readonly reason: string | undefined;
}

export interface AuthFailureReporter {
  report(failure: AuthFailure): void;
  /** Writes the pending summaries (at shutdown). */
  flush(): void;
}

/** Sources tracked at once; beyond this, failures are summarised under one overflow entry. */
const MAX_SOURCES = 10_000;

/** What the reporter lets through: a failure in full, or a summary of the repeats it held back. */
export type ReportedAuthFailure =
  | { readonly kind: 'failure'; readonly failure: AuthFailure }
  | {
      readonly kind: 'repeated';
      readonly source: string;
      readonly repeated: number;
      readonly codes: Readonly<Record<string, number>>;
    };

export function createAuthFailureReporter(
  logger: Logger,
  options: {
    readonly windowMs?: number;
    readonly now?: () => number;
    /** Also told of each report (the audit log's `auth.failed` records). */
    readonly sink?: (report: ReportedAuthFailure) => void;
  } = {},
): AuthFailureReporter {
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const windows = new Map<
    string,
    { opened: number; suppressed: number; codes: Map<string, number> }
  >();

  const summarise = (source: string): void => {
    const window = windows.get(source);
    windows.delete(source);
    if (!window || window.suppressed === 0) return;
    options.sink?.({
      kind: 'repeated',
      source,
      repeated: window.suppressed,
      codes: Object.fromEntries(window.codes),
    });
    logger.warn(
      {
        event: 'auth.failed',
        source,
        repeated: window.suppressed,
        codes: Object.fromEntries(window.codes),
        windowMs,
      },
      'repeated authentication failures',
    );
  };
  const sweep = (): void => {
    const cutoff = now() - windowMs;
    for (const [source, window] of windows) if (window.opened <= cutoff) summarise(source);
  };
  const timer = setInterval(sweep, windowMs);
  timer.unref();

  return {
    report(failure) {
      sweep();
      const source =
        windows.size >= MAX_SOURCES && !windows.has(failure.source) ? 'overflow' : failure.source;
      const window = windows.get(source);
      if (window) {
        window.suppressed += 1;
        window.codes.set(failure.code, (window.codes.get(failure.code) ?? 0) + 1);
        return;
      }
      windows.set(source, { opened: now(), suppressed: 0, codes: new Map() });
      options.sink?.({ kind: 'failure', failure });
      logger.warn({ event: 'auth.failed', ...failure }, 'authentication refused');
    },
    flush() {
      for (const source of [...windows.keys()]) summarise(source);
      clearInterval(timer);
    },
  };
}
