/**
 * The LISTEN side of revocation broadcast: one dedicated connection (outside the pool, which
 * would hand it to other queries) that LISTENs on the store's channel and comes back by itself.
 *
 * A notification sent while the connection is down is lost, so after every reconnect
 * `onReconnect` runs and the store delivers all active revocations again.
 */
import pg from 'pg';
import { StoreError, describeCause } from '../errors.js';
import { quoteIdentifier } from './postgres-target.js';

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5000;
/** A half-open TCP connection raises no error; a periodic query notices it. */
const HEARTBEAT_MS = 15_000;
const TIMEOUT_MS = 10_000;

export interface RevocationFeedOptions {
  readonly connectionString: string;
  readonly channel: string;
  /** Shown in pg_stat_activity, so an operator can tell the feed connection apart. */
  readonly applicationName: string;
  /** Password-free URL, for errors. */
  readonly target: string;
  readonly onNotification: (payload: string) => void;
  /** Runs after a lost connection is listening again. */
  readonly onReconnect: () => void;
  readonly onError: (error: Error) => void;
  /** What the channel carries, for errors; default `revocations` (policy bundles use it too). */
  readonly subject?: string;
}

export class RevocationFeed {
  readonly #options: RevocationFeedOptions;
  #client: pg.Client | undefined;
  /** Set once the first connection succeeded: from then on the feed reconnects on its own. */
  #live = false;
  #closed = false;
  #firstStart: Promise<void> | undefined;
  #connecting: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #attempt = 0;

  constructor(options: RevocationFeedOptions) {
    this.#options = options;
  }

  /** Resolves once notifications flow; rejects (and may be retried) if the first connection fails. */
  async start(): Promise<void> {
    if (this.#live) return;
    this.#firstStart ??= this.#connect()
      .then(() => {
        this.#live = true;
      })
      .finally(() => {
        this.#firstStart = undefined;
      });
    return this.#firstStart;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#heartbeat);
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  #connect(): Promise<void> {
    const connecting = this.#openListeningClient().finally(() => {
      this.#connecting = undefined;
    });
    this.#connecting = connecting;
    return connecting;
  }

  async #openListeningClient(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#options.connectionString,
      keepAlive: true,
      connectionTimeoutMillis: TIMEOUT_MS,
      query_timeout: TIMEOUT_MS,
      application_name: this.#options.applicationName,
    });
    // Registered before connect: pg throws an 'error' with no listener, which would crash the process.
    client.on('error', (error) => this.#drop(client, error));
    client.on('end', () => this.#drop(client, undefined));
    client.on('notification', (message) => {
      if (message.channel === this.#options.channel && message.payload !== undefined) {
        this.#options.onNotification(message.payload);
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdentifier(this.#options.channel)}`);
    } catch (cause) {
      await client.end().catch(() => undefined);
      throw new StoreError(
        'STORE_OPEN_FAILED',
        `cannot LISTEN for ${this.#options.subject ?? 'revocations'} at ${this.#options.target}: ${describeCause(cause)}`,
        { cause, target: this.#options.target },
      );
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#heartbeat = setInterval(() => {
      client.query('SELECT 1').catch((error: unknown) => this.#drop(client, error));
    }, HEARTBEAT_MS).unref();
  }

  #drop(client: pg.Client, cause: unknown): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    clearInterval(this.#heartbeat);
    client.end().catch(() => undefined);
    if (this.#closed) return;
    this.#options.onError(
      new StoreError(
        'STORE_QUERY_FAILED',
        `lost the ${this.#options.subject ?? 'revocations'} LISTEN connection to ${this.#options.target}` +
          `${cause === undefined ? '' : `: ${describeCause(cause)}`}; reconnecting`,
        { cause, target: this.#options.target },
      ),
    );
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed) return;
    const delay = Math.min(FIRST_RETRY_MS * 2 ** this.#attempt, MAX_RETRY_MS);
    this.#attempt += 1;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect().then(
        () => {
          if (this.#closed) return;
          this.#attempt = 0;
          this.#options.onReconnect();
        },
        (error: unknown) => {
          if (this.#closed) return;
          this.#options.onError(error instanceof Error ? error : new Error(String(error)));
          this.#scheduleReconnect();
        },
      );
    }, delay);
  }
}
