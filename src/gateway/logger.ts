/** Structured JSON logs (pino). Each exchange logs with its request id. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'warden' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', '*.authorization', '*.token'],
        censor: '[redacted]',
      },
    },
    destination ?? process.stdout,
  );
}
