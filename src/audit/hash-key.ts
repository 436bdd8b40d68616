/**
 * The HMAC key behind argument hashes: equal arguments hash equally (so an investigator can
 * correlate them) without being revealed. It lives in a file beside, not inside, the store, so a
 * copy of the database alone cannot test guesses against the hashes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AuditError } from './errors.js';

const KEY_BYTES = 32;

export function loadOrCreateHashKey(path: string): Buffer {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // 'wx' never overwrites: of two processes starting together, the second reads the first's key.
    writeFileSync(path, `${randomBytes(KEY_BYTES).toString('base64url')}\n`, {
      flag: 'wx',
      mode: 0o600,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw unreadable(path, error);
  }
  let key: Buffer;
  try {
    key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
  } catch (error) {
    throw unreadable(path, error);
  }
  if (key.length < KEY_BYTES) throw unreadable(path, new Error('the key is shorter than 32 bytes'));
  return key;
}

function unreadable(path: string, cause: unknown): AuditError {
  return new AuditError('AUDIT_KEY_INVALID', `the argument hash key ${path} cannot be used`, {
    cause,
  });
}
