/**
 * The requestState Warden hands to a client when a bridged call waits for client input.
 * It is attacker-controlled on the way back, so it carries an HMAC: a client can only resume a
 * call a replica parked for it, never guess or forge another's. It names the replica that parked
 * the call (the call lives there, with its upstream exchange), so a retry that reaches another
 * replica can be relayed home; and the key it was signed with, so replicas sharing a rotating key
 * ring (through the store) all verify it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Signing keys by id; `current` signs, any key still held verifies. */
export interface RequestStateKeys {
  current(): { readonly id: string; readonly key: Buffer };
  find(id: string): Buffer | undefined;
}

export interface RequestStateSigner {
  /** The replica whose parked calls this signer's states name. */
  readonly replica: string;
  sign(handle: string): string;
  /** The handle inside a genuine state parked here, or undefined for anything else. */
  verify(state: string): string | undefined;
  /** The replica that parked a genuine state, or undefined for a forged or malformed one. */
  homeOf(state: string): string | undefined;
}

const STATE_PATTERN =
  /^wst2\.([A-Za-z0-9._-]{1,64})\.([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{43})$/;

/** One key that never rotates: for a gateway alone, whose parked calls die with it anyway. */
export function singleKey(key: Buffer = randomBytes(32)): RequestStateKeys {
  return { current: () => ({ id: 'k0', key }), find: (id) => (id === 'k0' ? key : undefined) };
}

export function createRequestStateSigner(
  keys: RequestStateKeys = singleKey(),
  replica = 'local',
): RequestStateSigner {
  const mac = (key: Buffer, home: string, keyId: string, handle: string) =>
    createHmac('sha256', key).update(`${home}\n${keyId}\n${handle}`).digest('base64url');
  function open(state: string): { home: string; handle: string } | undefined {
    const match = STATE_PATTERN.exec(state);
    if (!match) return undefined;
    const [, home = '', keyId = '', handle = '', given = ''] = match;
    const signedWith = keys.find(keyId);
    if (signedWith === undefined) return undefined;
    const expected = Buffer.from(mac(signedWith, home, keyId, handle));
    const actual = Buffer.from(given);
    return actual.length === expected.length && timingSafeEqual(actual, expected)
      ? { home, handle }
      : undefined;
  }
  return {
    replica,
    sign(handle) {
      const { id, key } = keys.current();
      return `wst2.${replica}.${id}.${handle}.${mac(key, replica, id, handle)}`;
    },
    verify(state) {
      const opened = open(state);
      return opened !== undefined && opened.home === replica ? opened.handle : undefined;
    },
    homeOf: (state) => open(state)?.home,
  };
}
