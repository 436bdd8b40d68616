/**
 * The requestState signing keys every replica shares: one key per rotation period, created in
 * the store by whichever replica needs it first. A replica signs with the current period's key
 * and accepts the previous period's too, so a state handed out just before a rotation still
 * resumes its call (a parked call lives minutes, a period a day).
 */
import { randomBytes } from 'node:crypto';
import type { RequestStateKeys } from '../../mcp/stateless/request-state.js';
import type { Store } from '../../store/types.js';
import type { Logger } from '../logger.js';

const ROTATE_EVERY_MS = 24 * 60 * 60 * 1000;
const REFRESH_EVERY_MS = 60_000;

export interface SharedRequestStateKeys extends RequestStateKeys {
  close(): void;
}

export async function loadRequestStateKeys(
  store: Pick<Store, 'sharedSecrets'>,
  logger: Logger,
  now: () => number = Date.now,
): Promise<SharedRequestStateKeys> {
  const held = new Map<string, Buffer>();
  let currentId = '';
  async function refresh(): Promise<void> {
    const period = Math.floor(now() / ROTATE_EVERY_MS);
    for (const id of [String(period - 1), String(period)]) {
      if (held.has(id)) continue;
      const value = await store.sharedSecrets.getOrCreate(
        `request-state-key-${id}`,
        randomBytes(32).toString('base64url'),
      );
      held.set(id, Buffer.from(value, 'base64url'));
    }
    for (const id of held.keys()) if (Number(id) < period - 1) held.delete(id);
    currentId = String(period);
  }
  await refresh();
  const timer = setInterval(() => {
    refresh().catch((error: unknown) =>
      logger.warn({ err: error }, 'could not refresh the shared requestState keys'),
    );
  }, REFRESH_EVERY_MS);
  timer.unref();
  return {
    current: () => ({ id: currentId, key: held.get(currentId) as Buffer }),
    find: (id) => held.get(id),
    close: () => clearInterval(timer),
  };
}
