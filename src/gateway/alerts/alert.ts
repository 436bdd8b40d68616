/** An alert a rule raised: what happened, for whom, and the facts a responder starts from. */
import type { AlertKind } from '../../config/alerts-schema.js';

export interface Alert {
  /** The rule's name (its kind unless named). */
  readonly rule: string;
  readonly kind: AlertKind;
  /** What the alert is about (agent, source, upstream, tool); deduplication is per rule and key. */
  readonly key: string;
  /** One line a person reads first. */
  readonly summary: string;
  /** ISO 8601, UTC. */
  readonly time: string;
  readonly facts: Readonly<Record<string, unknown>>;
}
