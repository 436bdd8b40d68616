/**
 * Writing an export or an archive so that it is either whole on disk or absent: through a
 * temporary file that is synced, optionally checked, then renamed into place and the directory
 * synced. A failed write leaves no partial file, and once the write resolves the file survives a
 * crash.
 */
import { existsSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { OperationError } from '../domain/errors.js';

export interface DurableWriteOptions {
  /**
   * Refuses to replace an existing file (or a run writing it now): OperationError
   * (OPERATION_INVALID).
   */
  readonly exclusive: boolean;
  /** Checks the written, synced copy before it is renamed into place; rejects to discard it. */
  readonly check?: (partial: string) => Promise<unknown>;
}

export async function writeFileDurably<T>(
  path: string,
  write: (out: Writable) => Promise<T>,
  options: DurableWriteOptions,
): Promise<T> {
  const partial = `${path}.partial`;
  // Opened before the try: a partial file this run did not create is never removed.
  const handle = await open(partial, options.exclusive ? 'wx' : 'w', 0o600);
  const out = handle.createWriteStream();
  // A write error (ENOSPC, EIO) must end the export, not leave it waiting for 'drain'.
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  try {
    const result = await Promise.race([write(out), failed]);
    out.end();
    await Promise.race([finished(out), failed]);
    await syncPath(partial);
    await options.check?.(partial);
    if (options.exclusive && existsSync(path)) {
      throw new OperationError(
        'OPERATION_INVALID',
        `${path} exists already: an archive is never overwritten`,
      );
    }
    await rename(partial, path);
    await syncPath(dirname(resolve(path)));
    return result;
  } catch (error) {
    out.destroy();
    await rm(partial, { force: true });
    throw error;
  }
}

/** fsync of a file, or of a directory to make a rename in it durable. */
async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
