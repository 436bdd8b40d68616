/**
 * A circuit breaker per upstream. After `failures` failed calls in a row the circuit opens: calls
 * are refused at once (WARDEN_UPSTREAM_CIRCUIT_OPEN) instead of each waiting for a broken upstream
 * to fail again. After `openForMs` it is half-open: one probe call goes through, and its outcome
 * closes or reopens the circuit.
 */
import { WardenError, type ErrorCode } from '../../domain/errors.js';
import type { JsonRpcMessage } from '../../domain/jsonrpc.js';
import type { ForwardContext, UpstreamConnector, UpstreamReply, UpstreamSession } from './types.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitStateChange {
  readonly upstream: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
}

export interface CircuitBreakerOptions {
  /** Consecutive failed calls that open the circuit. Default 5. */
  readonly failures?: number;
  /** How long an open circuit refuses calls before it lets one probe through. Default 30 s. */
  readonly openForMs?: number;
  /** The clock, in milliseconds. Default Date.now. */
  readonly now?: () => number;
  /** Told of every change of state, e.g. to log or alert. */
  readonly onStateChange?: (change: CircuitStateChange) => void;
}

/** An upstream connector whose calls pass through a circuit breaker. */
export interface GuardedConnector extends UpstreamConnector {
  /** The circuit's state now, for health and readiness reports. */
  state(): CircuitState;
}

/** Errors that say the upstream itself is failing; anything else it answered counts as alive. */
const FAILURE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WARDEN_UPSTREAM_UNAVAILABLE',
  'WARDEN_UPSTREAM_TIMEOUT',
  'WARDEN_UPSTREAM_FAILED',
]);

type Outcome = 'success' | 'failure' | 'neutral';

interface Ticket {
  readonly probe: boolean;
  readonly generation: number;
}

/** Wraps `connector` so that the sessions it opens send through one circuit breaker. */
export function guardWithCircuitBreaker(
  connector: UpstreamConnector,
  options: CircuitBreakerOptions = {},
): GuardedConnector {
  const circuit = new Circuit(connector.name, options);
  return {
    name: connector.name,
    kind: connector.kind,
    openSession: () => new GuardedSession(connector.openSession(), circuit),
    close: () => connector.close(),
    state: () => circuit.current(),
  };
}

class GuardedSession implements UpstreamSession {
  constructor(
    private readonly inner: UpstreamSession,
    private readonly circuit: Circuit,
  ) {}

  // The inner session calls its own onEnded; whoever sets it here must reach that one.
  get onEnded(): (() => void) | undefined {
    return this.inner.onEnded;
  }

  set onEnded(listener: (() => void) | undefined) {
    this.inner.onEnded = listener;
  }

  send(message: JsonRpcMessage, context: ForwardContext): Promise<UpstreamReply> {
    return this.circuit.run(context, () => this.inner.send(message, context));
  }

  openServerStream(context: ForwardContext): Promise<UpstreamReply> {
    return this.circuit.run(context, () => this.inner.openServerStream(context));
  }

  terminate(context: ForwardContext): Promise<void> {
    return this.inner.terminate(context);
  }
}

class Circuit {
  private readonly threshold: number;
  private readonly openForMs: number;
  private readonly now: () => number;
  private readonly onStateChange: ((change: CircuitStateChange) => void) | undefined;
  private state: CircuitState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  /** Bumped on every change of state, so a call admitted before it cannot sway the new state. */
  private generation = 0;

  constructor(
    private readonly upstream: string,
    options: CircuitBreakerOptions,
  ) {
    this.threshold = options.failures ?? 5;
    this.openForMs = options.openForMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.onStateChange = options.onStateChange;
  }

  current(): CircuitState {
    if (this.state === 'open' && this.now() - this.openedAt >= this.openForMs) {
      this.moveTo('half_open');
    }
    return this.state;
  }

  async run(context: ForwardContext, call: () => Promise<UpstreamReply>): Promise<UpstreamReply> {
    const ticket = this.admit();
    let reply: UpstreamReply;
    try {
      reply = await call();
    } catch (error) {
      // A client that went away (or a gateway shutting down) says nothing about the upstream.
      const failed = !context.signal.aborted && isUpstreamFailure(error);
      this.settle(ticket, failed ? 'failure' : 'neutral');
      throw error;
    }
    this.settle(ticket, reply.kind === 'status' && reply.status >= 500 ? 'failure' : 'success');
    return reply;
  }

  private admit(): Ticket {
    const state = this.current();
    if (state === 'closed') return { probe: false, generation: this.generation };
    if (state === 'half_open' && !this.probing) {
      this.probing = true;
      return { probe: true, generation: this.generation };
    }
    // While a probe is out, its outcome is unknown: a failure would keep the circuit open this long.
    const retryAfterMs =
      state === 'open' ? this.openedAt + this.openForMs - this.now() : this.openForMs;
    throw new WardenError('WARDEN_UPSTREAM_CIRCUIT_OPEN', undefined, {
      details: { upstream: this.upstream, retryAfterMs },
    });
  }

  private settle(ticket: Ticket, outcome: Outcome): void {
    if (ticket.generation !== this.generation) return;
    if (ticket.probe) {
      this.probing = false;
      if (outcome === 'success') this.moveTo('closed');
      else if (outcome === 'failure') this.moveTo('open');
      return;
    }
    if (outcome === 'success') this.failures = 0;
    else if (outcome === 'failure' && ++this.failures >= this.threshold) this.moveTo('open');
  }

  private moveTo(to: CircuitState): void {
    const from = this.state;
    this.state = to;
    this.generation += 1;
    this.failures = 0;
    this.probing = false;
    if (to === 'open') this.openedAt = this.now();
    this.onStateChange?.({ upstream: this.upstream, from, to });
  }
}

function isUpstreamFailure(error: unknown): boolean {
  return error instanceof WardenError && FAILURE_CODES.has(error.code);
}
