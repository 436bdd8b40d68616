/**
 * The child processes of one stdio upstream, counted against its `max_sessions`. A session takes a
 * slot when it first needs a child (not when it is opened), and keeps it across crash restarts
 * until it ends. When every slot is taken, the session idle longest — nothing in flight, and no
 * use for at least `reclaimIdleAfterMs` — gives its slot up to the newcomer; a session used more
 * recently is never reclaimed, so a newcomer is refused rather than cut into active work.
 */
import { WardenError } from '../../domain/errors.js';

/** A session as the slots see it. */
export interface SlotHolder {
  /** When it was last used, or undefined while a call is in flight (never idle then). */
  idleSince(): number | undefined;
  /** Stops its child to free the slot; resolves once the child has exited. */
  reclaim(): Promise<void>;
  /** Ends it for good (gateway shutdown). */
  stop(): Promise<void>;
}

export interface ChildSlotsOptions<T extends SlotHolder> {
  readonly limit: number;
  readonly reclaimIdleAfterMs: number;
  readonly now: () => number;
  /** Told of each reclaim, e.g. to log it. */
  readonly onReclaim?: (victim: T, idleMs: number) => void;
}

export class ChildSlots<T extends SlotHolder> {
  private readonly holders = new Set<T>();
  private closed = false;

  constructor(private readonly options: ChildSlotsOptions<T>) {}

  get size(): number {
    return this.holders.size;
  }

  /**
   * Gives `holder` a slot, reclaiming the idlest session's if none is free; resolves once the
   * reclaimed child has exited, so the upstream never runs more children than its limit. Throws
   * WARDEN_TOO_MANY_SESSIONS when every slot is held by a session used too recently to reclaim.
   */
  async claim(holder: T): Promise<void> {
    if (this.closed) throw new WardenError('WARDEN_SHUTTING_DOWN');
    if (this.holders.has(holder)) return;
    let reclaimed: Promise<void> | undefined;
    if (this.holders.size >= this.options.limit) {
      const victim = this.idlest();
      if (victim === undefined) {
        throw new WardenError('WARDEN_TOO_MANY_SESSIONS', undefined, {
          details: { limit: this.options.limit },
        });
      }
      this.holders.delete(victim.holder);
      this.options.onReclaim?.(victim.holder, victim.idleMs);
      reclaimed = victim.holder.reclaim();
    }
    this.holders.add(holder);
    await reclaimed;
  }

  release(holder: T): void {
    this.holders.delete(holder);
  }

  /** Refuses new children and stops every session that holds one. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.holders].map((holder) => holder.stop()));
  }

  private idlest(): { holder: T; idleMs: number } | undefined {
    const cutoff = this.options.now() - this.options.reclaimIdleAfterMs;
    let found: { holder: T; since: number } | undefined;
    for (const holder of this.holders) {
      const since = holder.idleSince();
      if (since !== undefined && since <= cutoff && (found === undefined || since < found.since)) {
        found = { holder, since };
      }
    }
    return found && { holder: found.holder, idleMs: this.options.now() - found.since };
  }
}
