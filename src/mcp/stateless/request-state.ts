/**
 * The requestState Warden hands to a client when a bridged call waits for client input.
 * It is attacker-controlled on the way back, so it carries an HMAC: a client can only resume a
 * call this process parked for it, never guess or forge another's.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface RequestStateSigner {
  sign(handle: string): string;
  /** The handle inside a genuine state, or undefined for anything forged or malformed. */
  verify(state: string): string | undefined;
}

export function createRequestStateSigner(key: Buffer = randomBytes(32)): RequestStateSigner {
  const mac = (handle: string) => createHmac('sha256', key).update(handle).digest('base64url');
  return {
    sign: (handle) => `wst1.${handle}.${mac(handle)}`,
    verify(state) {
      const match = /^wst1\.([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{43})$/.exec(state);
      if (!match) return undefined;
      const [, handle = '', given = ''] = match;
      const expected = Buffer.from(mac(handle));
      const actual = Buffer.from(given);
      return actual.length === expected.length && timingSafeEqual(actual, expected)
        ? handle
        : undefined;
    },
  };
}
