/** A sleep that a decision (or the client going away) can cut short. */
export interface Alarm {
  /** Ends the current sleep, or the next one at once when none is under way. */
  ring(): void;
  sleep(ms: number): Promise<void>;
  /** Ends the current sleep, if any. */
  cancel(): void;
}

export function createAlarm(): Alarm {
  let rung = false;
  let end: (() => void) | undefined;
  return {
    ring() {
      rung = true;
      end?.();
    },
    sleep(ms) {
      if (rung) {
        rung = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const timer = setTimeout(() => end?.(), ms);
        end = () => {
          clearTimeout(timer);
          end = undefined;
          rung = false;
          resolve();
        };
      });
    },
    cancel() {
      end?.();
    },
  };
}
