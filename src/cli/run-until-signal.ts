/** Keeps a gateway running until SIGINT/SIGTERM, then shuts it down gracefully. */
import type { RunningGateway } from '../gateway/app.js';

export function stopOnSignal(
  gateway: RunningGateway,
  beforeStop: () => Promise<void> = async () => {},
): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.exit(signal === 'SIGINT' ? 130 : 143); // a second signal means "now"
    }
    stopping = true;
    void beforeStop()
      .then(() => gateway.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
