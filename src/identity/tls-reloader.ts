/**
 * Keeps the listener's certificate, key, client CAs and CRLs in step with their files without a
 * restart: a change seen by fs.watch (debounced, since a rotation writes several files), a
 * periodic content check (for file systems where watching misses changes), or an explicit
 * reload (SIGHUP). The files are re-read whole and checked; only then does the new material
 * replace the old one. A bad file leaves the running material in force and is reported.
 * Connections already open keep the context they were made with.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { TlsConfig } from '../config/config.js';
import { ConfigError } from '../domain/errors.js';
import { loadTlsMaterial, tlsFilesOf, type TlsMaterial } from './tls-options.js';

export type TlsReloadTrigger = 'file' | 'poll' | 'signal';

export type TlsReloadOutcome =
  | {
      readonly ok: true;
      /** False when every file reads as before (nothing was replaced). */
      readonly changed: boolean;
      readonly serverFingerprint: string;
      readonly staleCrls: readonly string[];
    }
  | { readonly ok: false; readonly problems: readonly string[] };

export interface TlsReloader {
  /** The material in force. */
  current(): TlsMaterial;
  /** Re-reads the files now; a bad file keeps the running material. */
  reload(trigger: TlsReloadTrigger): TlsReloadOutcome;
  /** Stops watching and polling. */
  close(): void;
}

export interface TlsReloaderOptions {
  readonly tls: TlsConfig;
  /** The material the listener started with. */
  readonly initial: TlsMaterial;
  /** Puts new material in force (server.setSecureContext); may throw to refuse it. */
  readonly apply: (material: TlsMaterial) => void;
  /** Told of every reload that changed something or failed. */
  readonly onReload: (outcome: TlsReloadOutcome, trigger: TlsReloadTrigger) => void;
  /** Quiet time after the last file event before reading; default 250 ms. */
  readonly debounceMs?: number;
  /** Interval of the content check; default 60 s. */
  readonly pollMs?: number;
}

export function watchTlsFiles(options: TlsReloaderOptions): TlsReloader {
  const files = tlsFilesOf(options.tls);
  let material = options.initial;
  // What the files held when last read, loaded or not: a bad file is reported once, not on
  // every poll, and retried when it changes again.
  let lastSeen = digestFiles(files);
  let debounce: NodeJS.Timeout | undefined;

  const reload = (trigger: TlsReloadTrigger): TlsReloadOutcome => {
    const digest = digestFiles(files);
    if (digest === lastSeen && trigger !== 'signal') {
      return {
        ok: true,
        changed: false,
        serverFingerprint: material.serverFingerprint,
        staleCrls: material.staleCrls,
      };
    }
    lastSeen = digest;
    let outcome: TlsReloadOutcome;
    try {
      const next = loadTlsMaterial(options.tls);
      options.apply(next);
      material = next;
      outcome = {
        ok: true,
        changed: true,
        serverFingerprint: next.serverFingerprint,
        staleCrls: next.staleCrls,
      };
    } catch (error) {
      outcome = {
        ok: false,
        problems: error instanceof ConfigError ? error.issues : [String(error)],
      };
    }
    options.onReload(outcome, trigger);
    return outcome;
  };

  const onFileEvent = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => reload('file'), options.debounceMs ?? 250);
    debounce.unref();
  };
  // Directories, not files: a rotation that renames a new file into place (or swaps a
  // Kubernetes secret's symlink) replaces the inode a file watch would follow.
  const watchers: FSWatcher[] = [];
  for (const directory of new Set(files.map((file) => dirname(file)))) {
    try {
      const watcher = watch(directory, { persistent: false }, onFileEvent);
      // A watch that breaks (directory removed) leaves the content check in charge.
      watcher.on('error', () => watcher.close());
      watchers.push(watcher);
    } catch {
      // Not watchable here (some network file systems): the content check still runs.
    }
  }
  const poll = setInterval(() => reload('poll'), options.pollMs ?? 60_000);
  poll.unref();

  return {
    current: () => material,
    reload,
    close() {
      clearTimeout(debounce);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}

/** SHA-256 over every file's bytes (or its read error), in order. */
function digestFiles(files: readonly string[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    try {
      hash.update(readFileSync(file));
    } catch (error) {
      hash.update(`unreadable:${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    hash.update('\0');
  }
  return hash.digest('hex');
}
