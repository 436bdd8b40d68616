/**
 * Reports refused authentications (`auth.failed`) — and, with another event name, other refusals
 * of callers not yet known — without letting an attacker flood the log: the first failure from a
 * source in a window is reported in full, the rest are counted and reported once as a summary
 * when the window closes.
 */
import type { Logger } from './logger.js';

export interface AuthFailure {
  readonly requestId: string;
  /** The remote address: failures are aggregated per source. */
  readonly source: string;
  /** The upstream whose endpoint was asked for; undefined for the gateway's own routes. */
  readonly upstream: string | undefined;
  readonly code: string;
  readonly reason: string | undefined;
}

export interface AuthFailureReporter<Failure extends AuthFailure = AuthFailure> {
  report(failure: Failure): void;
  /** Writes the pending summaries (at shutdown). */
  flush(): void;
}

/** Sources tracked at once; beyond this, failures are summarised under one overflow entry. */
const MAX_SOURCES = 10_000;

/** What the reporter lets through: a failure in full, or a summary of the repeats it held back. */
export type ReportedAuthFailure<Failure extends AuthFailure = AuthFailure> =
  | { readonly kind: 'failure'; readonly failure: Failure }
  | {
      readonly kind: 'repeated';
      readonly source: string;
      readonly repeated: number;
      readonly codes: Readonly<Record<string, number>>;
    };

export interface AuthFailureReporterOptions<Failure extends AuthFailure> {
  readonly windowMs?: number;
  readonly now?: () => number;
  /** Also told of each report (the audit log's records). */
  readonly sink?: (report: ReportedAuthFailure<Failure>) => void;
  /** The log lines' `event`; `auth.failed` unless told otherwise. */
  readonly event?: string;
  /** The log line of a failure reported in full; 'authentication refused' unless told otherwise. */
  readonly message?: string;
  /** The log line of a summary; 'repeated authentication failures' unless told otherwise. */
  readonly summary?: string;
}

export function createAuthFailureReporter<Failure extends AuthFailure = AuthFailure>(
  logger: Logger,
  options: AuthFailureReporterOptions<Failure> = {},
): AuthFailureReporter<Failure> {
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const event = options.event ?? 'auth.failed';
  const message = options.message ?? 'authentication refused';
  const summary = options.summary ?? 'repeated authentication failures';
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
        event,
        source,
        repeated: window.suppressed,
        codes: Object.fromEntries(window.codes),
        windowMs,
      },
      summary,
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
      const { requestId, upstream, code, reason } = failure;
      logger.warn({ event, requestId, source: failure.source, upstream, code, reason }, message);
    },
    flush() {
      for (const source of [...windows.keys()]) summarise(source);
      clearInterval(timer);
    },
  };
}
