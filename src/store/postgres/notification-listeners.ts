/**
 * Subscribers of one NOTIFY channel on a dedicated LISTEN connection (a RevocationFeed, which
 * reconnects by itself), kept apart so a failing listener cannot stop the others. After a
 * reconnect, listeners are told with no payload: what was sent meanwhile is lost, so they re-read.
 */
import type { PostgresTarget } from './postgres-target.js';
import { RevocationFeed } from './revocation-feed.js';

export interface NotificationListeners {
  /** Starts listening on first use; rejects (nothing subscribed) when the connection fails. */
  subscribe(listener: (payload: string | undefined) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export function createNotificationListeners(options: {
  readonly target: PostgresTarget;
  readonly channel: string;
  /** Shown in pg_stat_activity. */
  readonly applicationName: string;
  /** What the channel carries, for errors. */
  readonly subject: string;
  readonly onError: (error: Error) => void;
}): NotificationListeners {
  const { target, onError } = options;
  const listeners = new Set<(payload: string | undefined) => void>();
  const deliver = (payload: string | undefined): void => {
    for (const listener of listeners) {
      try {
        listener(payload);
      } catch (error) {
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
  };
  const feed = new RevocationFeed({
    connectionString: target.connectionString,
    channel: options.channel,
    applicationName: options.applicationName,
    target: target.redacted,
    subject: options.subject,
    onNotification: deliver,
    onReconnect: () => deliver(undefined),
    onError,
  });
  return {
    async subscribe(listener) {
      listeners.add(listener);
      try {
        await feed.start();
      } catch (error) {
        listeners.delete(listener);
        throw error;
      }
      return async () => {
        listeners.delete(listener);
      };
    },
    close: () => feed.close(),
  };
}
