/** The subscribers of one store, kept apart so a failing listener cannot stop the others. */
import type { Revocation, RevocationListener } from './types.js';

export class RevocationListeners {
  readonly #listeners = new Set<RevocationListener>();
  readonly #onError: (error: Error) => void;

  constructor(onError: (error: Error) => void) {
    this.#onError = onError;
  }

  get size(): number {
    return this.#listeners.size;
  }

  add(listener: RevocationListener): void {
    this.#listeners.add(listener);
  }

  delete(listener: RevocationListener): void {
    this.#listeners.delete(listener);
  }

  clear(): void {
    this.#listeners.clear();
  }

  deliver(revocation: Revocation): void {
    for (const listener of this.#listeners) {
      try {
        listener(revocation);
      } catch (error) {
        this.#onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}
